#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/ir.h>

#include <sstream>

#include "algorithms/ptq_algorithms.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;

constexpr double kMinScale = 1e-5;

// Largest over the channels of a per-channel maximum, against its median:
// how far the worst outlier channel stands out.
double outlier_ratio(const at::Tensor& channel_max) {
  const double median = channel_max.median().item<double>();
  return median > 0 ? channel_max.max().item<double>() / median : 0.0;
}

}  // namespace

std::vector<AlgorithmDecision> smooth_quant(Graph& graph, const Batches& batches, double alpha) {
  std::vector<AlgorithmDecision> decisions;
  struct Group {
    Node* norm;
    std::vector<Node*> linears;
  };
  std::vector<Group> groups;
  for (Node* n : graph.nodes()) {
    if (n->kind() != c10::aten::linear || !is_weight_layer(n)) continue;
    Node* producer = n->input(0)->node();
    if (producer->kind() != c10::aten::layer_norm) {
      decisions.push_back({"smoothquant",
                           layer_name(graph, n),
                           std::string("skipped: its input comes from ") + producer->kind().toQualString() +
                               ", which cannot absorb a per-channel scale (only a layer_norm's weight can)",
                           {}});
      continue;
    }
    if (std::any_of(groups.begin(), groups.end(), [&](const Group& g) { return g.norm == producer; })) continue;
    Group g{producer, {}};
    bool all_linear = true;
    for (const auto& use : producer->output(0)->uses())
      if (use.user->kind() == c10::aten::linear && is_weight_layer(use.user) && use.offset == 0)
        g.linears.push_back(use.user);
      else
        all_linear = false;
    const auto shape = torch::jit::toIValue(producer->input(1));
    const bool last_dim = shape && shape->toIntVector().size() == 1;
    const bool constant_affine =
        torch::jit::toIValue(producer->input(2)).has_value() && torch::jit::toIValue(producer->input(3)).has_value();
    if (!all_linear || !last_dim || !constant_affine) {
      decisions.push_back({"smoothquant",
                           layer_name(graph, n),
                           "skipped: its layer_norm " + layer_name(graph, producer) +
                               (!all_linear ? " also feeds ops other than linears"
                                            : " normalizes more than the last dimension or has computed parameters"),
                           {}});
      continue;
    }
    groups.push_back(std::move(g));
  }
  if (groups.empty()) return decisions;

  std::vector<Probe> probes;
  for (const auto& g : groups) probes.push_back({graph.id(g.norm), -1});
  const auto activations = probe_values(graph, probes, batches);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const Group& g = groups[i];
    const at::Tensor x = activations[i].to(at::kDouble);
    const at::Tensor act_max = x.abs().reshape({-1, x.size(-1)}).amax(0);
    at::Tensor weight_max = at::zeros_like(act_max);
    for (Node* l : g.linears) weight_max = at::maximum(weight_max, layer_weight(l).abs().to(at::kDouble).amax(0));
    at::Tensor s = act_max.pow(alpha) / weight_max.pow(1 - alpha);
    s = at::where(act_max.gt(0).logical_and(weight_max.gt(0)), s.clamp_min(kMinScale), at::ones_like(s));

    const auto gamma_iv = torch::jit::toIValue(g.norm->input(2));
    const auto beta_iv = torch::jit::toIValue(g.norm->input(3));
    const at::Tensor gamma = gamma_iv->isTensor() ? gamma_iv->toTensor() : at::ones({x.size(-1)});
    set_constant_input(g.norm, 2, (gamma.to(at::kDouble) / s).to(gamma.scalar_type()));
    if (beta_iv->isTensor()) {
      const at::Tensor beta = beta_iv->toTensor();
      set_constant_input(g.norm, 3, (beta.to(at::kDouble) / s).to(beta.scalar_type()));
    }
    std::string names;
    for (Node* l : g.linears) {
      const at::Tensor w = layer_weight(l);
      set_constant_input(l, 1, (w.to(at::kDouble) * s.unsqueeze(0)).to(w.scalar_type()));
      names += (names.empty() ? "" : ", ") + layer_name(graph, l);
    }
    std::ostringstream text;
    text << "migrated " << x.size(-1) << " channels (alpha " << alpha << ") from " << layer_name(graph, g.norm);
    AlgorithmDecision d{"smoothquant", names, text.str(), {}};
    d.values["channels"] = double(x.size(-1));
    d.values["alpha"] = alpha;
    d.values["activation_outlier_ratio_before"] = outlier_ratio(act_max);
    d.values["activation_outlier_ratio_after"] = outlier_ratio(act_max / s);
    d.values["largest_scale"] = s.max().item<double>();
    decisions.push_back(std::move(d));
  }
  graph.invalidate_compiled();
  return decisions;
}

}  // namespace qsdk
