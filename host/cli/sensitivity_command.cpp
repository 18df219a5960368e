// qsdk sensitivity [CONFIG] [--backend NAME]... [--model M] [--output DIR]
//
// For every backend the config selects: the sensitivity analysis of
// accuracy/sensitivity.h, printed as a ranked table and written to
// DIR/sensitivity/<backend>.{json,md,html} (replacing only an earlier
// analysis qsdk wrote there; common/output_ledger.h).
#include <iostream>

#include "accuracy/sensitivity.h"
#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/output_ledger.h"
#include "pipeline/pipeline.h"

namespace qsdk::cli {
namespace {

namespace fs = std::filesystem;

struct SensitivityArgs {
  ConfigFlags flags;
};

int run_sensitivity(const GlobalOptions& global, const SensitivityArgs& args) {
  const RunConfig config = args.flags.merged_config();
  const auto registry = load_plugins(global, /*failures_are_errors=*/false, config.plugin_search_paths);
  std::vector<std::vector<std::shared_ptr<const Backend>>> made;
  for (const auto& b : config.backends) made.push_back(instantiate_backends(registry, b.backends));
  OutputDirectory output(config.output_dir, {"sensitivity"}, args.flags.allow_unrelated_files);
  const fs::path dir = output.staging() / "sensitivity";
  fs::create_directories(dir);
  for (std::size_t i = 0; i < config.backends.size(); ++i) {
    const auto& b = config.backends[i];
    const SensitivityReport report = analyse_sensitivity(registry, config.pipeline_for(b), made[i], &std::cerr);
    write_file_atomically(dir / (b.name + ".json"), sensitivity_json(report).dump(2) + "\n");
    write_file_atomically(dir / (b.name + ".md"), sensitivity_table(report, /*markdown=*/true));
    write_file_atomically(dir / (b.name + ".html"), sensitivity_html(report));
    std::cout << "\n" << sensitivity_table(report, /*markdown=*/false);
  }
  output.commit();
  std::cout << "\noutputs: " << (config.output_dir / "sensitivity").string() << "/<backend>.{json,md,html}\n";
  return kExitOk;
}

}  // namespace

void add_sensitivity_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto args = std::make_shared<SensitivityArgs>();
  auto* cmd = app.add_subcommand(
      "sensitivity",
      "Which quantized ops cost the most accuracy: for every backend a run config selects, quantize one unit "
      "(a rule's match with its own qparams, and the ops sharing them) at a time, and all units but one, and "
      "rank the units by the SQNR at the output and, with labelled data (mnist, fortunes), held-out top-1. "
      "Costs 2 x units + 1 calibrated runs per backend. Writes DIR/sensitivity/<backend>.{json,md,html}.");
  args->flags.add_to(*cmd);
  cmd->callback([&global, &result, args] { result = run_sensitivity(global, *args); });
}

}  // namespace qsdk::cli
