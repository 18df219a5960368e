#include "algorithms/weight_layers.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/ir.h>

#include <stdexcept>

#include "graph/graph.h"

namespace qsdk {

using torch::jit::Node;
using torch::jit::Value;

namespace {

std::optional<c10::IValue> constant_of(const Value* v) { return torch::jit::toIValue(const_cast<Value*>(v)); }

std::vector<std::int64_t> int_list(const Node* n, std::size_t i) { return constant_of(n->input(i))->toIntVector(); }

}  // namespace

bool is_conv(const Node* n) { return n->kind() == c10::aten::conv2d || n->kind() == c10::aten::conv1d; }

bool is_weight_layer(const Node* n) {
  if (!is_conv(n) && n->kind() != c10::aten::linear) return false;
  const auto w = constant_of(n->input(1));
  if (!w || !w->isTensor() || !w->toTensor().is_floating_point()) return false;
  if (n->inputs().size() > 2 && !constant_of(n->input(2))) return false;  // a computed bias
  if (is_conv(n))  // stride, padding, dilation, groups: constants we can pass on
    for (std::size_t i = 3; i < n->inputs().size(); ++i)
      if (!constant_of(n->input(i))) return false;
  return true;
}

std::int64_t layer_groups(const Node* n) { return is_conv(n) ? constant_of(n->input(6))->toInt() : 1; }

at::Tensor layer_weight(const Node* n) { return constant_of(n->input(1))->toTensor(); }

std::optional<at::Tensor> layer_bias(const Node* n) {
  if (n->inputs().size() < 3) return std::nullopt;
  const auto b = constant_of(n->input(2));
  if (!b || !b->isTensor()) return std::nullopt;
  return b->toTensor();
}

void set_constant_input(Node* n, std::size_t index, const at::Tensor& value) {
  auto& g = *n->owningGraph();
  torch::jit::WithInsertPoint guard(n);
  n->replaceInput(index, g.insertConstant(value.detach().contiguous()));
}

at::Tensor apply_layer(const Node* n, const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias) {
  const c10::optional<at::Tensor> b = bias ? c10::optional<at::Tensor>(*bias) : c10::nullopt;
  if (n->kind() == c10::aten::linear) return at::linear(x, weight, b);
  const auto stride = int_list(n, 3), dilation = int_list(n, 5);
  const auto groups = constant_of(n->input(6))->toInt();
  const auto padding = *constant_of(n->input(4));
  if (padding.isString()) {  // the padding="same" / "valid" overload
    const std::string mode = padding.toStringRef();
    return n->kind() == c10::aten::conv2d ? at::conv2d(x, weight, b, stride, mode, dilation, groups)
                                          : at::conv1d(x, weight, b, stride, mode, dilation, groups);
  }
  const auto pad = padding.toIntVector();
  return n->kind() == c10::aten::conv2d ? at::conv2d(x, weight, b, stride, pad, dilation, groups)
                                        : at::conv1d(x, weight, b, stride, pad, dilation, groups);
}

std::int64_t channel_dim(const Node* n, const at::Tensor& output) { return is_conv(n) ? 1 : output.dim() - 1; }

std::string layer_name(const Graph& graph, const Node* n) {
  const std::string& path = graph.module_path(n);
  const std::string id = "%" + std::to_string(graph.id(n));
  return path.empty() ? id + " " + n->kind().toQualString() : path + " (" + id + ")";
}

std::vector<at::Tensor> probe_values(const Graph& graph, const std::vector<Probe>& probes, const Batches& batches) {
  if (probes.empty()) return {};
  // A copy whose outputs are the probed values only: nothing else is kept.
  auto copy = graph.clone();
  auto& ir = copy->ir();
  while (!ir.outputs().empty()) ir.eraseOutput(ir.outputs().size() - 1);
  for (const auto& p : probes) {
    Node* n = copy->node(p.node);
    if (!n) throw std::logic_error("probe_values: no node " + std::to_string(p.node));
    ir.registerOutput(p.input < 0 ? n->output(0) : n->input(static_cast<std::size_t>(p.input)));
  }
  copy->invalidate_compiled();
  std::vector<std::vector<at::Tensor>> parts(probes.size());
  for (const auto& b : batches) {
    const auto values = copy->run(b);
    if (values.size() != probes.size()) throw std::logic_error("probe_values: a probed value is not a tensor");
    for (std::size_t i = 0; i < values.size(); ++i) parts[i].push_back(values[i].detach());
  }
  std::vector<at::Tensor> out;
  for (auto& p : parts) out.push_back(at::cat(p, 0));
  return out;
}

std::pair<at::Tensor, at::Tensor> broadcast_qparams(const at::Tensor& w, const QParams& q, at::ScalarType dtype) {
  at::Tensor scale = at::tensor(q.scale, at::kDouble).to(dtype);
  at::Tensor zp = at::tensor(q.zero_point, at::kLong).to(dtype);
  if (q.axis >= 0) {
    std::vector<std::int64_t> shape(static_cast<std::size_t>(w.dim()), 1);
    shape[static_cast<std::size_t>(q.axis)] = -1;
    scale = scale.reshape(shape);
    zp = zp.reshape(shape);
  }
  return {scale, zp};
}

at::Tensor fake_quantize_weight(const at::Tensor& w, const QParams& q) {
  // In double, as convert computes the integers.
  const auto [scale, zp] = broadcast_qparams(w, q, at::kDouble);
  const at::Tensor ints = (w.to(at::kDouble) / scale).round().add(zp).clamp(double(q.quant_min), double(q.quant_max));
  return ints.sub(zp).mul(scale).to(w.scalar_type());
}

}  // namespace qsdk
