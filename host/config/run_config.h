// The run config: the YAML file `qsdk run` takes (schema in README.md,
// "Run config"). Top-level keys:
//
//   plugins:      {search_paths: [DIR, ...]}
//   backends:     [NAME, ...] | {NAME: {OPTION: VALUE, ...}, ...}
//                 a NAME "a+b" composes a and b in one run, with options
//                 per member: {a+b: {a: {OPTION: VALUE}, b: {...}}}
//   specs:        [FILE.yaml, ...]
//   output:       {dir: DIR, reports: [json, junit, html]}
//   and the pipeline's sections, read by pipeline/pipeline_config.h (the
//   same reader a conformance spec's `pipeline:` uses): model, mode,
//   calibration, qat, overrides, checks, measure, lower.
//
// Relative paths resolve against the config file's directory (the built-in
// default config's against the current directory); a spec that is not found
// there is looked up in the bundled spec directory. Errors name
// file:line:column; unknown keys get a "did you mean".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/pipeline_options.h"

namespace qsdk {

// One run of the pipeline: one backend, or several composed in order.
struct BackendSelection {
  std::string name;                     // "x86-int8", or "my-npu+x86-int8" when composed
  std::vector<BackendChoice> backends;  // each with its options
  std::string where;                    // file:line:column of the entry (or the flag), for errors
};

struct RunConfig {
  std::string source;  // the config file, or "<built-in default config>"
  std::vector<std::filesystem::path> plugin_search_paths;
  // Model, calibration or QAT, overrides, checks, measurements; its
  // `backends` are left empty and filled per run from `backends` below.
  PipelineOptions pipeline;
  std::vector<BackendSelection> backends;
  std::vector<std::filesystem::path> specs;  // resolved
  std::filesystem::path output_dir = "qsdk-out";
  std::vector<std::string> reports{"json", "junit", "html"};

  // The pipeline options of one run.
  PipelineOptions pipeline_for(const BackendSelection& run) const;
};

// "x86-int8" or "my-npu+x86-int8" (from --backend) as a selection without options.
BackendSelection backend_selection(const std::string& name, const std::string& where);

// Parses a config file. Throws InputError at file:line:column.
RunConfig load_run_config(const std::filesystem::path& path);
// Parses config text; `source` names it in errors, `base_dir` resolves relative paths.
RunConfig parse_run_config(const std::string& text, const std::string& source, const std::filesystem::path& base_dir);

// The built-in default config (configs/default.yaml, compiled in).
const std::string& default_config_text();
RunConfig default_run_config();

// The config as YAML, every value explicit (what --print-config shows).
std::string to_yaml(const RunConfig& config);

// <prefix>/share/qsdk/specs next to the executable's <prefix>/bin.
std::filesystem::path bundled_spec_dir();

}  // namespace qsdk
