// A backend's declared rules as YAML: what `qsdk plugins describe` prints,
// and its parser (so a description can be read back and compared).
// Conditions are data and round-trip whole; code constraints are opaque, so
// YAML carries (and the rule hash covers) their names only.
#pragma once

#include <string>

#include "qsdk/backend.h"

namespace YAML {
class Node;
}

namespace qsdk {

std::string backend_to_yaml(const Backend& backend);

// Parses what backend_to_yaml writes. `source` names the file (or "<stdin>")
// in errors, which carry line:column. Code constraints come back with their
// names and no predicate. Throws InputError.
Backend backend_from_yaml(const std::string& text, const std::string& source);

// Rule-by-rule comparison of two backends (rules and options matched by
// name, annotations by edge, conditions by their text, code
// constraints by name), as readable lines:
//   "- rule 'conv2d' [aten::conv2d]"            only in a
//   "+ rule 'conv2d_hardtanh' [...]"            only in b
//   "~ rule 'linear' out(0): <a's spec> -> <b's spec>"
// Empty when the backends are the same.
std::vector<std::string> compare_backends(const Backend& a, const Backend& b);

// SHA-1 of a backend's rules (conditions included), options and lowering
// (not its name, version, vendor, description or homepage): what a model's manifest records so `qsdk verify`
// can tell whether the rules changed since the model was made.
std::string rule_hash(const Backend& backend);

}  // namespace qsdk
