// What a conformance run writes: the matrix and failures for a terminal,
// results.json (every measured value), junit.xml (one testcase per spec x
// backend) and report.html (self-contained: matrix, failures, per-layer SQNR
// charts, converted graph pictures). `conformance merge` rebuilds all of
// them from shards' results.json. Torch-free.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "conformance/checks.h"

namespace qsdk::conformance {

struct RunReport {
  std::vector<std::string> specs;     // matrix rows, in order
  std::vector<std::string> backends;  // matrix columns, in order
  std::vector<CaseResult> cases;      // (spec, backend) order
  std::string shard;                  // "2/4", or empty for a whole run
  double seconds = 0;

  int count(Status s) const;
  const CaseResult* find(const std::string& spec, const std::string& backend) const;
  // 0 when every case passed or was skipped; 1 otherwise (a failure or an error).
  int exit_code() const;
};

nlohmann::json report_json(const RunReport&);
RunReport report_from_json(const nlohmann::json&, const std::string& source);

// Shards of one suite (same specs and backends) into the report one run
// would have written. InputError when they do not belong together or a
// case appears twice.
RunReport merge_reports(const std::vector<RunReport>& shards, const std::vector<std::string>& sources);

std::string matrix_text(const RunReport&);
std::string failures_text(const RunReport&);
std::string summary_line(const RunReport&);
std::string junit_xml(const RunReport&);
std::string html_report(const RunReport&);

// The per-layer SQNR bar chart of one case as inline SVG (empty when the
// case has no per-layer measurements).
std::string sqnr_chart_svg(const std::vector<LayerSqnr>& layers);

// Writes dir/results.json, dir/junit.xml and dir/report.html atomically.
void write_reports(const RunReport&, const std::filesystem::path& dir);

}  // namespace qsdk::conformance
