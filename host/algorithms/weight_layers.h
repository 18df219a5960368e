// What the PTQ algorithms share: the conv/linear layers whose weights they
// change, read and rewritten as graph constants, run on their own, and the
// values a graph computes on calibration data, captured at any node.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "prepare/observers.h"

namespace torch::jit {
struct Node;
}

namespace qsdk {

class Graph;

using Batches = std::vector<std::vector<at::Tensor>>;

// aten::conv1d/conv2d/linear with a constant tensor weight.
bool is_weight_layer(const torch::jit::Node* n);
bool is_conv(const torch::jit::Node* n);
// The layer's groups (1 for linear).
std::int64_t layer_groups(const torch::jit::Node* n);

at::Tensor layer_weight(const torch::jit::Node* n);
std::optional<at::Tensor> layer_bias(const torch::jit::Node* n);  // nullopt when None
// Replaces input `index` of `n` with a new constant (the old one stays, unused).
void set_constant_input(torch::jit::Node* n, std::size_t index, const at::Tensor& value);

// The layer's op on `x` with the given weight and bias, its other arguments
// (stride, padding, dilation, groups) as in the graph. Differentiable.
at::Tensor apply_layer(const torch::jit::Node* n, const at::Tensor& x, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias);
// The dimension of a layer output that holds its channels (1 conv, last linear).
std::int64_t channel_dim(const torch::jit::Node* n, const at::Tensor& output);

// "conv1 (%0)": a node by module path and id, for decisions.
std::string layer_name(const Graph& graph, const torch::jit::Node* n);

// Runs `graph` on every batch and returns, for each (node id, input index)
// asked for, the value there, concatenated over the batches along dim 0.
// Input index -1 is the node's output.
struct Probe {
  int node = -1;
  int input = 0;
};
std::vector<at::Tensor> probe_values(const Graph& graph, const std::vector<Probe>& probes, const Batches& batches);

// The weight on its quantization grid (quantize, clamp, dequantize), in the
// weight's dtype, as convert will store it.
at::Tensor fake_quantize_weight(const at::Tensor& w, const QParams& q);
// The per-channel or per-tensor scale and zero point, in `dtype`, shaped to broadcast against `w`.
std::pair<at::Tensor, at::Tensor> broadcast_qparams(const at::Tensor& w, const QParams& q, at::ScalarType dtype);

}  // namespace qsdk
