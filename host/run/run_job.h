// The main job, as a library call: for every backend a run config selects,
// the whole pipeline (in this process, or each in a child process with
// `isolate`), then the config's conformance specs, then the summary. Outputs
// are staged inside the locked output directory and moved into place when
// the job completes (common/output_ledger.h), so an earlier run's outputs
// are never half-overwritten and nothing qsdk did not write is replaced:
// DIR/<backend>/{model.pt, model_reference.pt, manifest.json, qparams.json,
// annotation.json, layers.json, rules-*.yaml}, DIR/summary.{json,md},
// DIR/conformance/{results.json, junit.xml, report.html}.
// `qsdk run` parses flags into RunJobOptions and prints the result.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "conformance/reports.h"
#include "pipeline/measurements.h"

namespace qsdk {

class PluginRegistry;

struct RunJobOptions {
  RunConfig config;  // merged: file, defaults and flags
  bool isolate = false;
  double backend_timeout_seconds = 0;  // with isolate: per backend and per conformance case (0: none)
  int backend_memory_mb = 0;           // with isolate: address-space limit per child (0: none)
  bool allow_unrelated_files = false;  // write beside files qsdk did not write
  // Global flags the job's child processes (isolated backends, conformance
  // cases) need before their subcommand: --plugin-dir DIR, --allow-unsafe-plugins.
  std::vector<std::string> child_global_args;
};

// One row of the summary: a backend (or composition) and what it measured.
struct BackendRunResult {
  std::string backend;
  std::optional<Measurements> measurements;  // absent when the run failed (isolate)
  std::string error;                         // why it failed
  bool lowering_agrees = true;
};

struct RunJobResult {
  std::vector<BackendRunResult> backends;             // config order
  std::optional<conformance::RunReport> conformance;  // when the config has specs
  std::vector<std::string> check_failures;            // "x86-int8: lowered model differs ..."
  bool passed = true;                                 // no check failed, no backend failed, conformance passed

  int exit_code() const;  // 0, or 1 (kExitCheckFailed)
};

// Unknown backends, bad options and names that collide with the job's own
// reports are InputErrors before anything runs (each backend is made once,
// here, and the pipeline reuses it). `progress` gets one line per backend
// and conformance progress.
RunJobResult run_job(const PluginRegistry& registry, const RunJobOptions& options, std::ostream& progress);

// The summary table (text for a terminal, or Markdown for summary.md).
std::string summary_table(const RunJobResult& result, const RunConfig& config, bool markdown);

}  // namespace qsdk
