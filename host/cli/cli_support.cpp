#include "cli/cli_support.h"

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "annotate/overrides.h"
#include "calibrate/calibration.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/fingerprint.h"
#include "graph/bn_folding.h"
#include "pipeline/pipeline.h"
#include "prepare/prepare.h"

namespace qsdk::cli {

PluginRegistry load_plugins(const GlobalOptions& global, bool failures_are_errors,
                            const std::vector<std::filesystem::path>& config_dirs) {
  PluginRegistry registry;
  registry.set_allow_unsafe(global.allow_unsafe_plugins);
  // Each new or changed library is tried in a child first (plugin_probe.h).
  registry.set_probe(plugin_probe_settings_from_environment("/proc/self/exe"));
  for (const auto& dir : plugin_search_path(global.plugin_dirs, config_dirs)) {
    if (global.verbose) std::cerr << "qsdk: searching plugins in " << dir.string() << "\n";
    // The bundled directory may legitimately be absent (a bare build); others were asked for.
    if (dir == bundled_plugin_dir() && !std::filesystem::exists(dir)) continue;
    registry.load_directory(dir);
  }
  if (global.verbose)
    for (const auto& p : registry.plugins())
      std::cerr << "qsdk: loaded " << p.backend->name << " from " << p.file.string() << "\n";
  for (const auto& e : registry.errors())
    std::cerr << "qsdk: " << (failures_are_errors ? "error" : "warning") << ": plugin " << e.message() << "\n";
  return registry;
}

std::vector<std::string> child_global_args(const GlobalOptions& global) {
  std::vector<std::string> args;
  for (const auto& d : global.plugin_dirs) args.insert(args.end(), {"--plugin-dir", d.string()});
  if (global.allow_unsafe_plugins) args.push_back("--allow-unsafe-plugins");
  return args;
}

BackendOptions parse_backend_options(const std::vector<std::string>& items) {
  BackendOptions options;
  for (const auto& kv : items) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--option " + kv, "expected KEY=VALUE");
    options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return options;
}

std::vector<BackendChoice> ModelArgs::backend_choices() const {
  std::vector<BackendChoice> choices;
  for (const auto& name : backends) choices.push_back({name, {}, "--backend " + name});
  for (const auto& item : options) {
    // "NAME:KEY=VALUE" for a member of the composition, "KEY=VALUE" for the first.
    BackendChoice* target = &choices.at(0);
    std::string kv = item;
    const auto colon = item.find(':'), eq = item.find('=');
    if (colon != std::string::npos && (eq == std::string::npos || colon < eq)) {
      const std::string name = item.substr(0, colon);
      target = nullptr;
      for (auto& c : choices)
        if (c.name == name) target = &c;
      if (!target) throw InputError("--option " + item, "'" + name + "' is not one of the --backend names given");
      kv = item.substr(colon + 1);
    }
    for (const auto& [k, v] : parse_backend_options({kv})) target->options[k] = v;
  }
  return choices;
}

CLI::Option* add_input_option(CLI::App& cmd, std::vector<std::string>& texts) {
  return cmd
      .add_option("--input,--input-shape", texts,
                  "One model input, repeated in input order: SHAPE[:DTYPE[:LOW..HIGH]], e.g. 1,3,224,224 or "
                  "2,64:int64:0..256 (token ids in [0, 256); the range defaults to the rows of the embedding the "
                  "input indexes). Required for files; replaces a zoo model's own")
      ->type_name("SHAPE[:DTYPE[:LOW..HIGH]]");
}

std::vector<InputSpec> parse_inputs(const std::vector<std::string>& texts) {
  std::vector<InputSpec> inputs;
  for (const auto& t : texts) inputs.push_back(parse_input_spec(t));
  return inputs;
}

void ModelArgs::add_to(CLI::App& cmd) {
  cmd.add_option("model", model, "zoo:<name> or a TorchScript file (.pt)")->required();
  cmd.add_option("-b,--backend", backends, "Backend name (repeatable, composed in order)")->required();
  add_input_option(cmd, input_shapes);
  cmd.add_option("-o,--option", options,
                 "Backend option KEY=VALUE for the first backend, or NAME:KEY=VALUE for the composed backend NAME; "
                 "repeatable");
  cmd.add_option("--overrides", overrides_file,
                 "YAML file with an overrides list (or a config with an `overrides:` key)")
      ->type_name("FILE");
}

AnnotatedModel capture_and_annotate(const GlobalOptions& global, const ModelArgs& args) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/false);
  AnnotatedModel out;
  out.backends = instantiate_backends(registry, args.backend_choices());

  AnnotateOptions options;
  if (!args.overrides_file.empty()) options.overrides = load_overrides_file(args.overrides_file);

  CaptureOptions capture_options;
  capture_options.inputs = parse_inputs(args.input_shapes);
  out.captured = capture_model(args.model, capture_options);
  // As the post-training pipeline does (qsdk run/convert without QAT).
  const auto folds = fold_batch_norms(*out.captured.graph);

  std::optional<Annotation> annotation;
  for (const auto& b : out.backends)
    annotation = annotate(*out.captured.graph, *b, options, annotation ? &*annotation : nullptr);
  out.annotation = std::move(*annotation);
  for (const auto& f : folds) out.annotation.folded_batch_norms.push_back(f.text());
  return out;
}

