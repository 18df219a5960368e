#include "conformance/reports.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/markup.h"
#include "pipeline/measurements_json.h"

namespace qsdk::conformance {
namespace {

using json = nlohmann::json;

std::string fmt(double v, int precision = 2) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

std::string cell_text(const CaseResult* c) {
  if (!c) return "-";
  std::string s = to_string(c->status);
  if (c->expected_failure) s += "*";
  return s;
}

std::string anchor(const CaseResult& c) {
  std::string a = "case-" + c.spec + "-" + c.backend;
  for (char& ch : a)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '-';
  return a;
}

std::string case_failure_text(const CaseResult& c) {
  std::ostringstream out;
  out << to_string(c.status) << ": " << c.spec << " on " << c.backend;
  if (!c.spec_file.empty()) out << " (" << c.spec_file << ")";
  out << "\n";
  if (!c.reason.empty()) out << "    " << c.reason << "\n";
  for (const auto& check : c.checks)
    if (!check.passed) out << "    " << check.message() << "\n";
  return out.str();
}

}  // namespace

int RunReport::count(Status s) const {
  return static_cast<int>(
      std::count_if(cases.begin(), cases.end(), [s](const CaseResult& c) { return c.status == s; }));
}

const CaseResult* RunReport::find(const std::string& spec, const std::string& backend) const {
  for (const auto& c : cases)
    if (c.spec == spec && c.backend == backend) return &c;
  return nullptr;
}

int RunReport::exit_code() const { return count(Status::Fail) + count(Status::Error) > 0 ? 1 : 0; }

json report_json(const RunReport& r) {
  json cases = json::array();
  for (const auto& c : r.cases) cases.push_back(to_json(c));
  return json{{"qsdk_conformance_version", 1},
              {"specs", r.specs},
              {"backends", r.backends},
              {"shard", r.shard},
              {"seconds", r.seconds},
              {"summary",
               {{"cases", r.cases.size()},
                {"pass", r.count(Status::Pass)},
                {"fail", r.count(Status::Fail)},
                {"skip", r.count(Status::Skip)},
                {"error", r.count(Status::Error)}}},
              {"cases", cases}};
}

RunReport report_from_json(const json& j, const std::string& source) {
  if (!j.is_object() || j.value("qsdk_conformance_version", 0) != 1)
    throw InputError(source, "not a qsdk conformance results.json (no qsdk_conformance_version 1)");
  RunReport r;
  try {
    r.specs = j.at("specs").get<std::vector<std::string>>();
    r.backends = j.at("backends").get<std::vector<std::string>>();
    r.shard = j.value("shard", std::string());
    r.seconds = number_of(j.value("seconds", json(0.0)));
    for (const auto& c : j.at("cases")) r.cases.push_back(case_from_json(c, source));
  } catch (const json::exception& e) {
    throw InputError(source, std::string("malformed results: ") + e.what());
  }
  return r;
}

RunReport merge_reports(const std::vector<RunReport>& shards, const std::vector<std::string>& sources) {
  if (shards.empty()) throw InputError("conformance merge", "no results files given");
  RunReport out;
  out.specs = shards.front().specs;
  out.backends = shards.front().backends;
  std::map<std::pair<std::string, std::string>, std::string> seen;  // case -> source
  std::vector<CaseResult> all;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const auto& s = shards[i];
    if (s.specs != out.specs || s.backends != out.backends)
      throw InputError(sources[i], "a shard of a different suite: its specs or backends differ from " + sources[0] +
                                       "'s (run every shard with the same specs, --filter and --backend)");
    for (const auto& c : s.cases) {
      const auto key = std::make_pair(c.spec, c.backend);
      if (const auto it = seen.find(key); it != seen.end())
        throw InputError(sources[i], "case " + c.spec + " on " + c.backend + " is also in " + it->second +
                                         " (the same shard given twice?)");
      seen[key] = sources[i];
      all.push_back(c);
    }
    out.seconds = std::max(out.seconds, s.seconds);
  }
  std::map<std::string, std::size_t> spec_index, backend_index;
  for (std::size_t i = 0; i < out.specs.size(); ++i) spec_index[out.specs[i]] = i;
  for (std::size_t i = 0; i < out.backends.size(); ++i) backend_index[out.backends[i]] = i;
  std::stable_sort(all.begin(), all.end(), [&](const CaseResult& a, const CaseResult& b) {
    return std::make_pair(spec_index[a.spec], backend_index[a.backend]) <
           std::make_pair(spec_index[b.spec], backend_index[b.backend]);
  });
  // A case no shard ran (a shard missing) is an error in the merged report.
  for (const auto& spec : out.specs)
    for (const auto& backend : out.backends)
      if (!seen.count({spec, backend})) {
        CaseResult missing;
        missing.spec = spec;
        missing.backend = backend;
        missing.status = Status::Error;
        missing.reason = "no shard ran this case (a shard's results.json missing from the merge?)";
        all.push_back(missing);
      }
  std::stable_sort(all.begin(), all.end(), [&](const CaseResult& a, const CaseResult& b) {
    return std::make_pair(spec_index[a.spec], backend_index[a.backend]) <
           std::make_pair(spec_index[b.spec], backend_index[b.backend]);
  });
  out.cases = std::move(all);
  return out;
}

