#include "conformance/bless.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/yaml_input.h"
#include "pipeline/measurements.h"

namespace qsdk::conformance {
namespace {

std::map<std::string, int> histogram(const std::vector<NodeRecord>& nodes) {
  std::map<std::string, int> h;
  for (const auto& n : nodes) ++h[n.op];
  return h;
}

YAML::Node counts_node(const std::map<std::string, int>& counts) {
  YAML::Node n(YAML::NodeType::Map);
  for (const auto& [op, c] : counts) n[op] = c;
  return n;
}

// Build a flow-free, block-style emission of `node` (yaml-cpp's defaults).
std::string emit(const YAML::Node& node) {
  YAML::Emitter e;
  e << node;
  return std::string(e.c_str()) + "\n";
}

}  // namespace

std::string blessed_spec_text(const ConformanceSpec& spec, const std::vector<const CaseResult*>& cases) {
  std::vector<const CaseResult*> chosen;
  for (const auto* c : cases)
    if (c->status == Status::Pass && c->unspecified && !c->expected_failure && c->measured) chosen.push_back(c);
  if (chosen.empty()) return "";

  std::size_t ran = 0;
  for (const auto* c : cases) ran += c->status != Status::Skip ? 1 : 0;
  const bool all_ran_chosen = ran == chosen.size();
  // Reference op counts: common where every blessed backend agrees.
  std::set<std::string> ops;
  std::map<std::string, std::map<std::string, int>> ref;  // backend -> counts
  for (const auto* c : chosen) {
    ref[c->backend] = histogram(c->measured->reference_nodes);
    for (const auto& [op, n] : ref[c->backend]) ops.insert(op);
  }
  std::map<std::string, int> common;
  std::map<std::string, std::map<std::string, int>> own;  // backend -> differing counts
  for (const auto& op : ops) {
    std::set<int> values;
    for (const auto* c : chosen) values.insert(ref[c->backend].count(op) ? ref[c->backend][op] : 0);
    // Common only when every backend that ran this spec is being blessed:
    // a common count would otherwise bind a backend that has its own.
    if (values.size() == 1 && chosen.size() > 1 && all_ran_chosen)
      common[op] = *values.begin();
    else
      for (const auto* c : chosen) own[c->backend][op] = ref[c->backend].count(op) ? ref[c->backend][op] : 0;
  }

  YAML::Node expect(YAML::NodeType::Map);
  if (!common.empty()) expect["structure"]["counts"] = counts_node(common);
  YAML::Node per_backend(YAML::NodeType::Map);
  for (const auto* c : chosen) {
    const Measurements& d = *c->measured;
    YAML::Node b(YAML::NodeType::Map);
    if (!own[c->backend].empty()) b["structure"]["counts"] = counts_node(own[c->backend]);
    if (d.lowered_nodes) b["lowered"]["counts"] = counts_node(histogram(*d.lowered_nodes));
    YAML::Node numerics(YAML::NodeType::Map);
    // Floors a few dB under what was measured: catch regressions, not noise.
    if (std::isfinite(d.sqnr_db)) numerics["sqnr_min_db"] = std::floor(d.sqnr_db) - 3;
    if (d.lowered_nodes) {
      const LoweringMeasurements l = d.lowered.value_or(LoweringMeasurements{});
      if (std::isfinite(l.sqnr_db_lowered)) numerics["sqnr_lowered_min_db"] = std::floor(l.sqnr_db_lowered) - 3;
      // Lowered vs reference: at least one step; deep models accumulate
      // more at the output (each kernel rounds on its own).
      const double steps = std::max(l.max_difference_steps, l.worst_kernel_steps);
      numerics["max_steps"] = std::max(1.0, std::ceil(steps - 1e-3));
    }
    if (numerics.size() > 0) b["numerics"] = numerics;
    if (b.size() > 0) per_backend[c->backend] = b;
  }

  std::string backends;
  for (const auto* c : chosen) backends += (backends.empty() ? "" : ", ") + c->backend;
  const std::string header = "# Blessed by `qsdk conformance --bless` from a passing run on " + backends +
                             ": measured structure and numeric floors. Review, then copy over the spec.\n";

  const YAML::Node original = yaml::load_text(spec.text, spec.file.string());
  if (!original["expect"] && !original["per_backend"]) {
    YAML::Node additions(YAML::NodeType::Map);
    if (expect.size() > 0) additions["expect"] = expect;
    if (per_backend.size() > 0) additions["per_backend"] = per_backend;
    std::string text = spec.text;
    if (!text.empty() && text.back() != '\n') text += "\n";
    return text + "\n" + header + emit(additions);
  }
  // The spec already has expectations (but no structure for these
  // backends): merge into it. Comments of the original are not kept.
  YAML::Node root = YAML::Clone(original);
  for (const auto& kv : expect) root["expect"][kv.first.Scalar()] = kv.second;
  for (const auto& kv : per_backend)
    for (const auto& section : kv.second)
      if (!root["per_backend"][kv.first.Scalar()][section.first.Scalar()])
        root["per_backend"][kv.first.Scalar()][section.first.Scalar()] = section.second;
  return header + emit(root);
}

std::vector<std::pair<std::filesystem::path, std::filesystem::path>> bless_specs(
    const std::vector<ConformanceSpec>& specs, const RunReport& report, const std::filesystem::path& dir) {
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> written;
  for (const auto& s : specs) {
    std::vector<const CaseResult*> cases;
    for (const auto& c : report.cases)
      if (c.spec == s.name) cases.push_back(&c);
    const std::string text = blessed_spec_text(s, cases);
    if (text.empty()) continue;
    const auto target = dir / (s.name + ".yaml");
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    write_file_atomically(target, text);
    written.emplace_back(s.file, target);
  }
  return written;
}

}  // namespace qsdk::conformance
