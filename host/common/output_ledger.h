// qsdk replaces only what it wrote. Every output directory `qsdk run`
// commits into holds a ledger, `.qsdk-outputs.json`, naming each entry qsdk
// put there and, for a directory, every file in it. An existing entry is
// replaced only when the ledger lists it, and a directory only when nothing
// inside it is unlisted: a file a user added (out/arm/src/main.c), or an
// `arm/` folder qsdk never wrote, stops the run with exit 2 before anything
// is moved.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qsdk {

inline constexpr const char* kOutputLedgerName = ".qsdk-outputs.json";

// Throws InputError naming the first path under `dir` that replacing the
// entries `names` would remove although qsdk did not write it.
void check_replaceable(const std::filesystem::path& dir, const std::vector<std::string>& names);

// Moves every entry of `staging` into `dir` (checked first, so a refusal
// moves nothing), records them in dir's ledger, then removes `staging`. Each
// replacement is a rename of a whole file or directory, so readers see
// either the old or the new one.
void commit_outputs(const std::filesystem::path& staging, const std::filesystem::path& dir);

}  // namespace qsdk
