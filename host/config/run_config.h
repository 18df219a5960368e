// The run config: the YAML file `qsdk run` takes (schema in README.md,
// "Run config"). Top-level keys:
//
//   plugins:      {search_paths: [DIR, ...]}
//   model:        zoo:NAME | FILE.pt | {source: ..., input_shapes: [[1,3,224,224]], seed: 0}
//   backends:     [NAME, ...] | {NAME: {OPTION: VALUE, ...}, ...}
//   calibration:  {source: mnist|random|PATH, batches: 8, batch_size: 32, seed: 0, observer: KIND}
//   qat:          {steps | epochs, optimizer: sgd|adam, lr, lr_schedule: cosine|constant, momentum,
//                  weight_decay, batch_size, freeze_bn_after, freeze_observers_after}  (present: QAT)
//   overrides:    [{module|op|node: ..., quantize: false | activation: {...} | weight: {...}}, ...]
//   specs:        [FILE.yaml, ...]
//   checks:       {max_steps: 1.0}
//   measure:      {accuracy: true, latency: true, layers: true}
//   output:       {dir: DIR, reports: [json, junit, html]}
//
// Relative paths resolve against the config file's directory (the built-in
// default config's against the current directory); a spec that is not found
// there is looked up in the bundled spec directory. Errors name
// file:line:column; unknown keys get a "did you mean".
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "annotate/overrides.h"
#include "data/data_source.h"
#include "qat/qat.h"
#include "qsdk/backend.h"

namespace qsdk {

struct BackendSelection {
  std::string name;
  BackendOptions options;
  std::string where;  // file:line:column of the entry, for errors
};

struct RunConfig {
  std::string source;  // the config file, or "<built-in default config>"
  std::vector<std::filesystem::path> plugin_search_paths;
  std::string model;  // "zoo:NAME" or a file path (resolved)
  std::vector<std::vector<std::int64_t>> input_shapes;
  std::uint64_t model_seed = 0;
  std::vector<BackendSelection> backends;
  CalibrationConfig calibration;
  std::string observer;  // activation observer override; empty: the backend's
  std::optional<QatOptions> qat;
  std::vector<Override> overrides;
  std::vector<std::filesystem::path> specs;  // resolved
  double max_steps = 1.0;
  bool measure_accuracy = true, measure_latency = true, measure_layers = true;
  std::filesystem::path output_dir = "qsdk-out";
  std::vector<std::string> reports{"json", "junit", "html"};
};

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
