#include "capture/capture.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/fuse_linear.h>
#include <torch/csrc/jit/passes/graph_rewrite_helper.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/remove_dropout.h>
#include <torch/csrc/jit/passes/remove_mutation.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/script.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>

#include "capture/zoo/zoo_models.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/memory_budget.h"

namespace qsdk {
namespace {

namespace fs = std::filesystem;
using torch::jit::Node;
using torch::jit::Value;

// LibTorch's messages carry a C++ backtrace after the first line.
std::string first_line(const std::string& message) {
  auto end = message.find('\n');
  return message.substr(0, end);
}

// What went wrong when a model ran on the example inputs, in one line. An
// error inside TorchScript code comes with the interpreter's traceback
// first; its cause ("RuntimeError: Expected 4D input ...") is the last line.
std::string model_error(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e))
    return first_line(c10_error->what_without_backtrace());
  std::string text = e.what();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.find("Traceback of TorchScript") == std::string::npos) return first_line(text);
  const auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Module path of a node from its inlining call stack (scripted/loaded
// modules: "layer1" -> "0" -> "conv1"), else from its tracer scope (zoo).
std::string module_path_of(Node* n) {
  std::string path;
  if (auto cs = n->callstack()) {
    for (const auto& entry : (*cs)->vec()) {
      const auto& info = std::get<2>(entry);
      if (!info) continue;
      const std::string& name = info->instance_name();
      if (name.empty() || name == "SELF" || name == "INSTANCE_NAME_UNKNOWN") continue;
      path += (path.empty() ? "" : ".") + name;
    }
    if (!path.empty()) return path;
  }
  if (n->scope() && !n->scope()->isBlank()) {
    path = n->scope()->namesFromRoot();
    std::replace(path.begin(), path.end(), '/', '.');
  }
  return path;
}

void reject_control_flow(torch::jit::Graph& g, const std::string& where) {
  for (Node* n : g.nodes()) {
    if (n->kind() == c10::prim::If || n->kind() == c10::prim::Loop) {
      const std::string path = module_path_of(n);
      throw InputError(where, std::string("control flow left after freezing: ") + n->kind().toQualString() +
                                  (path.empty() ? "" : " in module '" + path + "'") +
                                  "; export the model with torch.jit.trace, or make the condition a constant");
    }
  }
}

// A scope whose single name is the dotted module path.
torch::jit::ScopePtr scope_for(const std::string& path) {
  return c10::make_intrusive<torch::jit::Scope>()->push(c10::Symbol::scope(path));
}

// Runs one canonicalization pass. Rewriting passes (FuseLinear, conv
// replacement) create nodes without scope or call stack; those nodes take
// the module path of the nodes they replaced, found through the values the
// old and new nodes both consume (the weight constant, typically). Values
// are keyed by unique(), which is never reused within a graph. When
// QSDK_DUMP_PASSES is set, prints the graph after the pass.
template <typename Pass>
void run_pass(const char* name, std::shared_ptr<torch::jit::Graph>& g, Pass pass) {
  std::unordered_map<std::size_t, std::set<std::string>> consumer_paths;
  // New nodes are told apart by their outputs' unique(), which only grows:
  // node pointers may be reused by the allocator.
  std::size_t last_unique = 0;
  for (Value* v : g->inputs()) last_unique = std::max(last_unique, v->unique());
  for (Node* n : g->nodes()) {
    for (Value* v : n->outputs()) last_unique = std::max(last_unique, v->unique());
    const std::string path = module_path_of(n);
    if (!path.empty())
      for (Value* v : n->inputs()) consumer_paths[v->unique()].insert(path);
  }
  pass(g);
  auto path_through = [&](Value* v) -> std::string {
    if (!v->type()->cast<c10::TensorType>()) return {};  // ints and lists are pooled, shared by all
    for (Value* candidate : {v, v->node()->kind() == c10::aten::t ? v->node()->input(0) : v}) {
      auto it = consumer_paths.find(candidate->unique());
      if (it != consumer_paths.end() && it->second.size() == 1) return *it->second.begin();
    }
    return {};
  };
  for (Node* n : g->nodes()) {
    const bool is_new = n->outputs().size() > 0 && n->output(0)->unique() > last_unique;
    if (n->kind() == c10::prim::Constant || !is_new || !module_path_of(n).empty()) continue;
    // Weights and other operands first: the activation input is shared by sibling ops.
    std::string path;
    for (std::size_t i = 1; i < n->inputs().size() && path.empty(); ++i) path = path_through(n->input(i));
    if (path.empty() && n->inputs().size() > 0) path = path_through(n->input(0));
    if (!path.empty()) n->setScope(scope_for(path));
  }
  static const bool dump = std::getenv("QSDK_DUMP_PASSES") != nullptr;
  if (dump) std::cerr << "=== after " << name << "\n" << *g << "\n";
}

// matmul(x, W) [+ b] with W a constant 2-D tensor (and b a constant 1-D one)
// becomes linear(x, W^T, b). FuseLinear only knows matmul(x, t(W)), and
// freezing has usually folded that t() into the constant already.
void fuse_constant_matmul(std::shared_ptr<torch::jit::Graph>& g) {
  std::vector<Node*> candidates;
  for (Node* n : g->nodes())
    if (n->kind() == c10::aten::matmul) candidates.push_back(n);
  for (Node* mm : candidates) {
    auto weight = torch::jit::toIValue(mm->input(1));
    if (!weight || !weight->isTensor() || weight->toTensor().dim() != 2) continue;
    const at::Tensor w = weight->toTensor();
    Node* add = nullptr;
    c10::IValue bias;  // None unless an add of a matching constant follows
    if (mm->output()->uses().size() == 1) {
      Node* user = mm->output()->uses()[0].user;
      if ((user->kind() == c10::aten::add || user->kind() == c10::aten::add_) && user->inputs().size() == 3 &&
          user->input(0) == mm->output()) {
        auto b = torch::jit::toIValue(user->input(1));
        auto alpha = torch::jit::toIValue(user->input(2));
        if (b && b->isTensor() && b->toTensor().dim() == 1 && b->toTensor().size(0) == w.size(1) && alpha &&
            alpha->isInt() && alpha->toInt() == 1) {
          add = user;
          bias = *b;
        }
      }
    }
    Node* last = add ? add : mm;
    torch::jit::WithInsertPoint guard(last);
    Value* wt = g->insertConstant(w.t().contiguous());
    Value* b = g->insertConstant(bias);
    Node* linear = g->create(c10::aten::linear, {mm->input(0), wt, b});
    linear->insertBefore(last);
    linear->output()->setType(last->output()->type());
    linear->setScope(mm->scope());
    if (auto cs = mm->callstack()) linear->setCallStack(*cs);
    last->output()->replaceAllUsesWith(linear->output());
    if (add) add->destroy();
    mm->destroy();
  }
}

// Brings a graph from any source to canonical form (see capture.h).
void canonicalize(std::shared_ptr<torch::jit::Graph>& g) {
  using G = std::shared_ptr<torch::jit::Graph>;
  run_pass("Inline", g, [](G& x) { torch::jit::Inline(*x); });
  run_pass("removeDropout", g, [](G& x) { torch::jit::removeDropout(x); });
  // Before the conv rewrite, which constant-folds the aten::t FuseLinear matches on.
  run_pass("FuseLinear", g, [](G& x) { torch::jit::FuseLinear(x); });
  run_pass("replaceConvolutionWithAtenConv", g,
           [](G& x) { torch::jit::graph_rewrite_helper::replaceConvolutionWithAtenConv(x); });
  // relu_ and friends become relu: rules match functional ops only.
  run_pass("RemoveTensorMutation", g, [](G& x) { torch::jit::RemoveTensorMutation(x); });
  run_pass("RemoveListMutation", g, [](G& x) { torch::jit::RemoveListMutation(x); });
  run_pass("ConstantPropagation", g, [](G& x) { torch::jit::ConstantPropagation(x); });
  run_pass("fuse_constant_matmul", g, fuse_constant_matmul);
  run_pass("ConstantPooling", g, [](G& x) { torch::jit::ConstantPooling(x); });
  run_pass("EliminateDeadCode", g, [](G& x) { torch::jit::EliminateDeadCode(x); });
  // A frozen module's forward still takes `self`; nothing uses it any more.
  if (!g->inputs().empty() && g->inputs()[0]->type()->cast<c10::ClassType>() && !g->inputs()[0]->hasUses())
    g->eraseInput(0);
}

// Types every tensor value with the shape and dtype it has on `inputs`: runs
// a copy of the graph in which every tensor value is also an output. Exact
// for every op, unlike static shape analysis.
void propagate_shapes(torch::jit::Graph& g, const std::vector<at::Tensor>& inputs) {
  auto probe = g.copy();
  std::vector<Value*> originals, copies;
  auto collect = [](torch::jit::Graph& graph, std::vector<Value*>& out) {
    for (Value* v : graph.inputs())
      if (v->type()->cast<c10::TensorType>()) out.push_back(v);
    for (Node* n : graph.nodes())
      for (Value* v : n->outputs())
        if (v->type()->cast<c10::TensorType>()) out.push_back(v);
  };
  collect(g, originals);
  collect(*probe, copies);
  for (Value* v : copies) probe->registerOutput(v);
  Graph runnable(probe, "shape probe");
  // run() flattens the graph's own outputs first; the probes come last.
  auto values = runnable.run(inputs);
  const std::size_t first = values.size() - copies.size();
  for (std::size_t i = 0; i < originals.size(); ++i) {
    const at::Tensor& t = values[first + i];
    originals[i]->setType(c10::TensorType::create(t)->withRequiresGrad(false));
  }
}

std::string inputs_text(const std::vector<InputSpec>& inputs) {
  std::string s;
  for (const auto& in : inputs)
    s += (s.empty() ? "" : " ") + shape_text(in.shape) + (in.is_integer() ? " " + dtype_name(in.dtype) : "");
  return s;
}

at::ScalarType scalar_type_of(InputDtype d) {
  switch (d) {
    case InputDtype::int64: return at::kLong;
    case InputDtype::int32: return at::kInt;
    case InputDtype::boolean: return at::kBool;
    case InputDtype::float32: break;
  }
  return at::kFloat;
}

// Normal noise for float inputs, uniform integers in the range for the others.
std::vector<at::Tensor> make_inputs(const std::vector<InputSpec>& specs, std::uint64_t seed) {
  std::uintmax_t bytes = 0;
  for (const auto& in : specs) bytes += tensor_bytes(in.shape, sizeof(std::int64_t), "--input " + input_spec_text(in));
  require_within_memory_budget(bytes, "example inputs " + inputs_text(specs), "give smaller input shapes");
  torch::manual_seed(seed);
  std::vector<at::Tensor> inputs;
  for (const auto& in : specs) {
    if (!in.is_integer()) {
      inputs.push_back(torch::randn(in.shape));
      continue;
    }
    const auto high = in.dtype == InputDtype::boolean ? 2 : in.high;
    inputs.push_back(torch::randint(in.low, high, in.shape, at::kLong).to(scalar_type_of(in.dtype)));
  }
  return inputs;
}

// The graph input's name as the model's author wrote it ("idx", not "idx.1").
std::string input_name(Value* v) {
  std::string name = v->debugName();
  const auto dot = name.rfind('.');
  if (dot != std::string::npos && dot + 1 < name.size() &&
      name.find_first_not_of("0123456789", dot + 1) == std::string::npos)
    name.resize(dot);
  return std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })
             ? std::string()
             : name;
}