std::string matrix_text(const RunReport& r) {
  std::size_t w0 = 4;
  for (const auto& s : r.specs) w0 = std::max(w0, s.size());
  std::vector<std::size_t> w;
  for (const auto& b : r.backends) w.push_back(std::max<std::size_t>(b.size(), 6));
  std::ostringstream out;
  out << std::left << std::setw(static_cast<int>(w0 + 2)) << "spec";
  for (std::size_t i = 0; i < r.backends.size(); ++i) out << std::setw(static_cast<int>(w[i] + 2)) << r.backends[i];
  out << "\n";
  for (const auto& s : r.specs) {
    bool any = false;
    for (const auto& b : r.backends) any = any || r.find(s, b);
    if (!any) continue;  // another shard's row
    out << std::setw(static_cast<int>(w0 + 2)) << s;
    for (std::size_t i = 0; i < r.backends.size(); ++i)
      out << std::setw(static_cast<int>(w[i] + 2)) << cell_text(r.find(s, r.backends[i]));
    out << "\n";
  }
  return out.str();
}

std::string failures_text(const RunReport& r) {
  std::string out;
  for (const auto& c : r.cases)
    if (c.status == Status::Fail || c.status == Status::Error) out += case_failure_text(c);
  return out;
}

std::string summary_line(const RunReport& r) {
  int xfail = 0;
  for (const auto& c : r.cases) xfail += c.expected_failure ? 1 : 0;
  std::ostringstream out;
  out << r.cases.size() << " cases: " << r.count(Status::Pass) << " passed";
  if (xfail) out << " (" << xfail << " as expected failures, marked *)";
  out << ", " << r.count(Status::Fail) << " failed, " << r.count(Status::Skip) << " skipped, " << r.count(Status::Error)
      << " errors";
  if (!r.shard.empty()) out << " (shard " << r.shard << ")";
  out << " in " << fmt(r.seconds, 1) << " s";
  return out.str();
}

