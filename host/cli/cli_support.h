// Pieces several subcommands share: loading plugins from the search path,
// parsing KEY=VALUE backend options, capturing and annotating a model.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annotate/annotator.h"
#include "calibrate/calibration.h"
#include "capture/capture.h"
#include "cli/commands.h"
#include "config/run_config.h"
#include "data/data_source.h"
#include "pipeline/pipeline_options.h"
#include "plugins/plugin_registry.h"

namespace qsdk {
class PreparedModel;
}

namespace qsdk::cli {

// Loads every plugin on the search path. Failures are printed as errors
// (`plugins list`) or warnings (commands that only need some backends).
// `config_dirs`: a run config's plugin search paths (after --plugin-dir and
// QSDK_PLUGIN_PATH, before the bundled plugins).
PluginRegistry load_plugins(const GlobalOptions& global, bool failures_are_errors,
                            const std::vector<std::filesystem::path>& config_dirs = {});

// The global flags a child process of this one needs before its
// subcommand: --plugin-dir DIR..., --allow-unsafe-plugins.
std::vector<std::string> child_global_args(const GlobalOptions& global);

// "weight_bits=4" -> {weight_bits: 4}; InputError on a malformed item.
BackendOptions parse_backend_options(const std::vector<std::string>& items);

// Validators for resource limits given on the command line: a finite
// number, 0 (no limit) up to kMaxTimeoutSeconds / kMaxMemoryLimitMb. Beyond
// them a deadline or byte count would overflow, so "1e10" or "inf" is an
// error rather than a limit of 0 s.
inline constexpr double kMaxTimeoutSeconds = 1e7;  // about 115 days
inline constexpr int kMaxMemoryLimitMb = 1 << 24;  // 16 TiB
CLI::Validator seconds_limit();
CLI::Validator megabytes_limit();

// --input (alias --input-shape), repeatable, one per model input in order:
// SHAPE[:DTYPE[:LOW..HIGH]]. One option under two names, so the order of
// mixed uses is kept.
CLI::Option* add_input_option(CLI::App& cmd, std::vector<std::string>& texts);
std::vector<InputSpec> parse_inputs(const std::vector<std::string>& texts);

// A run config and the flags that replace its parts, as `qsdk run` and
// `qsdk sensitivity` take them: CONFIG, --backend, --model, --input,
// --output, --data, --batches, --allow-unrelated-files.
struct ConfigFlags {
  std::string config;
  std::vector<std::string> backends;
  std::string model;
  std::vector<std::string> input_shapes;
  std::string output;
  std::string data;
  std::optional<int> batches;          // 0 too: one pass over the data
  bool allow_unrelated_files = false;  // write beside files qsdk did not write

  void add_to(CLI::App& cmd);
  // The config file (or the built-in default) with the flags applied.
  RunConfig merged_config() const;
};

// Model, backends and overrides as the annotate-like commands take them.
struct ModelArgs {
  std::string model;
  std::vector<std::string> input_shapes;
  std::vector<std::string> backends;
  std::vector<std::string> options;  // KEY=VALUE (first backend) or NAME:KEY=VALUE
  std::string overrides_file;

  void add_to(CLI::App& cmd);
  // The backends in order, each with its options.
  std::vector<BackendChoice> backend_choices() const;
};

struct AnnotatedModel {
  CapturedModel captured;
  std::vector<std::shared_ptr<const Backend>> backends;
  Annotation annotation;
};

// Loads plugins, captures the model and annotates it with the backends
// composed in order.
AnnotatedModel capture_and_annotate(const GlobalOptions& global, const ModelArgs& args);

// Calibration options shared by `calibrate` and `convert`.
struct CalibrationArgs {
  CalibrationConfig data;
  std::string observer;    // replaces the activation observers when set
  std::string load_stats;  // use saved statistics instead of data

  void add_to(CLI::App& cmd);
};

// Observer override, then statistics from --load-stats or from calibration
// batches (with a progress bar on stderr). With --load-stats the fingerprint
// is the stats file's and first_batch is empty.
CalibrationRun calibrate_prepared(PreparedModel& prepared, const CapturedModel& captured, const CalibrationArgs& args);

}  // namespace qsdk::cli
