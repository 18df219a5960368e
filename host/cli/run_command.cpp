// qsdk run [CONFIG] [--backend NAME]... [--model M] [--output DIR] [--print-config]
//
// The main job: for every backend the config selects, the whole pipeline
// (capture, annotate, prepare, calibrate or QAT, convert, lower, measure),
// then the config's conformance specs, then a summary table. Outputs go to
// a staging directory inside the locked output directory first and are
// moved into place only when the run completes (common/output_ledger.h), so
// an earlier run's outputs are never half-overwritten, and nothing qsdk did
// not write is replaced: DIR/<backend>/{model.pt, model_reference.pt,
// manifest.json, qparams.json, annotation.json, layers.json},
// DIR/summary.{json,md}, DIR/conformance/{results.json, junit.xml, report.html}.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/output_ledger.h"
#include "common/yaml_input.h"
#include "config/run_config.h"
#include "common/child_process.h"
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
  std::optional<int> batches;  // 0 too: one pass over the data
  bool print_config = false;
  bool no_specs = false;
  bool isolate = false;
  bool allow_unrelated_files = false;
  double backend_timeout = 0;  // seconds; 0: none
  int backend_memory_mb = 0;   // 0: no limit
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
  if (args.batches) c.calibration.batches = *args.batches;
  if (args.no_specs) c.specs.clear();
  return c;
}

