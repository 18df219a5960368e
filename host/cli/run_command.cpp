// qsdk run [CONFIG] [--backend NAME]... [--model M] [--output DIR] [--print-config]
//
// Flags over the config into RunJobOptions, then the main job
// (run/run_job.h), then what it found: the conformance matrix and failures,
// and the summary table.
#include <iostream>
#include <optional>

#include "cli/cli_support.h"
#include "common/error.h"
#include "config/run_config.h"
#include "conformance/reports.h"
#include "run/run_job.h"

namespace qsdk::cli {
namespace {

namespace fs = std::filesystem;

struct RunArgs {
  ConfigFlags flags;
  std::vector<std::string> formats;
  bool print_config = false;
  bool no_specs = false;
  bool isolate = false;
  double backend_timeout = 0;  // seconds; 0: none
  int backend_memory_mb = 0;   // 0: no limit
};

RunConfig merged_config(const RunArgs& args) {
  RunConfig c = args.flags.merged_config();
  if (!args.formats.empty()) {
    if (const auto problem = formats_problem(args.formats); !problem.empty()) throw InputError("--format", problem);
    c.pipeline.formats = args.formats;
  }
  if (args.no_specs) c.specs.clear();
  return c;
}

int run_run(const GlobalOptions& global, const RunArgs& args) {
  RunJobOptions job;
  job.config = merged_config(args);
  if (args.print_config) {
    std::cout << to_yaml(job.config);
    return kExitOk;
  }
  job.isolate = args.isolate;
  job.backend_timeout_seconds = args.backend_timeout;
  job.backend_memory_mb = args.backend_memory_mb;
  job.allow_unrelated_files = args.flags.allow_unrelated_files;
  job.child_global_args = child_global_args(global);
  const auto registry = load_plugins(global, /*failures_are_errors=*/false, job.config.plugin_search_paths);
  const RunJobResult result = run_job(registry, job, std::cerr);

  if (result.conformance) {
    std::cout << conformance::matrix_text(*result.conformance);
    const auto failures = conformance::failures_text(*result.conformance);
    if (!failures.empty()) std::cout << failures;
  }
  std::cout << "\n"
            << summary_table(result, job.config, false) << "\n"
            << "outputs: " << job.config.output_dir.string() << "/{";
  for (const auto& b : result.backends)
    if (b.measurements) std::cout << b.backend << "/, ";
  std::cout << (result.conformance ? "conformance/, " : "") << "summary.json, summary.md}\n";
  if (!result.passed) std::cout << "qsdk run: a check failed (exit 1)\n";
  return result.exit_code();
}

}  // namespace

void add_run_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "The main job: run the whole pipeline (capture, annotate, prepare, calibrate or QAT, convert, lower, "
      "measure) for every backend a YAML config selects, check its conformance specs, write the quantized "
      "models and reports, and print a summary table. Without CONFIG, runs the built-in default "
      "(configs/default.yaml: the MNIST CNN on real digits, all three bundled backends).");
  args->flags.add_to(*cmd);
  cmd->add_option("--format", args->formats,
                  "Output formats instead of the config's, repeatable: torchscript, onnx (QDQ, checked in ONNX "
                  "Runtime), encodings")
      ->type_name("FORMAT");
  cmd->add_flag("--no-specs", args->no_specs, "Skip the config's conformance specs");
  cmd->add_flag("--isolate", args->isolate,
                "Run each backend in its own child process: a plugin that crashes, aborts, hangs or runs out of "
                "memory marks only its own row as an error (exit 1), and the other backends and reports complete");
  cmd->add_option("--backend-timeout", args->backend_timeout,
                  "With --isolate: kill a backend's run (and each of its conformance cases) after this many seconds "
                  "(0: no limit)")
      ->type_name("SECONDS")
      ->check(seconds_limit());
  cmd->add_option("--backend-memory", args->backend_memory_mb,
                  "With --isolate: address-space limit of each backend's child process and conformance case "
                  "(0: no limit)")
      ->type_name("MB")
      ->check(megabytes_limit());
  cmd->add_flag("--print-config", args->print_config,
                "Print the merged config (file, defaults and flags) as YAML and exit");
  cmd->callback([&global, &result, args] { result = run_run(global, *args); });
}

}  // namespace qsdk::cli