// The embedding a graph input indexes directly (aten::embedding's indices),
// or nullptr.
Node* embedding_indexed_by(Value* input) {
  for (const auto& use : input->uses())
    if (use.user->kind() == c10::aten::embedding && use.offset == 1) return use.user;
  return nullptr;
}

// Checks what the user declared against the canonical graph before anything
// runs: one spec per input, the graph's names on them, and the dtype an
// embedding's indices need. An integer input without a range takes the
// rows of the embedding it indexes; with neither it is refused (random
// example data needs bounds).
std::vector<InputSpec> resolve_inputs(torch::jit::Graph& g, std::vector<InputSpec> specs, const std::string& source) {
  if (g.inputs().size() != specs.size())
    throw InputError(source, "model takes " + std::to_string(g.inputs().size()) + " input(s), " +
                                 std::to_string(specs.size()) + " input shape(s) given (" + inputs_text(specs) +
                                 "); pass one --input-shape (or --input) per input");
  for (std::size_t k = 0; k < specs.size(); ++k) {
    InputSpec& in = specs[k];
    in.name = input_name(g.inputs()[k]);
    const std::string label = input_label(in, k);
    Node* embedding = embedding_indexed_by(g.inputs()[k]);
    std::int64_t rows = 0;
    std::string table;
    if (embedding) {
      const std::string path = module_path_of(embedding);
      table = "aten::embedding" + (path.empty() ? std::string() : " in module '" + path + "'");
      if (auto w = torch::jit::toIValue(embedding->input(0)); w && w->isTensor()) rows = w->toTensor().size(0);
      table += rows > 0 ? " (" + std::to_string(rows) + " rows)" : "";
    }
    if (embedding && !in.is_integer())
      throw InputError(source, label + " of the model wants int64 token ids (it indexes " + table +
                                   "), not float32: declare it, e.g. --input " + input_spec_text(in) + ":int64");
    if (embedding && in.dtype == InputDtype::boolean)
      throw InputError(source, label + " indexes " + table + ": declare it int64, not bool");
    if (!in.is_integer() || in.dtype == InputDtype::boolean) continue;
    if (!in.has_range()) {
      if (rows <= 0)
        throw InputError(source, label + " is " + dtype_name(in.dtype) +
                                     " and indexes no embedding: declare the range of its values, e.g. --input " +
                                     input_spec_text(in) + ":0..2");
      in.low = 0;
      in.high = rows;
    } else if (rows > 0 && (in.low < 0 || in.high > rows)) {
      throw InputError(source, label + ": range " + std::to_string(in.low) + ".." + std::to_string(in.high) +
                                   " does not fit " + table + ": token ids must lie in 0.." + std::to_string(rows));
    }
  }
  return specs;
}

