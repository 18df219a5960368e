#include "pipeline/graph_records.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <cmath>

#include "annotate/report.h"
#include "graph/graph.h"
#include "prepare/prepare.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Module path of the op a quantize/dequantize (which have none) serves: its
// producer's, else its first consumer's with one.
std::string near_module(const Graph& g, const Node* n) {
  for (const Value* in : n->inputs())
    if (const auto& p = g.module_path(in->node()); !p.empty()) return p;
  for (const Value* out : n->outputs())
    for (const auto& use : out->uses())
      if (const auto& p = g.module_path(use.user); !p.empty()) return p;
  return "";
}

std::optional<double> input_scale(const Value* x) {
  const Node* p = x->node();
  if (p->kind() == c10::Symbol::fromQualString("aten::dequantize")) {
    const Node* q = p->input(0)->node();
    if (q->kind() == c10::Symbol::fromQualString("aten::quantize_per_tensor")) {
      if (auto s = torch::jit::constant_as<double>(q->input(1))) return *s;
    }
    return std::nullopt;
  }
  if (p->kind() == c10::Symbol::fromQualString("aten::fake_quantize_per_tensor_affine"))
    if (auto s = torch::jit::constant_as<double>(p->input(1))) return *s;
  return std::nullopt;
}

std::vector<double> weight_scales(const Value* w) {
  const Node* p = w->node();
  if (p->kind() != c10::Symbol::fromQualString("aten::dequantize")) return {};
  const auto iv = torch::jit::toIValue(p->input(0));
  if (!iv || !iv->isTensor()) return {};
  const at::Tensor t = iv->toTensor();
  if (!t.is_quantized()) return {};
  if (t.qscheme() == at::kPerTensorAffine || t.qscheme() == at::kPerTensorSymmetric) return {t.q_scale()};
  const at::Tensor s = t.q_per_channel_scales().to(at::kDouble).contiguous();
  return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

// Conv/linear biases of the reference graph, measured against input scale x
// weight scale: how far each is from a whole number of steps.
}  // namespace

std::vector<BiasRecord> bias_records(const Graph& g) {
  std::vector<BiasRecord> out;
  const auto conv = c10::Symbol::fromQualString("aten::conv2d");
  const auto linear = c10::Symbol::fromQualString("aten::linear");
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const Node* n = g.nodes()[i];
    if ((n->kind() != conv && n->kind() != linear) || n->inputs().size() < 3) continue;
    const auto bias = torch::jit::toIValue(n->input(2));
    if (!bias || !bias->isTensor()) continue;
    const auto s_in = input_scale(n->input(0));
    const auto s_w = weight_scales(n->input(1));
    if (!s_in || s_w.empty()) continue;
    const at::Tensor b = bias->toTensor().to(at::kDouble).contiguous();
    double worst = 0;
    for (std::int64_t c = 0; c < b.numel(); ++c) {
      const double step = *s_in * s_w[s_w.size() == 1 ? 0 : static_cast<std::size_t>(c)];
      const double k = b.data_ptr<double>()[c] / step;
      worst = std::max(worst, std::abs(k - std::round(k)));
    }
    out.push_back({static_cast<int>(i), n->kind().toQualString(), g.module_path(n), s_w.size() > 1, worst});
  }
  return out;
}

std::vector<NodeRecord> node_records(const Graph& g) {
  std::vector<NodeRecord> nodes;
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const Node* n = g.nodes()[i];
    NodeRecord r{static_cast<int>(i), n->kind().toQualString(), g.module_path(n), ""};
    if (r.module.empty()) r.near = near_module(g, n);
    nodes.push_back(r);
  }
  return nodes;
}

std::vector<NodeDecision> node_decisions(const Annotation& a) {
  std::vector<NodeDecision> out;
  for (const auto& r : a.nodes)
    out.push_back({r.id, r.kind, r.module_path, to_string(r.status), r.match, r.reason,
                   r.status == NodeStatus::Float && r.node && is_bookkeeping(r.node)});
  // Folded BatchNorms are no node of the annotated graph (id -1).
  for (const auto& f : a.folded_batch_norms)
    out.push_back({-1, "aten::batch_norm", "", "folded", -1, "folded before annotation: " + f});
  return out;
}

std::vector<std::vector<std::string>> shared_tensor_labels(const Graph& g, const Annotation& a) {
  std::vector<std::vector<std::string>> out;
  for (const auto& group : a.shared_groups) {
    std::vector<std::string> labels;
    for (const auto& e : group) labels.push_back(edge_label(g, e));
    out.push_back(labels);
  }
  return out;
}

std::vector<QParamsRecord> qparams_records(const PreparedModel& p) {
  std::vector<QParamsRecord> out;
  for (const auto& s : p.slots()) {
    QParamsRecord r;
    r.slot = s.id;
    r.kind = to_string(s.kind);
    r.label = s.label;
    r.dtype = to_string(s.spec.dtype);
    r.quant_min = s.spec.quant_min;
    r.quant_max = s.spec.quant_max;
    if (s.observer && s.observer->has_data()) {
      const QParams q = s.observer->qparams();
      r.scale = q.scale;
      r.zero_point.assign(q.zero_point.begin(), q.zero_point.end());
      if (q.axis >= 0) r.axis = q.axis;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace qsdk
