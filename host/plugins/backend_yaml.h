// A backend's declared rules as YAML: what `qsdk plugins describe` prints,
// and its parser (so a description can be read back and compared).
// Constraints are code; YAML carries their names only.
#pragma once

#include <string>

#include "qsdk/backend.h"

namespace YAML {
class Node;
}

namespace qsdk {

std::string backend_to_yaml(const Backend& backend);

// Parses what backend_to_yaml writes. `source` names the file (or "<stdin>")
// in errors, which carry line:column. Constraints come back with their names
// and no predicate. Throws InputError.
Backend backend_from_yaml(const std::string& text, const std::string& source);

// Field-by-field comparison of two rule sets, constraints by name. Returns
// the differences as readable lines; empty when the backends are the same.
std::vector<std::string> compare_backends(const Backend& a, const Backend& b);

}  // namespace qsdk
