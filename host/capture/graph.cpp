#include "capture/graph.h"

#include <torch/csrc/jit/runtime/interpreter.h>

namespace qsdk {

Graph::Graph(std::shared_ptr<torch::jit::Graph> ir, std::string source,
             std::unordered_map<const torch::jit::Node*, std::string> module_paths)
    : ir_(std::move(ir)), source_(std::move(source)), module_paths_(std::move(module_paths)) {
  renumber();
}

std::unique_ptr<Graph> Graph::clone() const {
  auto copy = ir_->copy();
  // copy() keeps node order, so the i-th node of each corresponds.
  std::unordered_map<const torch::jit::Node*, std::string> paths;
  auto theirs = copy->nodes().begin();
  for (auto* n : ir_->nodes()) {
    if (auto it = module_paths_.find(n); it != module_paths_.end()) paths[*theirs] = it->second;
    ++theirs;
  }
  return std::make_unique<Graph>(std::move(copy), source_, std::move(paths));
}

void Graph::renumber() {
  nodes_.clear();
  ids_.clear();
  for (auto* n : ir_->nodes()) {
    if (n->kind() == c10::prim::Constant) continue;
    ids_[n] = static_cast<int>(nodes_.size());
    nodes_.push_back(n);
  }
  code_.reset();
}

torch::jit::Node* Graph::node(int id) const {
  return id >= 0 && id < static_cast<int>(nodes_.size()) ? nodes_[static_cast<std::size_t>(id)] : nullptr;
}

int Graph::id(const torch::jit::Node* n) const {
  auto it = ids_.find(n);
  return it == ids_.end() ? -1 : it->second;
}

const std::string& Graph::module_path(const torch::jit::Node* n) const {
  static const std::string kNone;
  auto it = module_paths_.find(n);
  return it == module_paths_.end() ? kNone : it->second;
}

void Graph::set_module_path(const torch::jit::Node* n, std::string path) { module_paths_[n] = std::move(path); }

std::vector<at::Tensor> Graph::run(const std::vector<at::Tensor>& inputs) const {
  if (!code_) code_ = std::make_shared<torch::jit::Code>(ir_, "forward");
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  torch::jit::InterpreterState(*code_).run(stack);
  std::vector<at::Tensor> out;
  for (const auto& v : stack) {
    if (v.isTensor())
      out.push_back(v.toTensor());
    else if (v.isTuple())
      for (const auto& e : v.toTupleRef().elements()) out.push_back(e.toTensor());
    else if (v.isTensorList())
      for (const auto& t : v.toTensorVector()) out.push_back(t);
  }
  return out;
}

std::optional<std::vector<std::int64_t>> concrete_shape(const torch::jit::Value* v) {
  auto t = v->type()->cast<c10::TensorType>();
  if (!t) return std::nullopt;
  auto sizes = t->sizes().concrete_sizes();  // c10::optional
  if (!sizes) return std::nullopt;
  return *sizes;
}

}  // namespace qsdk
