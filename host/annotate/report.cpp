#include "annotate/report.h"

#include <algorithm>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "graph/graph.h"
#include "graph/graph_drawing.h"

namespace qsdk {
namespace {

nlohmann::json edge_json(const Graph& g, const EdgeKey& e) {
  nlohmann::json j{{"node", g.id(e.node)}, {"module", g.module_path(e.node)}};
  if (e.is_output())
    j["output"] = true;
  else
    j["operand"] = e.operand;
  if (e.element >= 0) j["element"] = e.element;
  return j;
}

nlohmann::json spec_json(const QuantSpec& s) {
  nlohmann::json j{{"kind", to_string(s.kind)}};
  if (s.kind == SpecKind::Float || s.kind == SpecKind::Shared) return j;
  j["dtype"] = to_string(s.dtype);
  j["quant_min"] = s.quant_min;
  j["quant_max"] = s.quant_max;
  j["scheme"] = to_string(s.scheme);
  if (s.kind == SpecKind::Observed || s.kind == SpecKind::Dynamic) {
    j["granularity"] = to_string(s.granularity);
    if (s.granularity == Granularity::PerChannel) j["axis"] = s.axis;
    j["observer"] = to_string(s.observer);
  }
  if (s.kind == SpecKind::Fixed) {
    j["scale"] = s.scale;
    j["zero_point"] = s.zero_point;
  }
  return j;
}

}  // namespace

bool is_bookkeeping(const torch::jit::Node* n) {
  for (const auto* v : n->outputs()) {
    const auto t = v->type()->cast<c10::TensorType>();
    if (!t) continue;
    const auto rank = t->sizes().size();
    if (!rank || *rank > 0) return false;  // a tensor of unknown rank, or of rank >= 1
  }
  return true;
}

std::string annotation_table(const Graph& g, const Annotation& a) {
  std::ostringstream out;
  int quantized = 0, skipped = 0, floating = 0, bookkeeping = 0;
  for (const auto& r : a.nodes) {
    (r.status == NodeStatus::Quantized ? quantized : r.status == NodeStatus::Skipped ? skipped : floating)++;
    if (r.status == NodeStatus::Float && r.node && is_bookkeeping(r.node)) ++bookkeeping;
  }
  out << "backend: " << a.backends << "   model: " << g.source() << "\n";
  out << "ops: " << a.nodes.size() << "  quantized: " << quantized << " (in " << a.matches.size()
      << " matches)  float: " << floating - bookkeeping << " tensor ops + " << bookkeeping
      << " shape/scalar bookkeeping  skipped: " << skipped << "  shared-qparams groups: " << a.shared_groups.size()
      << "\n\n";
  // Columns as wide as their longest entry (torchvision paths such as
  // "features.denseblock4.denselayer16.norm2" run past any fixed width).
  std::size_t op_width = 2, module_width = 6;
  for (const auto& r : a.nodes) {
    op_width = std::max(op_width, r.kind.size());
    module_width = std::max(module_width, r.module_path.size());
  }
  const int op_w = int(op_width + 2), module_w = int(module_width + 2);
  out << std::left << std::setw(6) << "ID" << std::setw(op_w) << "OP" << std::setw(module_w) << "MODULE"
      << std::setw(11) << "STATUS"
      << "RULE / REASON\n";
  for (const auto& r : a.nodes)
    out << std::setw(6) << ("%" + std::to_string(r.id)) << std::setw(op_w) << r.kind << std::setw(module_w)
        << (r.module_path.empty() ? "-" : r.module_path) << std::setw(11) << to_string(r.status) << r.reason << "\n";
  if (!a.overrides.empty()) {
    out << "\noverrides:\n";
    for (const auto& o : a.overrides)
      out << "  " << (o.where.empty() ? "" : o.where + ": ") << o.description << " -> " << o.node_ids.size()
          << " node(s)" << (o.edges_changed ? ", " + std::to_string(o.edges_changed) + " edge spec(s) changed" : "")
          << "\n";
  }
  if (!a.folded_batch_norms.empty()) {
    out << "\nfolded before annotation (post-training, as PT2E does; rules for the conv/linear cover them):\n";
    for (const auto& f : a.folded_batch_norms) out << "  " << f << "\n";
  }
  for (const auto& w : a.warnings) out << "warning: " << w << "\n";
  return out.str();
}

std::string annotation_json(const Graph& g, const Annotation& a) { return annotation_document(g, a).dump(2) + "\n"; }

nlohmann::json annotation_document(const Graph& g, const Annotation& a) {
  nlohmann::json j;
  j["backends"] = a.backends;
  j["model"] = g.source();
  j["nodes"] = nlohmann::json::array();
  for (const auto& r : a.nodes) {
    j["nodes"].push_back({{"id", r.id},
                          {"op", r.kind},
                          {"module", r.module_path},
                          {"status", to_string(r.status)},
                          {"match", r.match},
                          {"reason", r.reason}});
    // Shape/scalar arithmetic left in float, counted apart from tensor ops.
    if (r.status == NodeStatus::Float && r.node && is_bookkeeping(r.node)) j["nodes"].back()["bookkeeping"] = true;
  }
  j["folded_batch_norms"] = a.folded_batch_norms;
  j["matches"] = nlohmann::json::array();
  for (const auto& m : a.matches) {
    nlohmann::json mj{{"id", m.id}, {"backend", m.backend}, {"rule", m.rule}, {"nodes", nlohmann::json::array()}};
    if (!m.width.empty()) mj["width"] = m.width;
    for (const auto* n : m.nodes) mj["nodes"].push_back(g.id(n));
    mj["edges"] = nlohmann::json::array();
    for (const auto& e : m.edges) {
      nlohmann::json ej{{"edge", edge_json(g, e.edge)}, {"spec", spec_json(e.spec)}};
      if (!e.sources.empty()) {
        ej["sources"] = nlohmann::json::array();
        for (const auto& s : e.sources) ej["sources"].push_back(edge_json(g, s));
      }
      if (!e.overridden_by.empty()) ej["overridden_by"] = e.overridden_by;
      mj["edges"].push_back(ej);
    }
    j["matches"].push_back(mj);
  }
  j["shared_groups"] = nlohmann::json::array();
  for (const auto& group : a.shared_groups) {
    nlohmann::json gj = nlohmann::json::array();
    for (const auto& e : group) gj.push_back(edge_json(g, e));
    j["shared_groups"].push_back(gj);
  }
  j["overrides"] = nlohmann::json::array();
  for (const auto& o : a.overrides)
    j["overrides"].push_back(
        {{"override", o.description}, {"where", o.where}, {"nodes", o.node_ids}, {"edges_changed", o.edges_changed}});
  j["warnings"] = a.warnings;
  return j;
}

std::string annotation_dot(const Graph& g, const Annotation& a) {
  std::unordered_map<const torch::jit::Node*, const NodeReport*> by_node;
  for (const auto& r : a.nodes) by_node[r.node] = &r;
  return graph_to_dot(g, [&](const torch::jit::Node* n) -> DotStyle {
    auto it = by_node.find(n);
    if (it == by_node.end()) return {};
    const NodeReport& r = *it->second;
    switch (r.status) {
      case NodeStatus::Quantized: return {"#c8e6c9", r.reason};
      case NodeStatus::Skipped: return {"#e0e0e0", "skipped"};
      case NodeStatus::Float: return {"#ffe0b2", "float"};
    }
    return {};
  });
}

}  // namespace qsdk
