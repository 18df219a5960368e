// Per-layer numerics (PT2E's numeric debugger idea): for every quantized
// activation of a converted model, the SQNR of the value its consumers see
// (after quantize -> dequantize) against the same value in the float model,
// both run on the same input. Shows where along the graph accuracy is lost.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "convert/convert_results.h"

namespace qsdk {

class Graph;

// Names every op output of a captured graph ("n12_0": node 12, output 0).
// Call before prepare: prepare and convert rewrite the graph in place and
// keep value names, and Graph::clone copies them, so per_layer_sqnr can pair
// a value of the converted model with the same value of the float model.
void name_values(Graph& graph);

// `reference` is the converted Q/DQ form of `float_graph`, both from a graph
// passed through name_values. The float side is compared with BatchNorm
// folded, as the reference is. Graph order.
std::vector<LayerSqnr> per_layer_sqnr(const Graph& float_graph, const Graph& reference,
                                      const std::vector<at::Tensor>& inputs);

}  // namespace qsdk
