// The four PTQ algorithms (algorithms.h says where each runs). Each returns
// its decisions, one or more per layer it looked at, including the layers
// it skipped and why.
#pragma once

#include <vector>

#include "algorithms/algorithms.h"
#include "algorithms/weight_layers.h"

namespace qsdk {

class Graph;
class PreparedModel;

// Cross-layer equalization (Nagel et al. 2019, as AIMET does it): for each
// conv/linear A whose output reaches conv/linear B only through ops that
// commute with a positive per-channel scale (relu, leaky_relu, max/avg
// pooling, flatten into a linear), channel i of A is divided by
// s_i = sqrt(r_A,i / r_B,i) and B's matching input channel multiplied by
// it, where r is the channel's largest |weight|: both end with the range
// sqrt(r_A,i * r_B,i), so per-tensor weight grids waste less. The float
// model computes the same function. Sweeps until the scales settle.
std::vector<AlgorithmDecision> equalize_cross_layer(Graph& graph);

// SmoothQuant (Xiao et al. 2023) for linear layers fed by a layer_norm:
// input channel j is divided by s_j = max|X_j|^alpha / max|W_j|^(1-alpha)
// (folded into the layer_norm's weight and bias) and the linears' weight
// columns multiplied by it, moving activation outliers into the weights.
// max|X_j| comes from `batches` run through the float graph.
std::vector<AlgorithmDecision> smooth_quant(Graph& graph, const Batches& batches, double alpha);

// AdaRound (Nagel et al. 2020): for every conv/linear with its own weight
// qparams, learns whether each weight rounds up or down (a rectified
// sigmoid per weight, annealed to 0/1) to minimise the layer's output
// error on the float model's inputs, through a relu when one follows; the
// learned weights replace the constants of `prepared`'s graph, on the grid
// of the weight qparams prepare fixed, so convert keeps exactly those
// integers. `float_graph` is the float model (ids as in `prepared`).
std::vector<AlgorithmDecision> adaround(PreparedModel& prepared, const Graph& float_graph, const Batches& batches,
                                        const AlgorithmOptions& options);

// Empirical bias correction (Nagel et al. 2019, data-driven form): layer by
// layer in graph order, the mean per output channel of quantized-weight
// output minus float output, on calibration data, is subtracted from the
// bias. The quantized side runs a copy of the model whose earlier layers
// already have quantized (and corrected) weights, so a layer also corrects
// the shift its inputs carry. Layers without a bias are skipped.
std::vector<AlgorithmDecision> correct_bias(PreparedModel& prepared, const Graph& float_graph, const Batches& batches);

// The weight slots of `prepared` that AdaRound and bias correction work on:
// a conv/linear's weight with a slot of its own.
struct QuantizedLayer {
  torch::jit::Node* node = nullptr;  // in prepared.graph()
  int id = -1;                       // its node id (the same in the float graph)
  QParams qparams;
};
std::vector<QuantizedLayer> quantized_layers(const PreparedModel& prepared,
                                             std::vector<AlgorithmDecision>* skipped = nullptr,
                                             const char* algorithm = "");

}  // namespace qsdk
