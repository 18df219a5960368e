#include "graph/graph.h"

#include <pthread.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <algorithm>
#include <exception>
#include <system_error>

namespace qsdk {

namespace {

// LibTorch's interpreter compiles a value used once by the next node inline,
// recursing into its producer (torch::jit::Code, "can emit inline"): a chain
// of N such nodes recurses N levels deep, and the default 8 MB main-thread
// stack overflows (SIGSEGV) between 3,000 and 10,000 chained nodes. Large
// graphs are therefore compiled on a thread with a stack sized for them
// (address space only; pages are committed as the recursion touches them).
constexpr std::size_t kInlineCompileNodes = 2000;
constexpr std::size_t kStackBytesPerNode = 4096;

std::shared_ptr<torch::jit::Code> compile(const std::shared_ptr<torch::jit::Graph>& ir, std::size_t nodes) {
  if (nodes < kInlineCompileNodes) return std::make_shared<torch::jit::Code>(ir, "forward");
  struct Job {
    const std::shared_ptr<torch::jit::Graph>* ir;
    std::shared_ptr<torch::jit::Code> code;
    std::exception_ptr error;
  } job{&ir, nullptr, nullptr};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, std::max<std::size_t>(64u << 20, nodes * kStackBytesPerNode));
  pthread_t thread;
  const int rc = pthread_create(
      &thread, &attr,
      [](void* arg) -> void* {
        auto* j = static_cast<Job*>(arg);
        try {
          j->code = std::make_shared<torch::jit::Code>(*j->ir, "forward");
        } catch (...) {
          j->error = std::current_exception();
        }
        return nullptr;
      },
      &job);
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "qsdk: thread to compile a large graph");
  pthread_join(thread, nullptr);
  if (job.error) std::rethrow_exception(job.error);
  return job.code;
}

}  // namespace

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
  if (!code_) code_ = compile(ir_, nodes_.size());
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  torch::jit::InterpreterState(*code_).run(stack);
  return flatten_outputs(stack);
}

std::vector<at::Tensor> flatten_outputs(const std::vector<c10::IValue>& stack) {
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