// Unknown backends and options are bad input before anything runs.
void check_backends(const PluginRegistry& registry, const RunConfig& c) {
  for (const auto& b : c.backends) {
    // Each backend's outputs go to DIR/<name>, beside the run's reports.
    if (b.name == "conformance" || b.name.rfind("summary.", 0) == 0 || b.name.rfind(".qsdk", 0) == 0)
      throw InputError(b.where, "backend name '" + b.name + "' collides with a report qsdk run writes (" +
                                    "conformance/, summary.json, summary.md, .qsdk-*); rename the backend");
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

// One summary entry per backend: what summary.json lists, and what the
// table is made of. An isolated backend's entry comes from its child's
// summary.json; a backend that crashed gets {"backend", "error"}.
nlohmann::json summary_entry(const PipelineResult& r, double max_steps) {
  nlohmann::json j = r.manifest;
  j.erase("qparams");
  j["backend"] = r.backend;
  if (r.latency) j["latency_ms"] = {{"float", r.latency->float_ms}, {"int8", r.latency->int8_ms}};
  j["lowering_agrees"] = r.lowering_agrees(max_steps);
  j["seconds"] = r.seconds;
  return j;
}

std::vector<Row> summary_rows(const std::vector<nlohmann::json>& entries, const RunConfig& c,
                              const conformance::RunReport* report) {
  std::vector<Row> rows;
  for (const auto& e : entries) {
    Row row;
    row.backend = e.value("backend", "?");
    row.mode = c.qat ? "qat" : "ptq";
    if (e.contains("error")) {
      row.sqnr = row.size = "-";
      row.lowered = "ERROR: " + e["error"].get<std::string>();
      rows.push_back(row);
      continue;
    }
    if (e.contains("accuracy")) {
      row.float_acc = percent(e["accuracy"]["float_top1"].get<double>());
      row.int8_acc = percent(e["accuracy"]["quantized_top1"].get<double>());
    }
    const auto& lowering = e["lowering"];
    const bool lowered = lowering.contains("sqnr_db_lowered");
    row.sqnr = fixed(lowered ? lowering["sqnr_db_lowered"].get<double>() : e["sqnr_db"].get<double>(), 1);
    const double fsize = e["size_bytes"]["float"].get<double>(), qsize = e["size_bytes"]["quantized"].get<double>();
    row.size = fixed(qsize / 1024.0, 0) + " KB (" + fixed(fsize > 0 ? qsize / fsize : 0.0, 2) + "x)";
    if (e.contains("latency_ms")) {
      const double f = e["latency_ms"]["float"].get<double>(), q = e["latency_ms"]["int8"].get<double>();
      row.latency = fixed(f, 3) + " / " + fixed(q, 3) + " (" + fixed(q > 0 ? f / q : 0.0, 2) + "x)";
    }
    row.lowered = lowered ? lowering["target"].get<std::string>() + ", " +
                                fixed(lowering["max_difference_steps"].get<double>(), 2) + " steps"
                          : "reference Q/DQ";
    if (!e.value("lowering_agrees", true)) row.lowered += " FAIL";
    if (report) {
      int pass = 0, total = 0;
      for (const auto& cs : report->cases)
        if (cs.backend == row.backend) {
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

// --isolate: each backend runs in a child process of this executable (the
// same `qsdk run`, one backend, specs left to the parent), so a plugin that
// crashes, aborts, hangs or exhausts memory costs only its own row. The
// merged config goes to the child as a file, so flags apply there too.
std::vector<nlohmann::json> run_isolated(const GlobalOptions& global, const RunArgs& args, const RunConfig& config,
                                         const fs::path& staging, bool& failed) {
  const fs::path config_file = staging / ".config.yaml";
  write_file_atomically(config_file, to_yaml(config));
  std::vector<nlohmann::json> entries;
  for (const auto& b : config.backends) {
    std::cerr << "qsdk run: " << b.name << ": " << config.model << (config.qat ? " (QAT)" : " (PTQ)")
              << ", in a child process\n";
    const fs::path out = staging / (".child-" + b.name);
    ChildJob job;
    job.argv = {self_executable().string()};
    for (const auto& d : global.plugin_dirs) job.argv.insert(job.argv.end(), {"--plugin-dir", d.string()});
    if (global.allow_unsafe_plugins) job.argv.push_back("--allow-unsafe-plugins");
    job.argv.insert(job.argv.end(),
                    {"run", config_file.string(), "--backend", b.name, "--output", out.string(), "--no-specs"});
    job.stdout_file = staging / (".child-" + b.name + ".out");
    job.stderr_file = staging / (".child-" + b.name + ".err");
    if (args.backend_timeout > 0)
      job.timeout = std::chrono::milliseconds(static_cast<long>(args.backend_timeout * 1e3));
    if (args.backend_memory_mb > 0) job.memory_limit_bytes = std::size_t(args.backend_memory_mb) << 20;
    const ChildResult result = run_child(job);
    // The child's own "check failed" (exit 1) still produced outputs.
    const bool produced = result.started && !result.timed_out && result.signal == 0 &&
                          (result.exit_code == kExitOk || result.exit_code == kExitCheckFailed) &&
                          fs::exists(out / "summary.json");
    if (!produced) {
      failed = true;
      std::string reason = result.describe();
      if (result.started && !result.timed_out && result.signal == 0) {
        // An error the child reported itself: its last line says what.
        std::string tail = tail_of_file(job.stderr_file, 400);
        while (!tail.empty() && tail.back() == '\n') tail.pop_back();
        if (const auto nl = tail.rfind('\n'); nl != std::string::npos) tail = tail.substr(nl + 1);
        if (!tail.empty()) reason += ": " + tail;
      }
      std::cerr << "qsdk: error: " << b.name << ": backend run failed in its child process: " << reason << "\n";
      entries.push_back({{"backend", b.name}, {"error", reason}});
      continue;
    }
    if (result.exit_code == kExitCheckFailed) failed = true;
    std::ifstream in(out / "summary.json");
    auto child_summary = nlohmann::json::parse(in);
    for (const auto& e : child_summary["backends"]) entries.push_back(e);
    fs::rename(out / b.name, staging / b.name);
    fs::remove_all(out);
  }
  fs::remove(config_file);
  for (const auto& b : config.backends) {
    std::error_code ec;
    fs::remove(staging / (".child-" + b.name + ".out"), ec);
    fs::remove(staging / (".child-" + b.name + ".err"), ec);
  }
  return entries;
}

int run_run(const GlobalOptions& global, const RunArgs& args) {
  const RunConfig config = merged_config(args);
  if (args.print_config) {
    std::cout << to_yaml(config);
    return kExitOk;
  }
  const auto registry = load_plugins(global, /*failures_are_errors=*/false, config.plugin_search_paths);
  check_backends(registry, config);

  // Locked, and refused before any work (not only at the commit) when the
  // run would replace something qsdk did not write. A backend this run
  // fails for loses its previous output at the commit: the summary says
  // "error", and an older model beside it would say otherwise.
  std::vector<std::string> planned{"summary.json", "summary.md", "conformance"};
  for (const auto& b : config.backends) planned.push_back(b.name);
  OutputDirectory output(config.output_dir, planned, args.allow_unrelated_files);
  const fs::path& staging = output.staging();

  std::vector<nlohmann::json> entries;
  bool failed = false;
  if (args.isolate) {
    entries = run_isolated(global, args, config, staging, failed);
  } else {
    for (const auto& b : config.backends) {
      std::cerr << "qsdk run: " << b.name << ": " << config.model << (config.qat ? " (QAT)" : " (PTQ)") << "\n";
      const PipelineResult r = run_pipeline(registry, pipeline_options(config, b));
      const fs::path dir = staging / r.backend;
      write_pipeline_outputs(r, dir);
      write_file_atomically(dir / "layers.json", layers_json(r).dump(2) + "\n");
      if (!r.lowering_agrees(config.max_steps)) {
        failed = true;
        std::cerr << "qsdk: check failed: " << r.backend << ": lowered model differs from its reference by "
                  << r.max_difference_steps << " output steps (limit " << config.max_steps << ")"
                  << (r.first_bad_kernel.empty() ? "" : "; first kernel over the limit: " + r.first_bad_kernel) << "\n";
      }
      entries.push_back(summary_entry(r, config.max_steps));
    }
  }

  std::optional<conformance::RunReport> report;
  if (!config.specs.empty()) {
    conformance::RunOptions copts;
    copts.spec_paths = config.specs;
    for (const auto& b : config.backends) copts.backends.push_back(b.name);
    copts.output_dir = staging / "conformance";
    for (const auto& d : global.plugin_dirs)
      copts.child_global_args.insert(copts.child_global_args.end(), {"--plugin-dir", d.string()});
    for (const auto& d : config.plugin_search_paths)
      copts.child_global_args.insert(copts.child_global_args.end(), {"--plugin-dir", d.string()});
    if (global.allow_unsafe_plugins) copts.child_global_args.push_back("--allow-unsafe-plugins");
    copts.case_timeout_seconds = args.backend_timeout;
    copts.case_memory_mb = args.backend_memory_mb;
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

  const auto rows = summary_rows(entries, config, report ? &*report : nullptr);
  nlohmann::json summary{{"config", config.source}, {"model", config.model}, {"mode", config.qat ? "qat" : "ptq"}};
  summary["backends"] = entries;
  summary["passed"] = !failed;
  write_file_atomically(staging / "summary.json", summary.dump(2) + "\n");
  write_file_atomically(staging / "summary.md", "# qsdk run: " + config.model + "\n\n" + table(rows, true));
  output.commit();

  std::cout << "\n"
            << table(rows, false) << "\n"
            << "outputs: " << config.output_dir.string() << "/{";
  for (const auto& e : entries)
    if (!e.contains("error")) std::cout << e["backend"].get<std::string>() << "/, ";
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
  cmd->add_option("--batches", args->batches, "Calibration batches instead of the config's (0: one pass over the data)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-specs", args->no_specs, "Skip the config's conformance specs");
  cmd->add_flag("--allow-unrelated-files", args->allow_unrelated_files,
                "Write into an output directory that holds files qsdk did not write (beside them, never over them)");
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