std::string junit_xml(const RunReport& r) {
  std::ostringstream out;
  const int tests = static_cast<int>(r.cases.size());
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"qsdk conformance\" tests=\"" << tests << "\" failures=\"" << r.count(Status::Fail)
      << "\" errors=\"" << r.count(Status::Error) << "\" skipped=\"" << r.count(Status::Skip) << "\" time=\""
      << fmt(r.seconds, 3) << "\">\n";
  for (const auto& backend : r.backends) {
    std::vector<const CaseResult*> cs;
    for (const auto& c : r.cases)
      if (c.backend == backend) cs.push_back(&c);
    if (cs.empty()) continue;
    int f = 0, e = 0, s = 0;
    double t = 0;
    for (const auto* c : cs) {
      f += c->status == Status::Fail;
      e += c->status == Status::Error;
      s += c->status == Status::Skip;
      t += c->seconds;
    }
    out << "  <testsuite name=\"qsdk.conformance." << escape_xml(backend) << "\" tests=\"" << cs.size()
        << "\" failures=\"" << f << "\" errors=\"" << e << "\" skipped=\"" << s << "\" time=\"" << fmt(t, 3) << "\">\n";
    for (const auto* c : cs) {
      out << "    <testcase classname=\"qsdk.conformance." << escape_xml(backend) << "\" name=\"" << escape_xml(c->spec)
          << "\" file=\"" << escape_xml(c->spec_file) << "\" time=\"" << fmt(c->seconds, 3) << "\"";
      if (c->status == Status::Pass && c->checks.empty()) {
        out << "/>\n";
        continue;
      }
      out << ">\n";
      if (c->status == Status::Skip) out << "      <skipped message=\"" << escape_xml(c->reason) << "\"/>\n";
      if (c->status == Status::Fail) {
        std::string first;
        for (const auto& k : c->checks)
          if (!k.passed && first.empty()) first = k.check + ": expected " + k.expected + ", found " + k.found;
        out << "      <failure type=\"conformance check\" message=\"" << escape_xml(first) << "\">"
            << escape_xml(case_failure_text(*c)) << "</failure>\n";
      }
      if (c->status == Status::Error)
        out << "      <error type=\"error\" message=\"" << escape_xml(c->reason) << "\">"
            << escape_xml(case_failure_text(*c)) << "</error>\n";
      std::string passed;
      for (const auto& k : c->checks)
        if (k.passed) passed += "ok " + k.check + ": " + k.found + "\n";
      if (!passed.empty()) out << "      <system-out>" << escape_xml(passed) << "</system-out>\n";
      out << "    </testcase>\n";
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
  return out.str();
}

// An engine against the integer reference, layer by layer (every quantized
// tensor in graph order) and at the output.
std::string engine_table(const EngineAgreement& e) {
  std::ostringstream h;
  h << "<h4>Engine vs integer reference: " << escape_xml(e.engine)
    << "</h4>\n<p>arithmetic: " << escape_xml(e.arithmetic) << "; " << e.samples << " samples";
  if (!e.unsupported.empty()) h << "; did not run this model: " << escape_xml(e.unsupported);
  if (!e.error.empty()) h << "; failed: " << escape_xml(e.error);
  if (!e.replay_file.empty())
    h << "; first divergence " << escape_xml(e.first_divergent) << ", replay: <a href=\"" << escape_xml(e.replay_file)
      << "\">" << escape_xml(e.replay_file) << "</a>";
  h << "</p>\n";
  if (!e.ran()) return h.str();
  h << "<details" << (e.first_divergent.empty() ? "" : " open") << "><summary>" << e.tensors.size()
    << " quantized tensors and the output</summary>\n<table><tr><th>tensor</th><th>op</th><th>reference "
       "computes</th><th>max LSB (op by op)</th><th>max LSB (from the input)</th><th>values "
       "differing</th><th>SQNR dB</th></tr>\n";
  auto row = [&](const EngineTensorAgreement& t) {
    const bool off = t.returned && t.max_lsb != 0;
    h << "<tr><td>" << escape_xml(t.tensor) << "</td><td>" << escape_xml(t.op) << " " << escape_xml(t.op_type)
      << "</td><td>" << escape_xml(t.reference) << "</td><td class=\"" << (off ? "bad" : "ok") << "\">";
    if (!t.returned)
      h << "not returned";
    else if (t.max_lsb < 0)
      h << "|diff| " << fmt(t.max_abs, 6);
    else
      h << t.max_lsb;
    h << "</td><td>" << (t.returned && t.max_lsb >= 0 ? std::to_string(t.chain_max_lsb) : std::string("-"))
      << "</td><td>" << t.mismatched << " / " << t.elements << "</td><td>" << fmt(t.sqnr_db) << "</td></tr>\n";
  };
  for (const auto& t : e.tensors) row(t);
  row(e.output);
  h << "</table></details>\n";
  return h.str();
}

std::string sqnr_chart_svg(const std::vector<LayerSqnr>& layers) {
  if (layers.empty()) return "";
  const double top = 60.0;  // dB at the top of the chart; higher values are clipped
  const int bar = layers.size() > 80 ? 6 : layers.size() > 40 ? 10 : 16;
  const int gap = 2, left = 40, height = 180, bottom = 24;
  const int width = left + static_cast<int>(layers.size()) * (bar + gap) + 10;
  std::ostringstream s;
  s << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
    << height + bottom + 10 << "\" role=\"img\" aria-label=\"per-layer SQNR\">";
  s << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height + bottom + 10 << "\" fill=\"#ffffff\"/>";
  for (int db = 0; db <= 60; db += 20) {
    const double y = 5 + height * (1 - db / top);
    s << "<line x1=\"" << left << "\" x2=\"" << width << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#dddddd\"/><text x=\"" << left - 4 << "\" y=\"" << y + 4
      << "\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">" << db << "</text>";
  }
  s << "<text x=\"2\" y=\"12\" font-size=\"10\" fill=\"#555\">dB</text>";
  int i = 0;
  for (const auto& l : layers) {
    const double v = l.sqnr_db;
    const double clipped = std::isnan(v) ? 0 : std::max(0.0, std::min(top, v));
    const double h = height * clipped / top;
    const int x = left + i * (bar + gap);
    const char* colour = v >= 30 ? "#43a047" : v >= 20 ? "#fb8c00" : "#e53935";
    std::string label = "%" + std::to_string(l.node) + " " + l.op;
    if (!l.module_path.empty()) label += " (" + l.module_path + ")";
    s << "<rect x=\"" << x << "\" y=\"" << 5 + height - h << "\" width=\"" << bar << "\" height=\"" << h << "\" fill=\""
      << colour << "\"><title>" << escape_xml(label) << ": " << fmt(v) << " dB</title></rect>";
    if (bar >= 16 || i % 5 == 0)
      s << "<text x=\"" << x + bar / 2 << "\" y=\"" << height + 18 << "\" font-size=\"9\" text-anchor=\"middle\" "
        << "fill=\"#333\">" << l.node << "</text>";
    ++i;
  }
  s << "</svg>";
  return s.str();
}

std::string html_report(const RunReport& r) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<title>qsdk conformance report</title><style>\n"
    << "body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse}"
    << "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}"
    << "th{background:#f0f0f0}.pass{background:#c8e6c9}.fail{background:#ffcdd2}.skip{background:#eeeeee}"
    << ".error{background:#ffe0b2}.warn{color:#a15c00}td.cell a{color:#222;text-decoration:none;display:block}"
    << "pre{background:#f7f7f7;padding:8px;white-space:pre-wrap}section.case{border-top:1px solid #ccc;margin-top:16px}"
    << ".graph{max-width:100%;max-height:900px;overflow:auto;border:1px solid "
       "#ddd}.ok{color:#2e7d32}.bad{color:#c62828}"
    << "\n</style></head><body>\n";
  h << "<h1>qsdk conformance</h1>\n<p id=\"summary\">" << escape_xml(summary_line(r)) << "</p>\n";
  h << "<h2>Matrix</h2>\n<table id=\"matrix\"><tr><th>spec</th>";
  for (const auto& b : r.backends) h << "<th>" << escape_xml(b) << "</th>";
  h << "</tr>\n";
  for (const auto& s : r.specs) {
    bool any = false;
    for (const auto& b : r.backends) any = any || r.find(s, b);
    if (!any) continue;
    h << "<tr><td>" << escape_xml(s) << "</td>";
    for (const auto& b : r.backends) {
      const CaseResult* c = r.find(s, b);
      if (!c) {
        h << "<td>-</td>";
        continue;
      }
      h << "<td class=\"cell " << to_string(c->status) << "\"><a href=\"#" << anchor(*c) << "\">"
        << escape_xml(cell_text(c)) << "</a></td>";
    }
    h << "</tr>\n";
  }
  h << "</table>\n<p>* passed as an expected failure (the backend rejected or skipped the model as the spec "
       "says).</p>\n";
  const std::string failures = failures_text(r);
  h << "<h2>Failures</h2>\n";
  if (failures.empty())
    h << "<p>None.</p>\n";
  else
    h << "<pre id=\"failures\">" << escape_xml(failures) << "</pre>\n";

  h << "<h2>Cases</h2>\n";
  for (const auto& c : r.cases) {
    if (c.status == Status::Skip) continue;
    const json& m = c.measurement;
    h << "<section class=\"case\" id=\"" << anchor(c) << "\"><h3>" << escape_xml(c.spec) << " on "
      << escape_xml(c.backend) << " <span class=\"" << to_string(c.status) << "\">" << escape_xml(cell_text(&c))
      << "</span></h3>\n";
    const Measurements* d = c.measured ? &*c.measured : nullptr;
    if (m.is_object())
      h << "<p>model " << escape_xml(m.value("model", std::string())) << ", lowering "
        << escape_xml(d ? d->lowering_target : std::string("-")) << ", " << fmt(c.seconds, 1) << " s, spec "
        << escape_xml(c.spec_file) << "</p>\n";
    if (!c.reason.empty()) h << "<pre>" << escape_xml(c.reason) << "</pre>\n";
    if (d) {
      if (!d->output_warning.empty()) h << "<p class=\"warn\">warning: " << escape_xml(d->output_warning) << "</p>\n";
      h << "<p>SQNR reference vs float " << fmt(d->sqnr_db) << " dB";
      if (d->lowered)
        h << "; lowered vs float " << fmt(d->lowered->sqnr_db_lowered) << " dB; lowered vs reference "
          << fmt(d->lowered->max_difference_steps, 3) << " steps at the output";
      if (d->accuracy)
        h << "; top-1 float " << fmt(d->accuracy->float_top1, 4) << ", quantized "
          << fmt(d->accuracy->quantized_top1, 4) << ", agreement " << fmt(d->accuracy->agreement, 4)
          << (d->accuracy->float_perplexity ? "; perplexity float " + fmt(*d->accuracy->float_perplexity, 4) +
                                                  ", quantized " + fmt(d->accuracy->quantized_perplexity.value_or(0), 4)
                                            : std::string());
      h << "</p>\n";
    }
    if (d && !d->layers.empty()) {
      h << "<h4>Per-layer SQNR: each quantized op's output against float on the same input (hover a bar for the "
           "op; green &ge; 30 dB, orange &ge; 20 dB, red below)</h4>\n"
        << sqnr_chart_svg(d->layers) << "\n";
    }
    if (d)
      for (const auto& e : d->engines) h << engine_table(e);
    auto checks_table = [&](bool failed_only) {
      h << "<table><tr><th></th><th>check</th><th>expected</th><th>found</th><th>nodes</th></tr>\n";
      for (const auto& k : c.checks) {
        if (failed_only && k.passed) continue;
        std::string nodes;
        for (const auto& n : k.nodes) nodes += (nodes.empty() ? "" : "<br>") + escape_xml(n);
        h << "<tr><td class=\"" << (k.passed ? "ok" : "bad") << "\">" << (k.passed ? "ok" : "FAIL") << "</td><td>"
          << escape_xml(k.check) << "</td><td>" << escape_xml(k.expected) << "</td><td>" << escape_xml(k.found)
          << "</td><td>" << nodes
          << (k.where.empty() ? "" : (nodes.empty() ? "" : "<br>") + escape_xml("spec " + k.where)) << "</td></tr>\n";
      }
      h << "</table>\n";
    };
    const auto failed = std::count_if(c.checks.begin(), c.checks.end(), [](const CheckResult& k) { return !k.passed; });
    if (failed > 0) checks_table(true);
    if (!c.checks.empty()) {
      h << "<details><summary>All " << c.checks.size() << " checks ("
        << c.checks.size() - static_cast<std::size_t>(failed) << " passed)</summary>\n";
      checks_table(false);
      h << "</details>\n";
    }
    if (m.is_object() && m.contains("graph_svg")) {
      h << "<details><summary>Converted graph ("
        << (m.value("lowering", std::string()) == "reference" ? "reference Q/DQ" : "lowered")
        << "; green: int8 kernels, blue: quantize/dequantize, orange: float)</summary><div class=\"graph\">"
        << m["graph_svg"].get<std::string>() << "</div></details>\n";
    }
    h << "</section>\n";
  }
  h << "</body></html>\n";
  return h.str();
}

void write_reports(const RunReport& r, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(dir.string(), "cannot create the report directory: " + ec.message());
  write_file_atomically(dir / "results.json", report_json(r).dump(1) + "\n");
  write_file_atomically(dir / "junit.xml", junit_xml(r));
  write_file_atomically(dir / "report.html", html_report(r));
}

}  // namespace qsdk::conformance
