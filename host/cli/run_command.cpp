// qsdk run [CONFIG] [--backend NAME]... [--model M] [--output DIR] [--print-config]
//
// The main job: for every backend the config selects, the whole pipeline
// (capture, annotate, prepare, calibrate or QAT, convert, lower, measure),
// then the config's conformance specs, then a summary table. Outputs go to
// a staging directory inside the output directory first and are moved into
// place only when the run completes, so an earlier run's outputs are never
// half-overwritten: DIR/<backend>/{model.pt, model_reference.pt,
// manifest.json, qparams.json, annotation.json, layers.json},
// DIR/summary.{json,md}, DIR/conformance/{results.json, junit.xml, report.html}.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/yaml_input.h"
#include "config/run_config.h"
#include "conformance/reports.h"
#include "conformance/runner.h"
#include "pipeline/pipeline.h"

namespace qsdk::cli {
namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::string config;
  std::vector<std::string> backends;
  std::string model;
  std::vector<std::string> input_shapes;
  std::string output;
  std::string data;
  int batches = 0;
  bool print_config = false;
  bool no_specs = false;
};

RunConfig merged_config(const RunArgs& args) {
  RunConfig c = args.config.empty() ? default_run_config() : load_run_config(args.config);
  if (!args.model.empty()) {
    c.model = args.model;
    c.input_shapes.clear();
  }
  for (const auto& s : args.input_shapes) c.input_shapes.push_back(parse_shape(s));
  if (!args.backends.empty()) {
    // Keep the config's options for backends it already lists.
    std::vector<BackendSelection> chosen;
    for (const auto& name : args.backends) {
      BackendSelection b{name, {}, "--backend " + name};
      for (const auto& existing : c.backends)
        if (existing.name == name) b.options = existing.options;
      chosen.push_back(b);
    }
    c.backends = chosen;
  }
  if (!args.output.empty()) c.output_dir = args.output;
  if (!args.data.empty()) c.calibration.source = args.data;
  if (args.batches > 0) c.calibration.batches = args.batches;
  if (args.no_specs) c.specs.clear();
  return c;
}

