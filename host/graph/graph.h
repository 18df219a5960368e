// The one graph type the pipeline stages share: a canonical TorchScript IR
// graph plus what every later stage needs to name things: a stable id and a
// module path per node ("layer1.0.conv1", for overrides and reports).
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace torch::jit {
struct Code;
}

namespace qsdk {

class Graph {
 public:
  // `module_paths` maps nodes of `ir` to their module paths (may be partial).
  Graph(std::shared_ptr<torch::jit::Graph> ir, std::string source,
        std::unordered_map<const torch::jit::Node*, std::string> module_paths = {});

  // A deep copy of the IR with the same node ids and module paths.
  std::unique_ptr<Graph> clone() const;

  torch::jit::Graph& ir() const { return *ir_; }
  const std::shared_ptr<torch::jit::Graph>& ir_ptr() const { return ir_; }
  // Where the model came from: "zoo:resnet18" or a file path.
  const std::string& source() const { return source_; }

  // Op nodes (everything but prim::Constant) in topological order; a node's
  // id is its index here.
  const std::vector<torch::jit::Node*>& nodes() const { return nodes_; }
  torch::jit::Node* node(int id) const;
  int id(const torch::jit::Node* n) const;  // -1 if not an op node of this graph
  const std::string& module_path(const torch::jit::Node* n) const;

  // Renumbers after a pass changed the graph; new nodes get no module path
  // unless set_module_path gives one.
  void renumber();
  void set_module_path(const torch::jit::Node* n, std::string path);
  // After a pass that only added nodes (prepare's observers): keeps ids and
  // paths of existing nodes, recompiles before the next run.
  void invalidate_compiled() { code_.reset(); }

  // Runs the graph with LibTorch's interpreter. Outputs are the graph's
  // outputs, with tuples flattened.
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs) const;

 private:
  std::shared_ptr<torch::jit::Graph> ir_;
  std::string source_;
  std::unordered_map<const torch::jit::Node*, std::string> module_paths_;
  std::vector<torch::jit::Node*> nodes_;
  std::unordered_map<const torch::jit::Node*, int> ids_;
  mutable std::shared_ptr<torch::jit::Code> code_;  // compiled on first run
};

// The tensors a graph run left on the interpreter's stack, with tuples and
// tensor lists flattened (what Graph::run returns).
std::vector<at::Tensor> flatten_outputs(const std::vector<c10::IValue>& stack);

// Shape of a tensor value when fully known.
std::optional<std::vector<std::int64_t>> concrete_shape(const torch::jit::Value* v);

}  // namespace qsdk