// Checks and types the canonical graph `g`; builds the shared Graph.
// Multi-output ops (chunk, split, unbind) give a list that ListUnpack
// takes apart; no rule can annotate a list's elements. Each element becomes
// its own view of the input, aten::slice (chunk, split) or aten::select
// (unbind), with the sizes the typing run found: single-output ops that
// keep their input's qparams, which rules annotate and kernels run on
// quantized tensors. Not along dim 0 (the batch dim: the sizes would bake in
// the trace's batch).
int split_list_outputs(torch::jit::Graph& g) {
  int split = 0;
  std::vector<Node*> candidates;
  for (Node* n : g.nodes()) {
    const auto kind = n->kind();
    if (kind != c10::aten::chunk && kind != c10::aten::split && kind != c10::aten::unbind &&
        kind != c10::aten::split_with_sizes)
      continue;
    if (n->outputs().size() != 1 || n->output()->uses().size() != 1) continue;
    if (n->output()->uses()[0].user->kind() != c10::prim::ListUnpack) continue;
    candidates.push_back(n);
  }
  for (Node* n : candidates) {
    Node* unpack = n->output()->uses()[0].user;
    const auto input = n->input(0)->type()->cast<c10::TensorType>();
    const auto dim_value = torch::jit::toIValue(n->input(n->kind() == c10::aten::unbind ? 1 : 2));
    if (!input || !input->sizes().concrete_sizes() || !dim_value || !dim_value->isInt()) continue;
    const auto rank = static_cast<std::int64_t>(input->sizes().concrete_sizes()->size());
    std::int64_t dim = dim_value->toInt();
    if (dim < 0) dim += rank;
    if (dim <= 0 || dim >= rank) continue;
    std::vector<std::int64_t> lengths;
    for (Value* out : unpack->outputs()) {
      const auto t = out->type()->cast<c10::TensorType>();
      if (!t || !t->sizes().concrete_sizes()) break;
      const auto sizes = *t->sizes().concrete_sizes();
      lengths.push_back(n->kind() == c10::aten::unbind ? 1 : sizes.at(std::size_t(dim)));
    }
    if (lengths.size() != unpack->outputs().size()) continue;
    torch::jit::WithInsertPoint guard(unpack);
    std::int64_t start = 0;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      Value* part = nullptr;
      if (n->kind() == c10::aten::unbind) {
        part = g.insert(c10::aten::select, {n->input(0), dim, start});
      } else {
        part = g.insert(c10::aten::slice, {n->input(0), dim, start, start + lengths[i], 1});
      }
      part->node()->setScope(n->scope());
      part->setType(unpack->output(i)->type());
      unpack->output(i)->replaceAllUsesWith(part);
      start += lengths[i];
    }
    unpack->destroy();
    n->destroy();
    ++split;
  }
  return split;
}