// Unknown backends and options are bad input before anything runs.
void check_backends(const PluginRegistry& registry, const RunConfig& c) {
  for (const auto& b : c.backends) {
    if (!registry.find(b.name)) {
      const auto known = registry.names();
      const auto best = yaml::closest(b.name, known);
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      throw InputError(b.where, "unknown backend '" + b.name + "'" +
                                    (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                    "; loaded backends: " + (list.empty() ? "none" : list));
    }
    try {
      registry.instantiate(b.name, b.options);
    } catch (const InputError& e) {
      throw InputError(b.where, e.cause());
    }
  }
}

PipelineOptions pipeline_options(const RunConfig& c, const BackendSelection& b) {
  PipelineOptions o;
  o.model = c.model;
  o.input_shapes = c.input_shapes;
  o.model_seed = c.model_seed;
  o.backend = b.name;
  o.backend_options = b.options;
  o.overrides = c.overrides;
  o.calibration = c.calibration;
  o.activation_observer = c.observer;
  o.qat = c.qat;
  o.max_steps = c.max_steps;
  // Accuracy needs labels: only the MNIST source has them.
  o.measure_accuracy = c.measure_accuracy && c.calibration.source == "mnist";
  o.measure_latency = c.measure_latency;
  o.per_layer_sqnr = c.measure_layers;
  return o;
}

std::string fixed(double v, int digits) {
  if (std::isinf(v)) return "inf";
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string percent(double v) { return fixed(100.0 * v, 2) + "%"; }

struct Row {
  std::string backend, mode, float_acc = "-", int8_acc = "-", sqnr, size, latency = "-", lowered, conformance = "-";
};

std::vector<Row> summary_rows(const std::vector<PipelineResult>& results, const RunConfig& c,
                              const conformance::RunReport* report) {
  std::vector<Row> rows;
  for (const auto& r : results) {
    Row row;
    row.backend = r.backend;
    row.mode = c.qat ? "qat" : "ptq";
    if (r.accuracy) {
      row.float_acc = percent(r.accuracy->float_top1);
      row.int8_acc = percent(r.accuracy->quantized_top1);
    }
    row.sqnr = fixed(r.lowered ? r.sqnr_db_lowered : r.sqnr_db, 1);
    row.size = fixed(double(r.quantized_size) / 1024.0, 0) + " KB (" +
               fixed(r.float_size ? double(r.quantized_size) / double(r.float_size) : 0.0, 2) + "x)";
    if (r.latency)
      row.latency = fixed(r.latency->float_ms, 3) + " / " + fixed(r.latency->int8_ms, 3) + " (" +
                    fixed(r.latency->int8_ms > 0 ? r.latency->float_ms / r.latency->int8_ms : 0.0, 2) + "x)";
    row.lowered = r.lowered ? std::string(to_string(r.target)) + ", " + fixed(r.max_difference_steps, 2) + " steps"
                            : "reference Q/DQ";
    if (!r.lowering_agrees(c.max_steps)) row.lowered += " FAIL";
    if (report) {
      int pass = 0, total = 0;
      for (const auto& cs : report->cases)
        if (cs.backend == r.backend) {
          ++total;
          pass += cs.status == conformance::Status::Pass || cs.status == conformance::Status::Skip;
        }
      if (total)
        row.conformance = (pass == total ? "pass " : "FAIL ") + std::to_string(pass) + "/" + std::to_string(total);
    }
    rows.push_back(row);
  }
  return rows;
}

std::string table(const std::vector<Row>& rows, bool markdown) {
  const std::vector<std::string> head{"backend",
                                      "mode",
                                      "float acc",
                                      "int8 acc",
                                      "SQNR dB",
                                      "size",
                                      "latency ms float / int8",
                                      "lowered vs reference",
                                      "conformance"};
  std::vector<std::vector<std::string>> cells{head};
  for (const auto& r : rows)
    cells.push_back({r.backend, r.mode, r.float_acc, r.int8_acc, r.sqnr, r.size, r.latency, r.lowered, r.conformance});
  std::vector<std::size_t> width(head.size(), 0);
  for (const auto& line : cells)
    for (std::size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  std::ostringstream out;
  for (std::size_t l = 0; l < cells.size(); ++l) {
    if (markdown) out << "| ";
    for (std::size_t i = 0; i < head.size(); ++i)
      out << std::left << std::setw(static_cast<int>(width[i])) << cells[l][i] << (markdown ? " | " : "  ");
    out << "\n";
    if (l == 0) {
      if (markdown) out << "|";
      for (std::size_t i = 0; i < head.size(); ++i)
        out << (markdown ? std::string(width[i] + 2, '-') + "|" : std::string(width[i], '-') + "  ");
      out << "\n";
    }
  }
  return out.str();
}

nlohmann::json layers_json(const PipelineResult& r) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& l : r.layers)
    j.push_back({{"node", l.node},
                 {"module", l.module_path},
                 {"op", l.op},
                 {"sqnr_db", std::isinf(l.sqnr_db) ? 999.0 : l.sqnr_db}});
  return j;
}

// Moves every entry of `staging` into `dir`, replacing what is there, then
// removes `staging`. Each replacement is a rename of a whole file or backend
// directory, so readers see either the old or the new one.
void commit_staging(const fs::path& staging, const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(staging)) {
    const fs::path target = dir / entry.path().filename();
    if (fs::is_directory(target) && !fs::is_symlink(target)) {
      const fs::path old = dir / (".old-" + entry.path().filename().string() + "-" + std::to_string(getpid()));
      fs::rename(target, old);
      fs::rename(entry.path(), target);
      fs::remove_all(old);
    } else {
      fs::rename(entry.path(), target);
    }
  }
  fs::remove_all(staging);
}

// Removes the staging directory unless the run committed it.
struct StagingGuard {
  fs::path path;
  bool committed = false;
  ~StagingGuard() {
    std::error_code ec;
    if (!committed) fs::remove_all(path, ec);
  }
};

