// Lowering (issue 6 items 3 and 4): the converted reference Q/DQ graph
// rewritten to LibTorch's real int8 kernels (quantized::conv2d_relu,
// quantized::linear, quantized::add, quantized::cat, ...) for the onednn
// (x86) or qnnpack (ARM) engine. LibTorch's own passes do the bulk:
// InsertPrepackUnpack, QuantFusion, ConstantPropagation (weights become
// packed-params constants); qsdk adds the few patterns LibTorch's fusion
// does not cover for graphs of this shape.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "qsdk/backend.h"

namespace qsdk {

class Graph;

struct LoweringReport {
  std::map<std::string, int> ops_before, ops_after;  // node kind -> count (constants excluded)
  int lowered_ops = 0;                               // nodes running on quantized tensors after lowering
  std::vector<std::string> notes;                    // what stayed float, what was not folded
};

// Lowers `graph` (a converted reference graph) in place for `target`. The
// quantized engine for `target` is selected while the passes run (prepacking
// is engine specific) and the previous engine restored afterwards, also on
// exceptions. Lowering::Reference is a no-op. Throws InputError when the
// engine is not available in this LibTorch.
LoweringReport lower(Graph& graph, Lowering target);

// Runs `graph` with the engine for `target` selected (lowered kernels
// dispatch on it); restores the previous engine.
std::vector<at::Tensor> run_with_engine(const Graph& graph, Lowering target, const std::vector<at::Tensor>& inputs);

// Agreement of a lowered output with the reference Q/DQ output, in steps
// of the output quantization scale: max |reference - lowered| / scale.
double max_difference_in_steps(const at::Tensor& reference_out, const at::Tensor& lowered_out, double output_scale);

// The scale of the quantize_per_tensor that produces the (dequantized)
// graph output `index`, if the graph ends in quantize -> dequantize or in a
// quantized kernel -> dequantize; -1 when unknown.
double output_scale(const Graph& graph, std::size_t index = 0);

}  // namespace qsdk
