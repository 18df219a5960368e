// qsdk conformance [SPECS...] | qsdk conformance merge RESULTS...
#include <iostream>
#include <memory>

#include "cli/cli_support.h"
#include "common/error.h"
#include "conformance/runner.h"
#include "conformance/spec.h"

namespace qsdk::cli {

void add_conformance_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto* cmd = app.add_subcommand(
      "conformance",
      "Run conformance specs (YAML, see specs/README.md) on every selected backend: each spec x backend pair runs "
      "the whole pipeline in its own process and is checked for structure, qparams and numerics. Prints a matrix "
      "and writes results.json, junit.xml and report.html. Exit codes: 0 all passed or skipped, 1 a check failed "
      "or a case errored, 2 bad specs or options.");
  struct Args {
    conformance::RunOptions run;
    std::vector<std::string> spec_paths;
    std::string shard, models_dir, output = "conformance-report";
    // Hidden: one case, in a child process.
    std::string run_case, case_name, case_backend, case_output;
    bool no_graphs = false;
    std::string verify_engine, engine = "backend";
    // merge
    std::vector<std::string> merge_inputs;
    std::string merge_output = "conformance-report";
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("specs", args->spec_paths, "Spec files or directories (searched for *.yaml; default: specs)")
      ->type_name("PATH");
  cmd->add_option("-b,--backend", args->run.backends, "Backend to run (repeatable; default: every loaded backend)")
      ->type_name("NAME");
  cmd->add_option("--filter", args->run.filters, "Only specs whose name matches this glob (repeatable)")
      ->type_name("GLOB");
  cmd->add_option("--timeout", args->run.case_timeout_seconds,
                  "Kill a case's process after this many seconds and report the case as an error (0: never)")
      ->type_name("SECONDS")
      ->check(seconds_limit());
  cmd->add_option("--memory-limit", args->run.case_memory_mb,
                  "Address-space limit of each case's process; a plugin that exhausts it errors only its case")
      ->type_name("MB")
      ->check(megabytes_limit());
  cmd->add_option("-j,--jobs", args->run.jobs, "Cases run at once, each in its own process (default: CPUs)")
      ->type_name("N");
  cmd->add_option("--threads-per-case", args->run.threads_per_case,
                  "LibTorch threads in each case's process (default 1, so results do not depend on -j)")
      ->type_name("N");
  cmd->add_option("--shard", args->shard, "Run only slice K of N (cases i with i mod N = K-1), for CI matrices")
      ->type_name("K/N");
  cmd->add_option("-o,--output", args->output, "Report directory (default: conformance-report)")->type_name("DIR");
  cmd->add_option("--models-dir", args->models_dir,
                  "Where specs with `search: models_dir` find model files (default: $QSDK_MODELS_DIR, else "
                  "models/ next to the bin/ directory of qsdk, i.e. build/models)")
      ->type_name("DIR");
  cmd->add_flag("--bless", args->run.bless,
                "For passing specs without structure expectations, write a copy with the measured structure "
                "and numeric floors to <output>/blessed/ for review");
  cmd->add_flag("--no-graphs", args->no_graphs, "Leave the converted graph pictures out of the HTML report");
  cmd->add_option("--verify-engine", args->verify_engine,
                  "Check an engine alone on every spec's model: its results against the integer-exact reference "
                  "of the backend's declared arithmetic, in this mode (exact, lsb:N, sqnr:DB, abs:X, rel:X); the "
                  "specs' own expectations are not checked, and models the backend refuses or the engine does not "
                  "run are skipped, saying why")
      ->type_name("MODE");
  cmd->add_option("--engine", args->engine,
                  "With --verify-engine: backend (the backend's own engine, from its plugin), onnxruntime "
                  "(optimizations disabled: every quantized tensor) or onnxruntime-fused (the output)")
      ->check(CLI::IsMember({"backend", "onnxruntime", "onnxruntime-fused"}));
  cmd->add_option("--run-case", args->run_case)->group("");
  cmd->add_option("--case-name", args->case_name)->group("");
  cmd->add_option("--case-backend", args->case_backend)->group("");
  cmd->add_option("--case-output", args->case_output)->group("");

  auto* merge = cmd->add_subcommand(
      "merge", "Combine shards' results.json (files or report directories) into the reports one run writes");
  merge->add_option("results", args->merge_inputs, "results.json files or report directories")->required();
  merge->add_option("-o,--output", args->merge_output, "Report directory (default: conformance-report)")
      ->type_name("DIR");
  merge->callback([args, &result] {
    std::vector<std::filesystem::path> inputs(args->merge_inputs.begin(), args->merge_inputs.end());
    result = conformance::merge_results(inputs, args->merge_output, std::cout);
  });

  cmd->callback([merge, args, &global, &result] {
    if (merge->parsed()) return;
    const auto models_dir = conformance::resolve_models_dir(args->models_dir);
    std::optional<conformance::EngineExpect> verify_engine;
    if (!args->verify_engine.empty()) {
      verify_engine.emplace();
      verify_engine->verify = conformance::parse_verify_mode(args->verify_engine, "--verify-engine");
      verify_engine->run = args->engine;
      verify_engine->where = "--verify-engine " + args->verify_engine;
    }
    if (!args->run_case.empty()) {
      const auto registry = load_plugins(global, /*failures_are_errors=*/false);
      conformance::CaseOptions c{args->run_case, args->case_name,  args->case_backend, args->case_output,
                                 models_dir,     !args->no_graphs, verify_engine};
      conformance::run_one_case(registry, c);
      result = kExitOk;
      return;
    }
    auto& run = args->run;
    for (const auto& p : args->spec_paths) run.spec_paths.emplace_back(p);
    if (run.spec_paths.empty()) run.spec_paths.emplace_back("specs");
    if (!args->shard.empty()) run.shard = conformance::parse_shard(args->shard);
    if (run.jobs < 0) throw InputError("--jobs", "must be >= 1");
    if (run.threads_per_case < 1) throw InputError("--threads-per-case", "must be >= 1");
    run.output_dir = args->output;
    run.models_dir = models_dir;
    run.graphs = !args->no_graphs;
    run.verify_engine = verify_engine;
    run.child_global_args = child_global_args(global);
    const auto registry = load_plugins(global, /*failures_are_errors=*/false);
    result = conformance::run_conformance(registry, run, std::cout);
  });
  (void)cmd;
}

}  // namespace qsdk::cli