void CalibrationArgs::add_to(CLI::App& cmd) {
  cmd.add_option("--data", data.source, "Calibration data: mnist, fortunes (text), random, or a tensor file/directory")
      ->capture_default_str();
  cmd.add_option("--batches", data.batches, "Number of batches")->capture_default_str();
  cmd.add_option("--batch-size", data.batch_size, "Batch size")->capture_default_str();
  cmd.add_option("--seed", data.seed, "Seed for data order and random data")->capture_default_str();
  cmd.add_option("--observer", observer,
                 "Replace the activation observers: minmax, moving_average_minmax, histogram_percentile, "
                 "histogram_entropy, mse");
  cmd.add_option("--load-stats", load_stats, "Use statistics saved earlier instead of calibrating")->type_name("FILE");
}

CalibrationRun calibrate_prepared(PreparedModel& prepared, const CapturedModel& captured, const CalibrationArgs& args) {
  if (!args.observer.empty()) {
    ObserverKind kind{};
    if (!parse(args.observer, kind)) throw InputError("--observer " + args.observer, "unknown observer kind");
    prepared.override_activation_observer(kind);
  }
  if (!args.load_stats.empty()) {
    prepared.load_stats(read_file(args.load_stats, "statistics file", kMaxStatsInputBytes), args.load_stats);
    return {"stats:" + Fingerprint::of_file(args.load_stats), {}};
  }
  return calibrate(prepared, *open_data_source(args.data, captured.inputs));
}

CLI::Validator seconds_limit() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        try {
          std::size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) return "'" + text + "' is not a number of seconds";
        } catch (const std::exception&) {
          return "'" + text + "' is not a number of seconds";
        }
        if (!std::isfinite(v) || v < 0 || v > kMaxTimeoutSeconds)
          return "'" + text + "' is out of range: give 0 (no limit) to " + std::to_string(long(kMaxTimeoutSeconds)) +
                 " seconds";
        return "";
      },
      "SECONDS in [0, 1e7]");
}

CLI::Validator megabytes_limit() { return CLI::Range(0, kMaxMemoryLimitMb, "MB in [0, 16777216]"); }

void ConfigFlags::add_to(CLI::App& cmd) {
  cmd.add_option("config", config, "Run config (YAML); see README.md, \"Run config\"")->type_name("CONFIG");
  cmd.add_option("-b,--backend", backends,
                 "Backend to run instead of the config's (repeatable; a+b composes a and b in one run)")
      ->type_name("NAME");
  cmd.add_option("--model", model, "Model instead of the config's: zoo:<name> or a TorchScript file");
  add_input_option(cmd, input_shapes);
  cmd.add_option("-o,--output", output, "Output directory instead of the config's")->type_name("DIR");
  cmd.add_option("--data", data, "Calibration source instead of the config's: mnist, fortunes, random, or a path");
  cmd.add_option("--batches", batches, "Calibration batches instead of the config's (0: one pass over the data)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--allow-unrelated-files", allow_unrelated_files,
               "Write into an output directory that holds files qsdk did not write (beside them, never over them)");
}

RunConfig ConfigFlags::merged_config() const {
  RunConfig c = config.empty() ? default_run_config() : load_run_config(config);
  PipelineOptions& p = c.pipeline;
  if (!model.empty()) {
    p.model = model;
    p.inputs.clear();
  }
  if (!input_shapes.empty()) p.inputs = parse_inputs(input_shapes);
  if (!backends.empty()) {
    // Keep the config's options for backends it already lists.
    std::vector<BackendSelection> chosen;
    for (const auto& name : backends) {
      BackendSelection b = backend_selection(name, "--backend " + name);
      for (const auto& existing : c.backends)
        if (existing.name == name) b.backends = existing.backends;
      chosen.push_back(b);
    }
    c.backends = chosen;
  }
  if (!output.empty()) c.output_dir = output;
  if (!data.empty()) p.calibration.source = data;
  if (batches) p.calibration.batches = *batches;
  return c;
}

}  // namespace qsdk::cli
