// `qsdk conformance --bless`: for a spec whose cases passed without any
// structure expectations, write a copy of the spec with what the run
// measured (op counts of the reference and lowered graphs, SQNR floors,
// lowered-vs-reference steps), common where every backend agrees and per
// backend where they differ. The copy goes to a separate directory for
// review (`diff -u`), never over the spec itself. Torch-free.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "conformance/reports.h"
#include "conformance/spec.h"

namespace qsdk::conformance {

// The blessed spec text, or "" when no case of `spec` is a passing case
// without structure expectations. `cases` are the spec's cases.
std::string blessed_spec_text(const ConformanceSpec& spec, const std::vector<const CaseResult*>& cases);

// Writes dir/<spec name>.yaml for every spec with something to bless.
// Returns (spec file, blessed file) pairs.
std::vector<std::pair<std::filesystem::path, std::filesystem::path>> bless_specs(
    const std::vector<ConformanceSpec>& specs, const RunReport& report, const std::filesystem::path& dir);

}  // namespace qsdk::conformance
