// BatchNorm folding: conv/linear -> batch_norm (eval mode) becomes one
// conv/linear with scaled weights and a shifted bias. Prepare observes the
// folded weights (so weight qparams describe the weights convert will
// quantize, as PT2E folds before computing them); convert rewrites the graph.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

namespace torch::jit {
struct Node;
}

namespace qsdk {

class Graph;

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

// One fold of fold_batch_norms, as node ids and module paths before it.
struct BatchNormFold {
  int batch_norm_id = -1, op_id = -1;
  std::string batch_norm_path, op_kind, op_path;
  std::string text() const;  // "%5 aten::batch_norm (bn1) into %4 aten::conv2d (conv1)"
};

// PT2E's post-training semantics: every foldable conv/linear ->
// batch_norm pair is folded before annotation, so a backend's rule for the
// conv covers conv-BN. Renumbers the graph; returns what was folded.
// (QAT keeps BatchNorm for training; convert folds it.)
std::vector<BatchNormFold> fold_batch_norms(Graph& graph);

}  // namespace qsdk
