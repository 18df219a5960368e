// qsdk verify MODEL_DIR: does the model's manifest still match the
// installed plugins? Exit 0 when every backend's rules are unchanged, 1 when
// a backend's rules changed, its plugin is missing or an output file no
// longer matches the manifest's record of it (truncated, edited, missing),
// 2 for a bad directory.
#include <iostream>

#include "cli/cli_support.h"
#include "common/error.h"
#include "plugins/compatibility.h"

namespace qsdk::cli {
namespace {

int run_verify(const GlobalOptions& global, const std::string& dir) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/false);
  const VerifyReport report = verify_model_dir(registry, dir);
  for (const auto& b : report.backends) {
    switch (b.status) {
      case BackendVerdict::Status::Unchanged:
        std::cout << b.name << ": rules unchanged (hash " << b.now_hash.substr(0, 12) << ")\n";
        break;
      case BackendVerdict::Status::Missing:
        std::cout << b.name << ": MISSING: no installed plugin provides this backend (model made with version "
                  << b.made_version << ")\n";
        break;
      case BackendVerdict::Status::RulesChanged:
        std::cout << b.name << ": RULES CHANGED since the model was made (hash "
                  << (b.made_hash.empty() ? "none" : b.made_hash.substr(0, 12)) << " -> " << b.now_hash.substr(0, 12)
                  << "); re-run the pipeline to get the model the plugin makes now\n";
        for (const auto& d : b.differences) std::cout << "  " << d << "\n";
        break;
    }
  }
  for (const auto& p : report.file_problems) std::cout << "FILE CHANGED: " << p << "\n";
  if (report.files_checked > 0 && report.file_problems.empty())
    std::cout << "files: " << report.files_checked << " match the manifest's sizes and fingerprints\n";
  for (const auto& n : report.notes) std::cout << "note: " << n << "\n";
  return report.ok() ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_verify_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "verify",
      "Check a quantized model directory (from qsdk run or convert) against the installed plugins: whether each "
      "backend's rules changed since the model was made (rule hash in manifest.json; rule-by-rule differences from "
      "rules-<backend>.yaml), and whether each output file still has the size and fingerprint the manifest records. "
      "Exit 0 unchanged, 1 changed or missing, 2 bad directory.");
  cmd->add_option("model_dir", *dir, "Directory holding manifest.json, e.g. qsdk-out/x86-int8")->required();
  cmd->callback([&global, &result, dir] { result = run_verify(global, *dir); });
}

}  // namespace qsdk::cli
