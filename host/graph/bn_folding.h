// BatchNorm folding: conv/linear -> batch_norm (eval mode) becomes one
// conv/linear with scaled weights and a shifted bias. Prepare observes the
// folded weights (so weight qparams describe the weights convert will
// quantize, as PT2E folds before computing them); convert rewrites the graph.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace torch::jit {
struct Node;
}

namespace qsdk {

struct FoldedWeights {
  at::Tensor weight;
  at::Tensor bias;
};

// If `op` (aten::conv2d/conv1d/linear with constant weight) feeds only an
// eval-mode aten::batch_norm with constant parameters, the folded weight
// and bias; else nullopt.
std::optional<FoldedWeights> folded_weights(const torch::jit::Node* op);

// The batch_norm node `op` folds into, or nullptr.
torch::jit::Node* foldable_batch_norm(const torch::jit::Node* op);

// Rewrites the graph: `op` takes the folded weight and bias constants, the
// batch_norm's users take `op`'s output, the batch_norm is destroyed.
// Returns false (and changes nothing) when the pair is not foldable.
bool fold_batch_norm(torch::jit::Node* op);

}  // namespace qsdk
