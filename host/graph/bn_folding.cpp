#include "graph/bn_folding.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::optional<c10::IValue> constant(const Value* v) {
  auto iv = torch::jit::toIValue(const_cast<Value*>(v));
  if (!iv) return std::nullopt;
  return *iv;
}

bool is_weighted_op(const Node* n) {
  return n->kind() == c10::aten::conv2d || n->kind() == c10::aten::conv1d || n->kind() == c10::aten::linear;
}

}  // namespace

Node* foldable_batch_norm(const Node* op) {
  if (!is_weighted_op(op) || op->outputs().size() != 1 || op->output(0)->uses().size() != 1) return nullptr;
  Node* bn = op->output(0)->uses()[0].user;
  if (bn->kind() != c10::aten::batch_norm || bn->input(0) != op->output(0)) return nullptr;
  auto training = constant(bn->input(5));
  if (!training || !training->isBool() || training->toBool()) return nullptr;
  for (std::size_t i : {3u, 4u, 7u})  // running_mean, running_var, eps must be constants
    if (!constant(bn->input(i))) return nullptr;
  auto w = constant(op->input(1));
  if (!w || !w->isTensor()) return nullptr;
  return bn;
}

std::optional<FoldedWeights> folded_weights(const Node* op) {
  Node* bn = foldable_batch_norm(op);
  if (!bn) return std::nullopt;
  const at::Tensor w = constant(op->input(1))->toTensor();
  const auto b_iv = op->inputs().size() > 2 ? constant(op->input(2)) : std::nullopt;
  const at::Tensor mean = constant(bn->input(3))->toTensor();
  const at::Tensor var = constant(bn->input(4))->toTensor();
  const double eps = constant(bn->input(7))->toDouble();
  const auto gamma_iv = constant(bn->input(1));
  const auto beta_iv = constant(bn->input(2));
  const at::Tensor gamma = gamma_iv && gamma_iv->isTensor() ? gamma_iv->toTensor() : at::ones_like(mean);
  const at::Tensor beta = beta_iv && beta_iv->isTensor() ? beta_iv->toTensor() : at::zeros_like(mean);
  const at::Tensor b = b_iv && b_iv->isTensor() ? b_iv->toTensor() : at::zeros_like(mean);

  // Double precision for the fold itself: the result must match the float
  // graph within 1e-5 relative.
  const at::Tensor scale = gamma.to(at::kDouble) / (var.to(at::kDouble) + eps).sqrt();
  std::vector<std::int64_t> shape(static_cast<std::size_t>(w.dim()), 1);
  shape[0] = -1;
  FoldedWeights f;
  f.weight = (w.to(at::kDouble) * scale.reshape(shape)).to(w.scalar_type()).contiguous();
  f.bias = ((b.to(at::kDouble) - mean.to(at::kDouble)) * scale + beta.to(at::kDouble)).to(w.scalar_type());
  return f;
}

bool fold_batch_norm(Node* op) {
  auto folded = folded_weights(op);
  if (!folded) return false;
  Node* bn = foldable_batch_norm(op);
  auto& g = *op->owningGraph();
  torch::jit::WithInsertPoint guard(op);
  op->replaceInput(1, g.insertConstant(folded->weight));
  op->replaceInput(2, g.insertConstant(folded->bias));
  op->output(0)->setType(bn->output(0)->type());
  bn->output(0)->replaceAllUsesWith(op->output(0));
  bn->destroy();
  return true;
}

std::string BatchNormFold::text() const {
  const auto label = [](int id, const std::string& kind, const std::string& path) {
    return "%" + std::to_string(id) + " " + kind + (path.empty() ? "" : " (" + path + ")");
  };
  return label(batch_norm_id, "aten::batch_norm", batch_norm_path) + " into " + label(op_id, op_kind, op_path);
}

std::vector<BatchNormFold> fold_batch_norms(Graph& graph) {
  std::vector<Node*> ops;
  for (Node* n : graph.nodes())
    if (foldable_batch_norm(n)) ops.push_back(n);
  std::vector<BatchNormFold> folds;
  for (Node* op : ops) {
    const Node* bn = foldable_batch_norm(op);
    BatchNormFold f{graph.id(bn), graph.id(op), graph.module_path(bn), op->kind().toQualString(),
                    graph.module_path(op)};
    graph.set_module_path(bn, "");  // its address may be reused by a later node
    if (fold_batch_norm(op)) folds.push_back(std::move(f));
  }
  if (!folds.empty()) {
    graph.renumber();
    graph.invalidate_compiled();
  }
  return folds;
}

}  // namespace qsdk
