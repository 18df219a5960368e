#include "conformance/runner.h"

#include <fnmatch.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/child_process.h"
#include "common/error.h"
#include "common/yaml_input.h"
#include "conformance/bless.h"
#include "conformance/checks.h"
#include "conformance/measure.h"
#include "pipeline/measurements_json.h"
#include "plugins/plugin_registry.h"

namespace qsdk::conformance {
namespace {

using json = nlohmann::json;

json read_json(const std::filesystem::path& p) {
  const std::string text = read_file(p, "JSON file", kMaxStatsInputBytes);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(p.string(), std::string("not valid JSON: ") + e.what());
  }
}

std::string fmt(double v, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

}  // namespace

std::pair<int, int> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  try {
    if (slash != std::string::npos) {
      std::size_t a = 0, b = 0;
      const int k = std::stoi(text.substr(0, slash), &a);
      const int n = std::stoi(text.substr(slash + 1), &b);
      if (a == slash && b == text.size() - slash - 1 && n >= 1 && k >= 1 && k <= n) return {k, n};
    }
  } catch (const std::exception&) {
  }
  throw InputError("--shard " + text, "expected K/N with 1 <= K <= N, e.g. --shard 2/4");
}

std::map<std::string, std::vector<BackendOption>> declared_options(const PluginRegistry& plugins) {
  std::map<std::string, std::vector<BackendOption>> out;
  for (const auto& p : plugins.plugins()) out[p.backend->name] = p.backend->options;
  return out;
}

// An engine's replay of its first divergent op, out of the case's
// measurement into replay/<spec>.<backend>.json of the report (qsdk writes
// these names only; a later passing run leaves an older file in place).
void move_replays_to_files(json& m, const std::filesystem::path& output_dir) {
  auto engines = m.find("measurements");
  if (engines == m.end() || !engines->is_object() || !engines->contains("engines")) return;
  std::size_t index = 0;
  for (auto& e : (*engines)["engines"]) {
    if (!e.is_object() || !e.contains("replay")) continue;
    std::string stem = m.value("spec", std::string()) + "." + m.value("backend", std::string()) +
                       (index++ ? "." + std::to_string(index) : "");
    for (auto& c : stem)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
    const auto relative = std::filesystem::path("replay") / (stem + ".json");
    std::error_code ec;
    std::filesystem::create_directories(output_dir / "replay", ec);
    write_file_atomically(output_dir / relative, e["replay"].dump(1) + "\n");
    e.erase("replay");
    e["replay_file"] = relative.string();
  }
}

bool in_shard(std::size_t index, const std::pair<int, int>& shard) {
  return static_cast<int>(index % static_cast<std::size_t>(shard.second)) == shard.first - 1;
}

void run_one_case(const PluginRegistry& plugins, const CaseOptions& o) {
  LoadContext context{plugins.names(), o.models_dir, true, declared_options(plugins)};
  ConformanceSpec spec = load_spec(o.spec_file, context, o.spec_name);
  if (o.verify_engine) check_engine_only(spec, *o.verify_engine);
  MeasureOptions mo;
  mo.graph_svg = o.graphs;
  const json m = measure_case(plugins, spec, o.backend, mo);
  write_file_atomically(o.output, m.dump() + "\n");
}

