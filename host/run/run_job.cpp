#include "run/run_job.h"

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "accuracy/mixed_precision.h"
#include "common/atomic_file.h"
#include "common/child_process.h"
#include "common/error.h"
#include "common/output_ledger.h"
#include "common/yaml_input.h"
#include "conformance/runner.h"
#include "graph/graph.h"
#include "pipeline/measurements_json.h"
#include "pipeline/pipeline.h"
#include "plugins/plugin_registry.h"

namespace qsdk {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Each backend's outputs go to DIR/<name>, beside the job's own reports.
void check_backend_name(const BackendSelection& b) {
  if (b.name == "conformance" || b.name.rfind("summary.", 0) == 0 || b.name.rfind(".qsdk", 0) == 0)
    throw InputError(b.where, "backend name '" + b.name + "' collides with a report qsdk run writes (" +
                                  "conformance/, summary.json, summary.md, .qsdk-*); rename the backend");
}

void check_loaded(const PluginRegistry& registry, const BackendChoice& b) {
  if (registry.find(b.name)) return;
  const auto known = registry.names();
  const auto best = yaml::closest(b.name, known);
  std::string list;
  for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
  throw InputError(b.where, "unknown backend '" + b.name + "'" +
                                (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                "; loaded backends: " + (list.empty() ? "none" : list));
}

std::string fixed(double v, int digits) {
  if (std::isinf(v)) return "inf";
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string percent(double v) { return fixed(100.0 * v, 2) + "%"; }

std::string mode_of(const RunConfig& c) { return c.pipeline.qat ? "qat" : "ptq"; }

std::string plain(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

std::string lowering_failure(const Measurements& m, const PipelineOptions& o) {
  const auto& l = *m.lowered;
  return m.backend + ": lowered model differs from its reference by " + plain(l.max_difference_steps) +
         " output steps (limit " + plain(o.max_steps) + "), " + plain(l.noise_margin_db) +
         " dB below the quantization noise (limit " + plain(o.min_noise_margin_db) + "), SQNR against float " +
         plain(l.sqnr_db_lowered) + " dB against the reference's " + plain(m.sqnr_db) + " (at most " +
         plain(kMaxLoweredSqnrLossDb) + " dB lower)" +
         (l.first_over_limit.empty() ? "" : "; first kernel over the limit: " + l.first_over_limit);
}

// --isolate: each backend runs in a child process of this executable (the
// same `qsdk run`, one backend, specs left to the parent), so a plugin that
// crashes, aborts, hangs or exhausts memory costs only its own row. The
// merged config goes to the child as a file, so flags apply there too.
BackendRunResult run_isolated(const RunJobOptions& o, const BackendSelection& b, const fs::path& staging,
                              const fs::path& config_file) {
  const fs::path out = staging / (".child-" + b.name);
  ChildJob job;
  job.argv = {self_executable().string()};
  job.argv.insert(job.argv.end(), o.child_global_args.begin(), o.child_global_args.end());
  job.argv.insert(job.argv.end(),
                  {"run", config_file.string(), "--backend", b.name, "--output", out.string(), "--no-specs"});
  job.stdout_file = staging / (".child-" + b.name + ".out");
  job.stderr_file = staging / (".child-" + b.name + ".err");
  if (o.backend_timeout_seconds > 0)
    job.timeout = std::chrono::milliseconds(static_cast<long>(o.backend_timeout_seconds * 1e3));
  if (o.backend_memory_mb > 0) job.memory_limit_bytes = std::size_t(o.backend_memory_mb) << 20;
  const ChildResult child = run_child(job);
  BackendRunResult result{b.name, std::nullopt, "", true};
  // The child's own "check failed" (exit 1) still produced outputs.
  const bool produced = child.started && !child.timed_out && child.signal == 0 &&
                        (child.exit_code == kExitOk || child.exit_code == kExitCheckFailed) &&
                        fs::exists(out / "summary.json");
  if (!produced) {
    result.error = child.describe();
    if (child.started && !child.timed_out && child.signal == 0) {
      // An error the child reported itself: its last line says what.
      std::string tail = tail_of_file(job.stderr_file, 400);
      while (!tail.empty() && tail.back() == '\n') tail.pop_back();
      if (const auto nl = tail.rfind('\n'); nl != std::string::npos) tail = tail.substr(nl + 1);
      if (!tail.empty()) result.error += ": " + tail;
    }
  } else {
    // Across the process boundary: the child's summary entry, read by the
    // one measurements reader.
    const fs::path summary_file = out / "summary.json";
    try {
      const json summary = json::parse(read_file(summary_file, "child summary"));
      const json& entry = summary.at("backends").at(0);
      result.measurements = measurements_from_json(entry, summary_file.string());
      result.lowering_agrees = entry.value("lowering_agrees", true);
      fs::rename(out / b.name, staging / b.name);
    } catch (const std::exception& e) {  // a child that wrote nonsense fails its own row only
      result.measurements.reset();
      result.error = std::string("its summary could not be read: ") + e.what();
    }
  }
  std::error_code ec;
  fs::remove_all(out, ec);
  fs::remove(job.stdout_file, ec);
  fs::remove(job.stderr_file, ec);
  return result;
}

json summary_json(const RunJobResult& r, const RunConfig& c) {
  json summary{{"config", c.source}, {"model", c.pipeline.model}, {"mode", mode_of(c)}};
  summary["backends"] = json::array();
  for (const auto& b : r.backends)
    summary["backends"].push_back(
        b.measurements ? summary_entry_json(*b.measurements, c.pipeline.max_steps, c.pipeline.min_noise_margin_db)
                       : json{{"backend", b.backend}, {"error", b.error}});
  summary["passed"] = r.passed;
  return summary;
}

}  // namespace

int RunJobResult::exit_code() const { return passed ? kExitOk : kExitCheckFailed; }

RunJobResult run_job(const PluginRegistry& registry, const RunJobOptions& o, std::ostream& progress) {
  const RunConfig& config = o.config;
  // Every backend is made once with its options, before any work: a bad
  // name or option is an error at its place in the config.
  std::vector<std::vector<std::shared_ptr<const Backend>>> made;
  for (const auto& b : config.backends) {
    check_backend_name(b);
    for (const auto& member : b.backends) check_loaded(registry, member);
    made.push_back(instantiate_backends(registry, b.backends));
  }

  // Locked, and refused before any work (not only at the commit) when the
  // run would replace something qsdk did not write. A backend this run
  // fails for loses its previous output at the commit: the summary says
  // "error", and an older model beside it would say otherwise.
  std::vector<std::string> planned{"summary.json", "summary.md", "conformance"};
  for (const auto& b : config.backends) planned.push_back(b.name);
  OutputDirectory output(config.output_dir, planned, o.allow_unrelated_files);
  const fs::path& staging = output.staging();

  RunJobResult result;
  fs::path config_file;
  if (o.isolate) {
    config_file = staging / ".config.yaml";
    write_file_atomically(config_file, to_yaml(config));
  }
  for (std::size_t i = 0; i < config.backends.size(); ++i) {
    const auto& b = config.backends[i];
    progress << "qsdk run: " << b.name << ": " << config.pipeline.model << (config.pipeline.qat ? " (QAT)" : " (PTQ)")
             << (o.isolate ? ", in a child process" : "") << "\n";
    BackendRunResult row;
    if (o.isolate) {
      row = run_isolated(o, b, staging, config_file);
      if (!row.measurements) {
        progress << "qsdk: error: " << b.name << ": backend run failed in its child process: " << row.error << "\n";
        result.passed = false;
      }
    } else {
      const PipelineResult r = run_pipeline_for_target(registry, config.pipeline_for(b), made[i], &progress);
      write_pipeline_outputs(r, staging / r.measurements.backend, /*with_layers=*/true, config.pipeline.formats);
      row = {r.measurements.backend, r.measurements, "",
             r.measurements.lowering_agrees(config.pipeline.max_steps, config.pipeline.min_noise_margin_db)};
    }
    if (row.measurements && !row.lowering_agrees) {
      result.passed = false;
      result.check_failures.push_back(lowering_failure(*row.measurements, config.pipeline));
      progress << "qsdk: check failed: " << result.check_failures.back() << "\n";
    }
    if (row.measurements)
      if (const auto problem =
              row.measurements->onnx_problem(config.pipeline.onnx_max_steps, config.pipeline.min_noise_margin_db);
          !problem.empty()) {
        result.passed = false;
        result.check_failures.push_back(b.name + ": " + problem);
        progress << "qsdk: check failed: " << result.check_failures.back() << "\n";
      }
    if (row.measurements && row.measurements->onnx) progress << onnx_summary(*row.measurements->onnx);
    if (row.measurements)
      for (const auto& e : row.measurements->engines) progress << engine_summary(e);
    result.backends.push_back(std::move(row));
  }
  if (o.isolate) fs::remove(config_file);

  if (!config.specs.empty()) {
    conformance::RunOptions copts;
    copts.spec_paths = config.specs;
    for (const auto& b : config.backends) copts.backends.push_back(b.name);
    copts.output_dir = staging / "conformance";
    copts.child_global_args = o.child_global_args;
    for (const auto& d : config.plugin_search_paths)
      copts.child_global_args.insert(copts.child_global_args.end(), {"--plugin-dir", d.string()});
    copts.case_timeout_seconds = o.backend_timeout_seconds;
    copts.case_memory_mb = o.backend_memory_mb;
    std::ostringstream log;  // the matrix is the caller's to print, from the report
    conformance::RunReport report;
    if (conformance::run_conformance(registry, copts, log, &report) != kExitOk) result.passed = false;
    result.conformance = std::move(report);
  }

  write_file_atomically(staging / "summary.json", summary_json(result, config).dump(2) + "\n");
  write_file_atomically(staging / "summary.md",
                        "# qsdk run: " + config.pipeline.model + "\n\n" + summary_table(result, config, true));
  output.commit();
  return result;
}

std::string summary_table(const RunJobResult& result, const RunConfig& config, bool markdown) {
  const std::vector<std::string> head{"backend",
                                      "mode",
                                      "float acc",
                                      "int8 acc",
                                      "SQNR dB",
                                      "ops int8 / float",
                                      "size",
                                      "latency ms float / int8",
                                      "lowered vs reference",
                                      "ONNX Runtime vs reference",
                                      "conformance"};
  std::vector<std::vector<std::string>> cells{head};
  for (const auto& b : result.backends) {
    std::vector<std::string> row{b.backend, mode_of(config), "-", "-", "-", "-", "-", "-", "", "-", "-"};
    if (!b.measurements) {
      row[8] = "ERROR: " + b.error;
      cells.push_back(row);
      continue;
    }
    const Measurements& m = *b.measurements;
    if (m.accuracy) {
      row[2] = percent(m.accuracy->float_top1);
      row[3] = percent(m.accuracy->quantized_top1);
      if (m.accuracy->float_perplexity) {  // a language model: next-token top-1 and perplexity
        row[2] += ", ppl " + fixed(*m.accuracy->float_perplexity, 3);
        row[3] += ", ppl " + fixed(m.accuracy->quantized_perplexity.value_or(0), 3);
      }
    }
    row[4] = fixed(m.lowered ? m.lowered->sqnr_db_lowered : m.sqnr_db, 1);
    // Float tensor ops; shape/scalar bookkeeping (aten::size, aten::Int) apart.
    row[5] = std::to_string(m.quantized_ops()) + " / " + std::to_string(m.float_tensor_ops()) +
             (m.bookkeeping_ops() ? " (+" + std::to_string(m.bookkeeping_ops()) + " shape)" : "");
    const double fsize = double(m.float_size), qsize = double(m.quantized_size);
    row[6] = fixed(qsize / 1024.0, 0) + " KB (" + fixed(fsize > 0 ? qsize / fsize : 0.0, 2) + "x)";
    if (m.latency) {
      const double f = m.latency->float_ms, q = m.latency->int8_ms;
      row[7] = fixed(f, 3) + " / " + fixed(q, 3) + " (" + fixed(q > 0 ? f / q : 0.0, 2) + "x)";
    }
    row[8] =
        m.lowered ? m.lowering_target + ", " + fixed(m.lowered->max_difference_steps, 2) + " steps" : "reference Q/DQ";
    if (!b.lowering_agrees) row[8] += " FAIL";
    if (m.onnx && !m.onnx->runtime.empty()) {
      // Optimizations all / disabled, in output steps (absolute for a float output).
      std::string cell;
      for (const auto& r : m.onnx->runtime) cell += (cell.empty() ? "" : " / ") + fixed(r.max_steps, 2);
      row[9] = cell + (m.onnx->runtime.front().output_scale > 0 ? " steps" : " abs");
      if (!m.onnx_problem(config.pipeline.onnx_max_steps, config.pipeline.min_noise_margin_db).empty())
        row[9] += " FAIL";
    } else if (m.onnx) {
      row[9] = "not run";
    }
    if (result.conformance) {
      int pass = 0, total = 0;
      for (const auto& cs : result.conformance->cases)
        if (cs.backend == b.backend) {
          ++total;
          pass += cs.status == conformance::Status::Pass || cs.status == conformance::Status::Skip;
        }
      if (total) row[10] = (pass == total ? "pass " : "FAIL ") + std::to_string(pass) + "/" + std::to_string(total);
    }
    cells.push_back(row);
  }
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
  for (const auto& b : result.backends)
    if (b.measurements && !b.measurements->output_warning.empty())
      out << (markdown ? "\n" : "") << "warning: " << b.backend << ": " << b.measurements->output_warning << "\n";
  return out.str();
}

}  // namespace qsdk