// Runs `graph` once more with one sample more than the example inputs (the
// first repeated). Empty if that works and every output whose first dim was
// the batch follows it; else why not, naming the first node that takes a
// constant shape beginning with the trace's batch (a traced x.view(1, -1)).
std::string fixed_batch_diagnosis(const Graph& graph, const std::vector<at::Tensor>& inputs) {
  if (inputs.empty()) return "";
  const std::int64_t batch = inputs[0].dim() ? inputs[0].size(0) : -1;
  for (const auto& t : inputs)
    if (t.dim() == 0 || t.size(0) != batch) return "";  // no common batch dim to vary
  std::vector<at::Tensor> more;
  for (const auto& t : inputs) more.push_back(at::cat({t, t.narrow(0, 0, 1)}, 0));
  std::string failure;
  try {
    Graph probe(graph.ir().copy(), "batch probe");
    const auto outs = probe.run(more);
    const auto declared = graph.ir().outputs();
    for (std::size_t i = 0; i < outs.size() && i < declared.size(); ++i) {
      const auto t = declared[i]->type()->cast<c10::TensorType>();
      const auto sizes = t ? t->sizes().concrete_sizes() : c10::nullopt;
      if (sizes && !sizes->empty() && (*sizes)[0] == batch && outs[i].dim() > 0 && outs[i].size(0) != batch + 1)
        failure = "output " + std::to_string(i) + " keeps " + std::to_string(outs[i].size(0)) + " rows at batch " +
                  std::to_string(batch + 1);
    }
  } catch (const std::exception& e) {
    failure = "a batch of " + std::to_string(batch + 1) + " fails: " + model_error(e);
  }
  if (failure.empty()) return "";
  // Ops that take a shape: a literal one starting with the batch fixes it.
  static const std::set<std::string> shaping = {
      "aten::view",      "aten::reshape",  "aten::expand",   "aten::broadcast_to", "aten::zeros",
      "aten::ones",      "aten::full",     "aten::empty",    "aten::rand",         "aten::randn",
      "aten::new_zeros", "aten::new_ones", "aten::new_full", "aten::new_empty"};
  std::string culprit;
  for (const Node* n : graph.nodes()) {
    if (!shaping.count(n->kind().toQualString())) continue;
    for (const Value* v : n->inputs()) {
      const auto iv = torch::jit::toIValue(const_cast<Value*>(v));
      if (!iv || !iv->isIntList()) continue;
      const auto list = iv->toIntVector();
      if (list.empty() || list[0] != batch) continue;
      const std::string& path = graph.module_path(n);
      culprit = "%" + std::to_string(graph.id(n)) + " " + n->kind().toQualString() +
                (path.empty() ? "" : " (" + path + ")") + " takes the constant shape " + shape_text(list) + "; ";
      break;
    }
    if (!culprit.empty()) break;
  }
  return "the traced graph fixes the batch at " + std::to_string(batch) + ": " + culprit + failure;
}