int run_conformance(const PluginRegistry& plugins, const RunOptions& o, std::ostream& out, RunReport* result) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> loaded = plugins.names();
  std::vector<std::string> backends = o.backends.empty() ? loaded : o.backends;
  for (const auto& b : o.backends)
    if (std::find(loaded.begin(), loaded.end(), b) == loaded.end()) {
      const auto best = yaml::closest(b, loaded);
      throw InputError(
          "--backend " + b,
          "no such backend" + (best.empty() ? "" : " (did you mean '" + best + "'?)") + "; loaded: " + [&] {
            std::string l;
            for (const auto& x : loaded) l += (l.empty() ? "" : ", ") + x;
            return l.empty() ? std::string("none") : l;
          }());
    }
  if (backends.empty()) throw InputError("conformance", "no backends loaded (see qsdk plugins list)");

  // Every spec is validated; model files only for the specs the filter keeps
  // (a filtered run need not have every model).
  LoadContext context{loaded, o.models_dir, false, declared_options(plugins)};
  std::vector<ConformanceSpec> specs = load_specs(o.spec_paths, context, o.output_dir);
  if (!o.filters.empty()) {
    std::vector<ConformanceSpec> kept;
    for (auto& s : specs) {
      bool match = false;
      for (const auto& f : o.filters) match = match || fnmatch(f.c_str(), s.name.c_str(), 0) == 0;
      if (match) kept.push_back(std::move(s));
    }
    if (kept.empty()) {
      std::string f;
      for (const auto& x : o.filters) f += (f.empty() ? "" : " ") + x;
      throw InputError("--filter " + f, "matches no spec name");
    }
    specs = std::move(kept);
  }
  context.check_model_files = true;
  for (auto& s : specs) {
    s = parse_spec(s.text, s.file, context, s.name);
    if (o.verify_engine) check_engine_only(s, *o.verify_engine);
  }

  RunReport report;
  for (const auto& s : specs) report.specs.push_back(s.name);
  report.backends = backends;
  if (o.shard) report.shard = std::to_string(o.shard->first) + "/" + std::to_string(o.shard->second);

  // Every pair, in order; the shard's slice; what runs and what is skipped.
  struct Pending {
    const ConformanceSpec* spec;
    std::string backend;
    std::size_t result_index;
  };
  std::vector<Pending> to_run;
  std::size_t index = 0;
  for (const auto& s : specs)
    for (const auto& b : backends) {
      const std::size_t i = index++;
      if (o.shard && !in_shard(i, *o.shard)) continue;
      CaseResult c;
      c.spec = s.name;
      c.backend = b;
      c.spec_file = s.file.string();
      if (!s.applies_to(b)) {
        c.status = Status::Skip;
        c.reason = "not one of this spec's backends";
      } else if (const auto it = s.skip.find(b); it != s.skip.end()) {
        c.status = Status::Skip;
        c.reason = it->second;
      } else {
        to_run.push_back({&s, b, report.cases.size()});
      }
      report.cases.push_back(std::move(c));
    }

  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  if (ec) throw InputError(o.output_dir.string(), "cannot create the report directory: " + ec.message());
  // A name no user gives a folder, since it is removed at the end.
  const auto work = o.output_dir / (".qsdk-cases-" + std::to_string(getpid()));
  std::filesystem::create_directories(work, ec);

  const int jobs = o.jobs > 0 ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  const auto exe = self_executable();
  std::vector<ChildJob> children;
  for (std::size_t k = 0; k < to_run.size(); ++k) {
    const auto& p = to_run[k];
    const std::string stem = std::to_string(k);
    ChildJob j;
    j.argv.push_back(exe.string());
    for (const auto& a : o.child_global_args) j.argv.push_back(a);
    j.argv.insert(j.argv.end(), {"conformance", "--run-case", p.spec->file.string(), "--case-name", p.spec->name,
                                 "--case-backend", p.backend, "--case-output", (work / (stem + ".json")).string(),
                                 "--models-dir", o.models_dir.string()});
    if (!o.graphs) j.argv.push_back("--no-graphs");
    if (o.verify_engine)
      j.argv.insert(j.argv.end(),
                    {"--verify-engine", o.verify_engine->verify.spec_text(), "--engine", o.verify_engine->run});
    j.stdout_file = work / (stem + ".out");
    j.stderr_file = work / (stem + ".err");
    j.env.push_back({"OMP_NUM_THREADS", std::to_string(std::max(1, o.threads_per_case))});
    if (o.case_timeout_seconds > 0)
      j.timeout = std::chrono::milliseconds(static_cast<long>(o.case_timeout_seconds * 1e3));
    if (o.case_memory_mb > 0) j.memory_limit_bytes = std::size_t(o.case_memory_mb) << 20;
    std::filesystem::remove(work / (stem + ".json"), ec);
    children.push_back(std::move(j));
  }

  out << "conformance: " << specs.size() << " specs x " << backends.size() << " backends"
      << (o.shard ? " (shard " + report.shard + ")" : "") << ": " << to_run.size() << " cases to run, " << jobs
      << " at a time\n"
      << std::flush;
  std::size_t done = 0;
  run_children(children, jobs, [&](std::size_t k, const ChildResult& child) {
    const auto& p = to_run[k];
    const auto json_file = work / (std::to_string(k) + ".json");
    json m;
    std::error_code e2;
    if (child.ok() && std::filesystem::exists(json_file, e2)) {
      try {
        m = read_json(json_file);  // evaluate reads its pipeline part (version, layout)
      } catch (const InputError& e) {
        m = {{"outcome", "error"}, {"error", e.what()}};
      }
    } else {
      std::string err = tail_of_file(work / (std::to_string(k) + ".err"));
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      m = {{"outcome", "error"},
           {"error", "the case's process failed (" + child.describe() + ")" + (err.empty() ? "" : ":\n" + err)}};
    }
    m["spec"] = p.spec->name;
    m["backend"] = p.backend;
    m["spec_file"] = p.spec->file.string();
    if (!m.contains("seconds")) m["seconds"] = child.seconds;
    move_replays_to_files(m, o.output_dir);
    BackendOptions ran_with;
    if (const auto it = m.find("backend_options"); it != m.end() && it->is_object())
      for (const auto& [key, value] : it->items())
        if (value.is_string()) ran_with[key] = value.get<std::string>();
    CaseResult r = evaluate(p.spec->expectations_for(p.backend, ran_with), m);
    r.spec = p.spec->name;
    r.backend = p.backend;
    r.spec_file = p.spec->file.string();
    report.cases[p.result_index] = r;
    ++done;
    out << "[" << done << "/" << to_run.size() << "] " << p.spec->name << " on " << p.backend << ": "
        << to_string(r.status) << (r.expected_failure ? " (expected failure)" : "") << " (" << fmt(child.seconds, 1)
        << " s)\n"
        << std::flush;
  });
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  write_reports(report, o.output_dir);
  std::filesystem::remove_all(work, ec);
  out << "\n" << matrix_text(report);
  const auto failures = failures_text(report);
  if (!failures.empty()) out << "\n" << failures;
  out << "\n" << summary_line(report) << "\n";
  out << "reports: " << (o.output_dir / "report.html").string() << ", " << (o.output_dir / "junit.xml").string() << ", "
      << (o.output_dir / "results.json").string() << "\n";

  if (o.bless) {
    const auto written = bless_specs(specs, report, o.output_dir / "blessed");
    if (written.empty()) out << "bless: no passing case without structure expectations; nothing to write\n";
    for (const auto& w : written)
      out << "bless: wrote " << w.second.string() << "  (review: diff -u " << w.first.string() << " "
          << w.second.string() << ")\n";
  }
  const int code = report.exit_code();
  if (result) *result = std::move(report);
  return code;
}

int merge_results(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& output_dir,
                  std::ostream& out) {
  std::vector<RunReport> shards;
  std::vector<std::string> sources;
  for (const auto& p : inputs) {
    std::filesystem::path file = p;
    if (std::filesystem::is_directory(p)) file = p / "results.json";
    // Each measured case goes through the one measurements reader: a
    // results.json from another qsdk version is named, not half-read.
    shards.push_back(report_from_json(read_json(file), file.string()));
    sources.push_back(file.string());
  }
  RunReport merged = merge_reports(shards, sources);
  write_reports(merged, output_dir);
  out << matrix_text(merged);
  const auto failures = failures_text(merged);
  if (!failures.empty()) out << "\n" << failures;
  out << "\n" << summary_line(merged) << "\n";
  out << "reports: " << (output_dir / "report.html").string() << ", " << (output_dir / "junit.xml").string() << ", "
      << (output_dir / "results.json").string() << "\n";
  return merged.exit_code();
}

}  // namespace qsdk::conformance
