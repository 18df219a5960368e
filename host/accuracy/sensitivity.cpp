#include "accuracy/sensitivity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>

#include "annotate/annotation.h"
#include "common/markup.h"
#include "data/data_source.h"
#include "graph/graph.h"
#include "pipeline/pipeline.h"

namespace qsdk {
namespace {

using json = nlohmann::json;

// A match makes qparams of its own when an observer (or a fixed or dynamic
// spec) decides its output or a weight. Pooling and flatten only observe
// their input, to share it: they follow the unit before them.
bool has_own_qparams(const MatchRecord& m) {
  return std::any_of(m.edges.begin(), m.edges.end(), [](const AnnotatedEdge& e) {
    const SpecKind k = e.spec.kind;
    if (e.edge.is_output()) return k == SpecKind::Observed || k == SpecKind::Fixed;
    return e.edge.operand >= 1 && (k == SpecKind::Observed || k == SpecKind::Dynamic);
  });
}

std::string fixed(double v, int digits) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string points(std::optional<double> top1) { return top1 ? fixed(100.0 * *top1, 2) : "-"; }

json score_json(const VariantScore& s) {
  json j{{"sqnr_db", std::isinf(s.sqnr_db) ? json(nullptr) : json(s.sqnr_db)}};
  if (s.top1) j["top1"] = *s.top1;
  return j;
}

// Most sensitive first: by held-out accuracy where measured (what leaving
// the unit float buys back, then what it costs alone), else by SQNR alone;
// ties keep graph order.
void rank(std::vector<SensitivityUnit>& units) {
  const bool accuracy = std::all_of(units.begin(), units.end(), [](const auto& u) { return u.only.top1.has_value(); });
  std::stable_sort(units.begin(), units.end(), [&](const SensitivityUnit& a, const SensitivityUnit& b) {
    if (accuracy && *a.all_but.top1 != *b.all_but.top1) return *a.all_but.top1 > *b.all_but.top1;
    if (accuracy && *a.only.top1 != *b.only.top1) return *a.only.top1 < *b.only.top1;
    return a.only.sqnr_db < b.only.sqnr_db;
  });
}

}  // namespace

std::vector<SensitivityUnit> sensitivity_units(const Annotation& annotation) {
  std::map<const torch::jit::Node*, const NodeReport*> report_of;
  for (const auto& n : annotation.nodes) report_of[n.node] = &n;
  std::vector<SensitivityUnit> units;
  for (const auto& m : annotation.matches) {
    if (!has_own_qparams(m) || m.nodes.empty()) continue;
    SensitivityUnit u;
    u.match = m.id;
    u.rule = m.rule;
    std::string kinds;
    for (const auto* n : m.nodes) {
      const NodeReport* r = report_of.at(n);
      u.node_ids.push_back(r->id);
      kinds += (kinds.empty() ? "" : "+") + r->kind;
    }
    const NodeReport* first = report_of.at(m.nodes.front());
    u.label = "%" + std::to_string(first->id) + " " + kinds +
              (first->module_path.empty() ? "" : " (" + first->module_path + ")");
    units.push_back(std::move(u));
  }
  return units;
}

VariantScore score_of(const PipelineResult& r) {
  VariantScore s;
  s.sqnr_db = r.measurements.sqnr_db;
  if (r.measurements.accuracy) s.top1 = r.measurements.accuracy->quantized_top1;
  return s;
}

PipelineOptions variant_options(const PipelineOptions& options, bool accuracy) {
  PipelineOptions o = options;
  o.accuracy.reset();
  o.lower = false;
  o.measure_latency = false;
  o.per_layer_sqnr = false;
  o.export_onnx = false;
  o.formats = {"torchscript"};
  o.engines.clear();
  o.progress = false;
  o.measure_accuracy = accuracy;
  return o;
}

std::vector<Override> float_overrides(const std::vector<SensitivityUnit>& skip) {
  std::vector<Override> out;
  for (const auto& u : skip)
    for (const int id : u.node_ids) {
      Override o;
      o.node_id = id;
      o.quantize = false;
      o.where = "sensitivity: " + u.label;
      out.push_back(std::move(o));
    }
  return out;
}

SensitivityReport analyse_sensitivity(const PluginRegistry& plugins, const PipelineOptions& options,
                                      const std::vector<std::shared_ptr<const Backend>>& backends,
                                      std::ostream* progress) {
  const auto start = std::chrono::steady_clock::now();
  const PipelineOptions base = variant_options(options, source_has_heldout(options.calibration.source));

  auto measure = [&](const std::vector<SensitivityUnit>& skip, std::optional<double>* float_top1) {
    PipelineOptions o = base;
    const auto extra = float_overrides(skip);
    o.overrides.insert(o.overrides.end(), extra.begin(), extra.end());
    PipelineResult r = run_pipeline(plugins, o, backends);
    if (float_top1 && r.measurements.accuracy) *float_top1 = r.measurements.accuracy->float_top1;
    const VariantScore s = score_of(r);
    return std::make_pair(std::move(r), s);
  };

  SensitivityReport report;
  report.model = options.model;
  auto [full, full_score] = measure({}, &report.float_top1);
  report.backend = full.measurements.backend;
  report.full = full_score;
  report.units = sensitivity_units(full.annotation);
  if (progress)
    *progress << "qsdk sensitivity: " << report.backend << ": " << report.units.size()
              << " units, 2 runs each; all quantized: SQNR " << fixed(full_score.sqnr_db, 2) << " dB"
              << (full_score.top1 ? ", top-1 " + points(full_score.top1) + "%" : "") << "\n";
  for (std::size_t i = 0; i < report.units.size(); ++i) {
    auto& u = report.units[i];
    std::vector<SensitivityUnit> others;
    for (std::size_t j = 0; j < report.units.size(); ++j)
      if (j != i) others.push_back(report.units[j]);
    u.only = measure(others, nullptr).second;
    u.all_but = measure({u}, nullptr).second;
    if (progress)
      *progress << "  [" << i + 1 << "/" << report.units.size() << "] " << u.label << ": alone "
                << fixed(u.only.sqnr_db, 2) << " dB" << (u.only.top1 ? " " + points(u.only.top1) + "%" : "")
                << ", all but it " << fixed(u.all_but.sqnr_db, 2) << " dB"
                << (u.all_but.top1 ? " " + points(u.all_but.top1) + "%" : "") << "\n";
  }
  rank(report.units);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

json sensitivity_json(const SensitivityReport& r) {
  json j{{"backend", r.backend}, {"model", r.model}, {"all_quantized", score_json(r.full)}, {"seconds", r.seconds}};
  if (r.float_top1) j["float_top1"] = *r.float_top1;
  j["units"] = json::array();
  for (std::size_t i = 0; i < r.units.size(); ++i) {
    const auto& u = r.units[i];
    j["units"].push_back({{"rank", i + 1},
                          {"label", u.label},
                          {"rule", u.rule},
                          {"nodes", u.node_ids},
                          {"only", score_json(u.only)},
                          {"all_but", score_json(u.all_but)}});
  }
  return j;
}

std::string sensitivity_table(const SensitivityReport& r, bool markdown) {
  const bool accuracy = r.full.top1.has_value();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head{"rank", "unit", "rule", "SQNR alone (dB)", "SQNR without it (dB)"};
  if (accuracy) head.insert(head.end(), {"top-1 alone (%)", "top-1 without it (%)"});
  for (std::size_t i = 0; i < r.units.size(); ++i) {
    const auto& u = r.units[i];
    std::vector<std::string> row{std::to_string(i + 1), u.label, u.rule, fixed(u.only.sqnr_db, 2),
                                 fixed(u.all_but.sqnr_db, 2)};
    if (accuracy) row.insert(row.end(), {points(u.only.top1), points(u.all_but.top1)});
    rows.push_back(std::move(row));
  }
  std::ostringstream out;
  out << "Sensitivity of " << r.model << " on " << r.backend << ": all " << r.units.size() << " units quantized: SQNR "
      << fixed(r.full.sqnr_db, 2) << " dB";
  if (accuracy) out << ", top-1 " << points(r.full.top1) << "% (float " << points(r.float_top1) << "%)";
  out << ".\n\n";
  if (markdown) {
    auto line = [&](const std::vector<std::string>& cells) {
      out << "|";
      for (const auto& c : cells) out << " " << c << " |";
      out << "\n";
    };
    line(head);
    out << "|";
    for (std::size_t c = 0; c < head.size(); ++c) out << (c < 3 ? " --- |" : " ---: |");
    out << "\n";
    for (const auto& row : rows) line(row);
  } else {
    std::vector<std::size_t> width(head.size());
    for (std::size_t c = 0; c < head.size(); ++c) {
      width[c] = head[c].size();
      for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
      for (std::size_t c = 0; c < cells.size(); ++c)
        out << (c ? "  " : "") << (c < 3 ? std::left : std::right) << std::setw(int(width[c])) << cells[c];
      out << "\n";
    };
    line(head);
    for (const auto& row : rows) line(row);
  }
  return out.str();
}

std::string sensitivity_html(const SensitivityReport& r) {
  // Two bars per unit on one dB axis: alone (the loss it causes) and without
  // it (what floating it buys back), against the all-quantized SQNR line.
  double top = std::isinf(r.full.sqnr_db) ? 0 : r.full.sqnr_db;
  for (const auto& u : r.units)
    for (const double v : {u.only.sqnr_db, u.all_but.sqnr_db})
      if (!std::isinf(v)) top = std::max(top, v);
  top = std::max(1.0, std::ceil(top / 10.0) * 10.0);
  const int label_w = 360, bar_w = 420, row_h = 26;
  const int height = 30 + row_h * int(r.units.size()) + 20;
  auto x_of = [&](double db) { return label_w + int(bar_w * std::clamp(std::isinf(db) ? top : db, 0.0, top) / top); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label_w + bar_w + 80 << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  for (int t = 0; t <= 10; ++t) {
    const double db = top * t / 10.0;
    svg << "<line x1=\"" << x_of(db) << "\" y1=\"20\" x2=\"" << x_of(db) << "\" y2=\"" << height - 20
        << "\" stroke=\"#ddd\"/><text x=\"" << x_of(db) << "\" y=\"14\" text-anchor=\"middle\">" << fixed(db, 0)
        << "</text>\n";
  }
  for (std::size_t i = 0; i < r.units.size(); ++i) {
    const auto& u = r.units[i];
    const int y = 24 + row_h * int(i);
    svg << "<text x=\"" << label_w - 6 << "\" y=\"" << y + 15 << "\" text-anchor=\"end\">" << escape_xml(u.label)
        << "</text>\n";
    svg << "<rect x=\"" << label_w << "\" y=\"" << y + 2 << "\" width=\"" << x_of(u.only.sqnr_db) - label_w
        << "\" height=\"10\" fill=\"#c0392b\"><title>alone: " << fixed(u.only.sqnr_db, 2) << " dB</title></rect>\n";
    svg << "<rect x=\"" << label_w << "\" y=\"" << y + 13 << "\" width=\"" << x_of(u.all_but.sqnr_db) - label_w
        << "\" height=\"10\" fill=\"#2980b9\"><title>without it: " << fixed(u.all_but.sqnr_db, 2)
        << " dB</title></rect>\n";
  }
  svg << "<line x1=\"" << x_of(r.full.sqnr_db) << "\" y1=\"20\" x2=\"" << x_of(r.full.sqnr_db) << "\" y2=\""
      << height - 20 << "\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>\n</svg>\n";
  std::ostringstream html;
  html << "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>qsdk sensitivity: " << escape_xml(r.backend)
       << "</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px}td.n{text-align:right}</style></head><body>\n";
  html << "<h1>Sensitivity: " << escape_xml(r.model) << " on " << escape_xml(r.backend) << "</h1>\n";
  html << "<p>SQNR of the output against float (dB, higher is better) with only the unit quantized "
          "(<span style=\"color:#c0392b\">red</span>) and with every unit but it quantized "
          "(<span style=\"color:#2980b9\">blue</span>); the dashed line is all quantized ("
       << fixed(r.full.sqnr_db, 2) << " dB).</p>\n"
       << svg.str();
  const bool accuracy = r.full.top1.has_value();
  html << "<table><tr><th>rank</th><th>unit</th><th>rule</th><th>SQNR alone (dB)</th><th>SQNR without it (dB)</th>"
       << (accuracy ? "<th>top-1 alone (%)</th><th>top-1 without it (%)</th>" : "") << "</tr>\n";
  for (std::size_t i = 0; i < r.units.size(); ++i) {
    const auto& u = r.units[i];
    html << "<tr><td class=n>" << i + 1 << "</td><td>" << escape_xml(u.label) << "</td><td>" << escape_xml(u.rule)
         << "</td><td class=n>" << fixed(u.only.sqnr_db, 2) << "</td><td class=n>" << fixed(u.all_but.sqnr_db, 2)
         << "</td>";
    if (accuracy)
      html << "<td class=n>" << points(u.only.top1) << "</td><td class=n>" << points(u.all_but.top1) << "</td>";
    html << "</tr>\n";
  }
  html << "</table>\n</body></html>\n";
  return html.str();
}

}  // namespace qsdk