// The trace's batch, and whether the graph fixes it (fixed_batch_diagnosis).
void record_batch(CapturedModel& out, const std::vector<at::Tensor>& inputs) {
  out.fixed_batch = fixed_batch_diagnosis(*out.graph, inputs);
  out.trace_batch = inputs.empty() || inputs[0].dim() == 0 ? 0 : inputs[0].size(0);
}

std::unique_ptr<Graph> finish_capture(std::shared_ptr<torch::jit::Graph> g, const std::string& source,
                                      const std::vector<at::Tensor>& inputs, const std::vector<InputSpec>& specs) {
  try {
    propagate_shapes(*g, inputs);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(source, "input shape " + inputs_text(specs) + " does not fit the model: " + model_error(e));
  }
  split_list_outputs(*g);
  std::unordered_map<const Node*, std::string> paths;
  for (Node* n : g->nodes())
    if (auto p = module_path_of(n); !p.empty()) paths[n] = p;
  return std::make_unique<Graph>(std::move(g), source, std::move(paths));
}

CapturedModel capture_zoo(const std::string& name, const CaptureOptions& options) {
  const std::string source = "zoo:" + name;
  const zoo::ZooInfo* info = zoo::find_zoo_model(name);
  if (!info) {
    std::string known;
    for (const auto& z : zoo::zoo_models()) known += (known.empty() ? "" : ", ") + z.name;
    throw InputError(source, "no such zoo model (known: " + known + ")");
  }
  const auto specs = options.inputs.empty() ? info->inputs : options.inputs;
  auto model = std::make_shared<zoo::ZooModel>(zoo::build_zoo_model(name, options.seed));
  auto inputs = make_inputs(specs, options.seed);

  torch::NoGradGuard no_grad;
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  std::shared_ptr<torch::jit::Graph> traced;
  try {
    auto traced_state = torch::jit::tracer::trace(
        stack,
        [&](torch::jit::Stack in) -> torch::jit::Stack {
          std::vector<at::Tensor> tensors;
          for (auto& v : in) tensors.push_back(v.toTensor());
          return {model->forward(tensors)};
        },
        [](const at::Tensor&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false);
    traced = traced_state.first->graph;
  } catch (const std::exception& e) {
    torch::jit::tracer::abandon();
    throw InputError(source, "input shape " + inputs_text(specs) + " does not fit the model: " + model_error(e));
  }
  canonicalize(traced);
  reject_control_flow(*traced, source);
  CapturedModel out;
  out.inputs = resolve_inputs(*traced, specs, source);
  out.graph = finish_capture(traced, source, inputs, out.inputs);
  record_batch(out, inputs);
  out.example_inputs = std::move(inputs);
  out.original = [model](const std::vector<at::Tensor>& in) {
    torch::NoGradGuard guard;
    return std::vector<at::Tensor>{model->forward(in)};
  };
  return out;
}

// A model's tensors as qsdk will hold them: freezing, folding and
// quantization materialize every weight, so a tensor stored as a stride-0
// view (a 2 KB file declaring a 20000x20000 weight) costs its full size.
// Refused: a tensor that is a view over more than 1024 times the bytes it
// stores and would take over 64 MiB (no trained model is built that way),
// and models whose tensors together exceed the memory budget; and NaN or
// Inf in any float parameter or buffer (named by its module path).
void require_model_fits(const torch::jit::Module& module, const std::string& path) {
  std::uintmax_t total = 0, largest = 0;
  std::string largest_name;
  auto consider = [&](const std::string& name, const at::Tensor& t) {
    const std::uintmax_t full = tensor_bytes(t.sizes().vec(), t.element_size(), path + ": " + name);
    const std::uintmax_t stored = t.has_storage() ? t.storage().nbytes() : full;
    if (full > (64u << 20) && full / 1024 > stored)
      throw InputError(path, "tensor '" + name + "' is a " + shape_text(t.sizes().vec()) + " view of " +
                                 bytes_text(stored) + " of storage (strides " + shape_text(t.strides().vec()) +
                                 "); qsdk would materialize " + bytes_text(full) +
                                 ". Save the model with real (contiguous) weights");
    total += full;
    if (full > largest) largest = full, largest_name = name;
    // A corrupted weight would otherwise surface at calibration, blamed on
    // the data that meets it.
    if (t.is_floating_point() && t.numel() > 0) {
      const auto bad = t.isfinite().logical_not();
      if (const auto count = bad.sum().item<std::int64_t>(); count > 0) {
        const auto flat = bad.reshape({-1}).nonzero().select(1, 0).select(0, 0).item<std::int64_t>();
        std::string index;
        auto rest = flat;
        for (std::int64_t d = t.dim() - 1; d >= 0; --d) {
          index = std::to_string(rest % t.size(d)) + (index.empty() ? "" : ", ") + index;
          rest /= t.size(d);
        }
        throw InputError(path, "tensor '" + name + "' " + shape_text(t.sizes().vec()) + " holds " +
                                   std::to_string(count) + " NaN or Inf value(s), the first at [" + index +
                                   "] = " + std::to_string(t.reshape({-1})[flat].item<double>()) +
                                   ": the model file is corrupted or was saved after training diverged");
      }
    }
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) consider(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) consider(b.name, b.value);
  require_within_memory_budget(total, path + ": the model's weights (largest: " + largest_name + ")",
                               "give a smaller model");
}

CapturedModel capture_file(const std::string& path, const CaptureOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path, "no such file");
  require_regular_file(path, "TorchScript file (.pt)");
  if (fs::file_size(path, ec) == 0) throw InputError(path, "file is empty, expected a TorchScript archive");
  if (options.inputs.empty())
    throw InputError(path,
                     "input shapes unknown: pass --input-shape (e.g. --input-shape 1,3,224,224) or --input "
                     "(e.g. --input 1,64:int64) per input");

  auto module = std::make_shared<torch::jit::Module>();
  try {
    *module = torch::jit::load(path);
  } catch (const c10::Error& e) {
    const std::string msg = first_line(e.what_without_backtrace());
    const bool zip = msg.find("zip archive") != std::string::npos || msg.find("central directory") != std::string::npos;
    throw InputError(path, std::string(zip ? "not a TorchScript archive, or a truncated one" : "cannot load model") +
                               " (" + msg + ")");
  } catch (const std::exception& e) {
    throw InputError(path, std::string("cannot load model (") + first_line(e.what()) + ")");
  }
  if (!module->find_method("forward")) throw InputError(path, "the TorchScript module has no forward method");
  require_model_fits(*module, path);
  module->eval();

  std::shared_ptr<torch::jit::Graph> graph;
  try {
    torch::jit::Module frozen = torch::jit::freeze_module(*module);
    graph = frozen.get_method("forward").graph()->copy();
  } catch (const c10::Error& e) {
    throw InputError(path, "cannot freeze the module: " + first_line(e.what_without_backtrace()));
  }
  canonicalize(graph);
  reject_control_flow(*graph, path);
  CapturedModel out;
  out.inputs = resolve_inputs(*graph, options.inputs, path);
  auto inputs = make_inputs(out.inputs, options.seed);
  out.graph = finish_capture(graph, path, inputs, out.inputs);
  record_batch(out, inputs);
  out.example_inputs = std::move(inputs);
  out.original = [module](const std::vector<at::Tensor>& in) {
    torch::NoGradGuard guard;
    std::vector<c10::IValue> args(in.begin(), in.end());
    auto result = module->forward(args);
    std::vector<at::Tensor> outs;
    if (result.isTuple())
      for (const auto& e : result.toTupleRef().elements()) outs.push_back(e.toTensor());
    else
      outs.push_back(result.toTensor());
    return outs;
  };
  return out;
}

}  // namespace

CapturedModel capture_model(const std::string& model, const CaptureOptions& options) {
  if (model.rfind("zoo:", 0) == 0) return capture_zoo(model.substr(4), options);
  return capture_file(model, options);
}

std::vector<std::int64_t> parse_shape(const std::string& text) {
  return parse_input_dims(text, "--input-shape " + text);
}

}  // namespace qsdk
