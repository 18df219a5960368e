#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/ir/ir.h>

#include <sstream>

#include "algorithms/ptq_algorithms.h"
#include "graph/graph.h"
#include "prepare/prepare.h"

namespace qsdk {
namespace {

// Mean over every dimension but the channel one.
at::Tensor channel_mean(const at::Tensor& y, std::int64_t channel) {
  return y.transpose(0, channel).reshape({y.size(channel), -1}).mean(1);
}

}  // namespace

std::vector<AlgorithmDecision> correct_bias(PreparedModel& prepared, const Graph& float_graph, const Batches& batches) {
  at::NoGradGuard no_grad;
  std::vector<AlgorithmDecision> decisions;
  const auto layers = quantized_layers(prepared, &decisions, "bias_correction");
  // The quantized side: the float model with each corrected layer's weights
  // (and new bias) put in as we go, activations float.
  auto quantized = float_graph.clone();
  for (const auto& layer : layers) {
    torch::jit::Node* n = layer.node;
    torch::jit::Node* float_node = float_graph.node(layer.id);
    torch::jit::Node* working = quantized->node(layer.id);
    const auto bias = layer_bias(n);
    const at::Tensor wq = fake_quantize_weight(layer_weight(n), layer.qparams);
    if (!bias) {
      set_constant_input(working, 1, wq);
      quantized->invalidate_compiled();
      decisions.push_back({"bias_correction", layer_name(prepared.graph(), n), "skipped: the layer has no bias", {}});
      continue;
    }
    const at::Tensor x_float = probe_values(float_graph, {{layer.id, 0}}, batches).at(0);
    const at::Tensor x_quant = probe_values(*quantized, {{layer.id, 0}}, batches).at(0);
    const at::Tensor y_float = apply_layer(float_node, x_float, layer_weight(float_node), layer_bias(float_node));
    const at::Tensor y_quant = apply_layer(n, x_quant, wq, bias);
    const std::int64_t channel = channel_dim(n, y_float);
    const at::Tensor shift = channel_mean(y_quant.to(at::kDouble) - y_float.to(at::kDouble), channel);
    const at::Tensor corrected = (bias->to(at::kDouble) - shift).to(bias->scalar_type());
    set_constant_input(n, 2, corrected);
    set_constant_input(working, 1, wq);
    set_constant_input(working, 2, corrected);
    quantized->invalidate_compiled();

    const double before = shift.abs().mean().item<double>();
    const at::Tensor y_after = apply_layer(n, x_quant, wq, corrected);
    const double after =
        channel_mean(y_after.to(at::kDouble) - y_float.to(at::kDouble), channel).abs().mean().item<double>();
    std::ostringstream text;
    text.precision(3);
    text << "corrected " << shift.size(0) << " channels: mean |output shift| " << before << " -> " << after;
    AlgorithmDecision d{"bias_correction", layer_name(prepared.graph(), n), text.str(), {}};
    d.values["channels"] = double(shift.size(0));
    d.values["mean_shift_before"] = before;
    d.values["mean_shift_after"] = after;
    d.values["largest_correction"] = shift.abs().max().item<double>();
    decisions.push_back(std::move(d));
  }
  prepared.graph().invalidate_compiled();
  return decisions;
}

}  // namespace qsdk
