// Per-layer numerics (PT2E's numeric debugger idea): for every quantized
// activation of a converted model, the SQNR of the value its consumers see
// (after quantize -> dequantize) against the same value in the float model,
// both run on the same input. Shows where along the graph accuracy is lost.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace qsdk {

class Graph;

struct LayerSqnr {
  int node = 0;             // id of the producing node in `float_graph`
  std::string module_path;  // "layer1.0.conv1"
  std::string op;           // "aten::conv2d"
  double sqnr_db = 0;
};

// `reference` is the converted Q/DQ form of `float_graph` (same capture).
// Values are paired by their IR names, which capture gives every value and
// the in-place prepare/convert passes keep; the float side is compared with
// BatchNorm folded, as the reference is. Graph order.
std::vector<LayerSqnr> per_layer_sqnr(const Graph& float_graph, const Graph& reference,
                                      const std::vector<at::Tensor>& inputs);

}  // namespace qsdk