int run_run(const GlobalOptions& global, const RunArgs& args) {
  const RunConfig config = merged_config(args);
  if (args.print_config) {
    std::cout << to_yaml(config);
    return kExitOk;
  }
  const auto registry = load_plugins(global, /*failures_are_errors=*/false, config.plugin_search_paths);
  check_backends(registry, config);

  fs::create_directories(config.output_dir);
  StagingGuard staging{config.output_dir / (".qsdk-run-" + std::to_string(getpid()))};
  fs::remove_all(staging.path);
  fs::create_directories(staging.path);

  std::vector<PipelineResult> results;
  bool failed = false;
  for (const auto& b : config.backends) {
    std::cerr << "qsdk run: " << b.name << ": " << config.model << (config.qat ? " (QAT)" : " (PTQ)") << "\n";
    results.push_back(run_pipeline(registry, pipeline_options(config, b)));
    const auto& r = results.back();
    const fs::path dir = staging.path / r.backend;
    write_pipeline_outputs(r, dir);
    write_file_atomically(dir / "layers.json", layers_json(r).dump(2) + "\n");
    if (!r.lowering_agrees(config.max_steps)) {
      failed = true;
      std::cerr << "qsdk: check failed: " << r.backend << ": lowered model differs from its reference by "
                << r.max_difference_steps << " output steps (limit " << config.max_steps << ")"
                << (r.first_bad_kernel.empty() ? "" : "; first kernel over the limit: " + r.first_bad_kernel) << "\n";
    }
  }

  std::optional<conformance::RunReport> report;
  if (!config.specs.empty()) {
    conformance::RunOptions copts;
    copts.spec_paths = config.specs;
    for (const auto& b : config.backends) copts.backends.push_back(b.name);
    copts.output_dir = staging.path / "conformance";
    for (const auto& d : global.plugin_dirs)
      copts.child_global_args.insert(copts.child_global_args.end(), {"--plugin-dir", d.string()});
    for (const auto& d : config.plugin_search_paths)
      copts.child_global_args.insert(copts.child_global_args.end(), {"--plugin-dir", d.string()});
    std::ostringstream log;
    if (conformance::run_conformance(registry, copts, log) != kExitOk) failed = true;
    const fs::path results_file = copts.output_dir / "results.json";
    std::ifstream in(results_file);
    if (!in) throw InputError(results_file.string(), "conformance run wrote no results");
    report = conformance::report_from_json(nlohmann::json::parse(in), results_file.string());
    std::cout << conformance::matrix_text(*report);
    const auto failures = conformance::failures_text(*report);
    if (!failures.empty()) std::cout << failures;
  }

  const auto rows = summary_rows(results, config, report ? &*report : nullptr);
  nlohmann::json summary{{"config", config.source}, {"model", config.model}, {"mode", config.qat ? "qat" : "ptq"}};
  summary["backends"] = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json j = r.manifest;
    j.erase("qparams");
    j["backend"] = r.backend;
    if (r.latency) j["latency_ms"] = {{"float", r.latency->float_ms}, {"int8", r.latency->int8_ms}};
    j["seconds"] = r.seconds;
    summary["backends"].push_back(j);
  }
  summary["passed"] = !failed;
  write_file_atomically(staging.path / "summary.json", summary.dump(2) + "\n");
  write_file_atomically(staging.path / "summary.md", "# qsdk run: " + config.model + "\n\n" + table(rows, true));
  commit_staging(staging.path, config.output_dir);
  staging.committed = true;

  std::cout << "\n"
            << table(rows, false) << "\n"
            << "outputs: " << config.output_dir.string() << "/{";
  for (const auto& r : results) std::cout << r.backend << "/, ";
  std::cout << (report ? "conformance/, " : "") << "summary.json, summary.md}\n";
  if (failed) std::cout << "qsdk run: a check failed (exit 1)\n";
  return failed ? kExitCheckFailed : kExitOk;
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
  cmd->add_option("config", args->config, "Run config (YAML); see README.md, \"Run config\"")->type_name("CONFIG");
  cmd->add_option("-b,--backend", args->backends, "Backend to run instead of the config's (repeatable)")
      ->type_name("NAME");
  cmd->add_option("--model", args->model, "Model instead of the config's: zoo:<name> or a TorchScript file");
  cmd->add_option("--input-shape", args->input_shapes, "Shape of one model input, e.g. 1,3,224,224 (files)")
      ->type_name("SHAPE");
  cmd->add_option("-o,--output", args->output, "Output directory instead of the config's")->type_name("DIR");
  cmd->add_option("--data", args->data, "Calibration source instead of the config's: mnist, random, or a path");
  cmd->add_option("--batches", args->batches, "Calibration batches instead of the config's")->type_name("N");
  cmd->add_flag("--no-specs", args->no_specs, "Skip the config's conformance specs");
  cmd->add_flag("--print-config", args->print_config,
                "Print the merged config (file, defaults and flags) as YAML and exit");
  cmd->callback([&global, &result, args] { result = run_run(global, *args); });
}

}  // namespace qsdk::cli
