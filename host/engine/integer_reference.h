// The integer-exact reference: what a backend's hardware computes for the
// converted model, given the arithmetic it declares (qsdk/engine.h). It runs
// convert's reference graph node by node beside the float Q/DQ reference:
//  - every quantize node yields integers (int64) with its qparams, scales
//    taken as float32 as the ONNX export stores them;
//  - conv, linear, matmul and bmm on quantized inputs accumulate (q - zero
//    point) products exactly, add the int32 bias, saturate or wrap the
//    accumulator, and requantize as declared (multiplier form, rounding),
//    with a fused relu / clamp / hardtanh applied on the integers;
//  - average pooling and mean divide the integer sum by the count and round
//    with the declared pooling rounding;
//  - every other op (add, mul, sigmoid, max_pool, reshape, ...) is computed
//    in float64 from the dequantized inputs and rounded at its quantize node
//    with the declared element-wise rounding.
// Keys are the reference graph's node ids of quantize nodes: what
// OnnxQuantizedTensor::reference_node names, so each integer tensor has the
// name of a QuantizeLinear output in the exported file.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qsdk/engine.h"

namespace qsdk {

class Graph;

struct IntegerTensor {
  at::Tensor values;       // int64
  at::Tensor scale;        // double (float32 values): one, or one per channel
  at::Tensor graph_scale;  // double, as the reference graph holds it (bias steps use it, as convert did)
  at::Tensor zero_point;   // int64, like scale
  std::optional<int> axis;
  std::int64_t quant_min = 0, quant_max = 255;
  std::string how;           // "conv2d (integer accumulator)", "real arithmetic", ... for reports
  int node = -1;             // the quantize node's id (-1: a constant)
  int producer = -1;         // the op whose result it quantizes (conv2d, not its fused relu)
  std::vector<int> sources;  // quantize nodes whose integers that op read
};

struct IntegerReference {
  std::map<int, IntegerTensor> quantized;  // by the quantize node's id in the reference graph
  std::vector<at::Tensor> outputs;         // the graph's outputs (float64; dequantized)
};

// Runs `reference` on `inputs` with `arithmetic`. Throws InputError naming
// the node when the graph has what the reference cannot run (control flow).
// `substitutes` (by quantize node id, int64 values of that node's shape):
// after computing such a node, the reference continues from these values
// instead of its own, so each op is computed from another engine's inputs
// (op by op); `quantized` still holds what the reference computed.
IntegerReference run_integer_reference(const Graph& reference, const Arithmetic& arithmetic,
                                       const std::vector<at::Tensor>& inputs,
                                       const std::map<int, at::Tensor>& substitutes = {});

}  // namespace qsdk
