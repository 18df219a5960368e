#include "convert/lowering.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/quantization/finalize.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include "common/error.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::optional<at::QEngine> engine_for(Lowering target) {
  switch (target) {
    case Lowering::OneDNN: return at::QEngine::ONEDNN;
    case Lowering::QNNPACK: return at::QEngine::QNNPACK;
    case Lowering::Reference: break;
  }
  return std::nullopt;
}

// Selects the engine for `target` for its lifetime; restores the previous one.
class EngineGuard {
 public:
  explicit EngineGuard(Lowering target) : previous_(at::globalContext().qEngine()) {
    const auto engine = engine_for(target);
    if (!engine) return;
    const auto& supported = at::globalContext().supportedQEngines();
    if (std::find(supported.begin(), supported.end(), *engine) == supported.end())
      throw InputError(to_string(target), "this LibTorch has no such quantized engine");
    at::globalContext().setQEngine(*engine);
  }
  ~EngineGuard() { at::globalContext().setQEngine(previous_); }
  EngineGuard(const EngineGuard&) = delete;
  EngineGuard& operator=(const EngineGuard&) = delete;

 private:
  at::QEngine previous_;
};

std::map<std::string, int> histogram(const torch::jit::Graph& g) {
  std::map<std::string, int> h;
  for (const auto* n : g.nodes())
    if (n->kind() != c10::prim::Constant) ++h[n->kind().toQualString()];
  return h;
}

// A dequantize used by several nodes gets one copy per use, so that each
// consumer can be matched (and fused) on its own.
void split_dequantize_uses(torch::jit::Graph& g) {
  std::vector<Node*> multi;
  for (auto* n : g.nodes())
    if (n->kind() == c10::aten::dequantize && n->output()->uses().size() > 1) multi.push_back(n);
  for (auto* n : multi) {
    const auto uses = n->output()->uses();
    for (std::size_t i = 1; i < uses.size(); ++i) {
      Node* copy = g.createClone(n, [](Value* v) { return v; });
      copy->insertAfter(n);
      copy->output()->copyMetadata(n->output());
      uses[i].user->replaceInput(uses[i].offset, copy->output());
    }
  }
}

std::optional<double> constant_double(Value* v) {
  auto iv = torch::jit::toIValue(v);
  if (!iv) return std::nullopt;
  if (iv->isDouble()) return iv->toDouble();
  if (iv->isInt()) return double(iv->toInt());
  return std::nullopt;
}

// Ops whose quantized form keeps its input's qparams: pooling, relu and
// views (reshapes, permutes, slices), which LibTorch runs on quantized
// tensors as they are. Not aten::view: quantized kernels may return
// channels-last tensors, which view cannot take (reshape copies).
const std::set<std::string> kQParamPreservingOps = {
    "aten::max_pool2d", "aten::relu",      "aten::flatten",   "aten::avg_pool2d", "aten::adaptive_avg_pool2d",
    "aten::reshape",    "aten::permute",   "aten::transpose", "aten::contiguous", "aten::slice",
    "aten::select",     "aten::unsqueeze", "aten::gelu",      "aten::mean"};

// Ops whose quantized kernel gives a fixed output qparams for a quint8
// input (LibTorch 1.13, every engine): (1/256, 0) for the [0, 1] ranges,
// (2/256, 128) for tanh's [-1, 1]. QuantFusion itself rewrites
// dequantize -> sigmoid -> quantize(1/256, 0) onto the quantized tensor;
// qparams_of needs the table to see through the result.
const std::map<std::string, std::pair<double, double>> kFixedQParamOps = {
    {"aten::sigmoid", {1.0 / 256, 0}}, {"aten::hardsigmoid", {1.0 / 256, 0}}, {"aten::tanh", {2.0 / 256, 128}}};

// The (scale, zero point) a quantized value carries, when known statically.
std::optional<std::pair<double, double>> qparams_of(Value* v, int depth = 0) {
  if (depth > 16) return std::nullopt;
  Node* n = v->node();
  const std::string kind = n->kind().toQualString();
  std::optional<double> s, z;
  if (kind == "aten::quantize_per_tensor" && n->inputs().size() == 4) {
    s = constant_double(n->input(1));
    z = constant_double(n->input(2));
  } else if (kind.rfind("quantized::", 0) == 0 && n->inputs().size() >= 3 &&
             kind.find("prepack") == std::string::npos && kind.find("unpack") == std::string::npos &&
             kind.find("dynamic") == std::string::npos) {
    // Every quantized kernel with a quantized output takes its qparams last:
    // conv2d(_relu), linear(_relu), add(_relu), mul, cat (..., scale,
    // zero_point), hardswish (x, scale, zero_point), layer_norm, batch_norm.
    const std::size_t last = n->inputs().size() - 1;
    s = constant_double(n->input(last - 1));
    z = constant_double(n->input(last));
  } else if (kQParamPreservingOps.count(kind)) {
    return qparams_of(n->input(0), depth + 1);
  } else if (const auto fixed = kFixedQParamOps.find(kind);
             fixed != kFixedQParamOps.end() && n->input(0)->node()->kind() != c10::aten::dequantize) {
    return fixed->second;  // a lowered sigmoid/tanh: its kernel's qparams
  }
  if (s && z) return std::make_pair(*s, *z);
  return std::nullopt;
}

bool same_qparams(const std::pair<double, double>& a, Value* scale, Value* zp) {
  auto s = constant_double(scale);
  auto z = constant_double(zp);
  return s && z && std::abs(*s - a.first) <= 1e-12 * std::max(1.0, std::abs(a.first)) && *z == a.second;
}

// The quantized max_pool2d kernel in 1.13 reads kernel_size, stride,
// padding and dilation as pairs: the float op's one-element (and empty
// stride) forms are written out.
bool expand_pool_arguments(torch::jit::Graph& g, Node* pool) {
  std::vector<std::vector<std::int64_t>> args;
  for (std::size_t i = 1; i <= 4; ++i) {
    auto iv = torch::jit::toIValue(pool->input(i));
    if (!iv || !iv->isIntList()) return false;
    args.push_back(iv->toIntVector());
  }
  if (args[1].empty()) args[1] = args[0];
  torch::jit::WithInsertPoint guard(pool);
  for (std::size_t i = 0; i < 4; ++i) {
    auto& a = args[i];
    if (a.size() == 1) a.push_back(a[0]);
    if (a.size() != 2) return false;
  }
  for (std::size_t i = 0; i < 4; ++i) pool->replaceInput(i + 1, g.insertConstant(args[i]));
  return true;
}

// dequantize(q) -> op -> quantize_per_tensor with the same qparams as q, for
// ops whose quantized form keeps its input's qparams (kQParamPreservingOps):
// op(q) directly.
int lower_qparam_preserving_ops(torch::jit::Graph& g) {
  int lowered = 0;
  for (auto* n : g.nodes()) {
    if (!kQParamPreservingOps.count(n->kind().toQualString())) continue;
    Node* dq = n->input(0)->node();
    if (dq->kind() != c10::aten::dequantize || dq->output()->uses().size() != 1) continue;
    if (n->outputs().size() != 1 || n->output()->uses().size() != 1) continue;
    Node* q = n->output()->uses()[0].user;
    if (q->kind() != c10::aten::quantize_per_tensor || q->inputs().size() != 4) continue;
    auto in = qparams_of(dq->input(0));
    if (!in || !same_qparams(*in, q->input(1), q->input(2))) continue;
    if (n->kind() == c10::aten::max_pool2d && !expand_pool_arguments(g, n)) continue;
    n->replaceInput(0, dq->input(0));
    q->output()->replaceAllUsesWith(n->output());
    ++lowered;
  }
  return lowered;
}

// cat([dequantize(a), dequantize(b), ...], dim) -> quantize_per_tensor(s, zp)
// => quantized::cat([a, b, ...], dim, s, zp). (LibTorch's pattern expects
// one dequantize of a list.)
int lower_cat(torch::jit::Graph& g) {
  int lowered = 0;
  for (auto* n : g.nodes()) {
    if (n->kind() != c10::aten::cat || n->inputs().size() != 2) continue;
    Node* list = n->input(0)->node();
    if (list->kind() != c10::prim::ListConstruct || list->output()->uses().size() != 1) continue;
    if (n->output()->uses().size() != 1) continue;
    Node* q = n->output()->uses()[0].user;
    if (q->kind() != c10::aten::quantize_per_tensor || q->inputs().size() != 4) continue;
    bool all_dequantized = true;
    for (auto* v : list->inputs())
      all_dequantized = all_dequantized && v->node()->kind() == c10::aten::dequantize && v->uses().size() == 1;
    if (!all_dequantized) continue;
    torch::jit::WithInsertPoint guard(q);
    std::vector<Value*> quantized;
    for (auto* v : list->inputs()) quantized.push_back(v->node()->input(0));
    Node* qlist = g.insertNode(g.createList(c10::TensorType::get(), quantized));
    Node* qcat = g.insertNode(g.create(c10::Symbol::fromQualString("quantized::cat"),
                                       {qlist->output(), n->input(1), q->input(1), q->input(2)}));
    qcat->output()->setType(c10::TensorType::get());
    q->output()->replaceAllUsesWith(qcat->output());
    ++lowered;
  }
  return lowered;
}

// Dynamic linear: linear(dequantize(quantize_per_tensor_dynamic(x, u8,
// reduce_range)), dequantize(unpacked weight), bias) with a float output =>
// quantized::linear_dynamic(x, packed, reduce_range), which chooses the
// input's qparams per batch as quantize_per_tensor_dynamic does. (QuantFusion
// knows only the _choose_qparams form.) Runs after InsertPrepackUnpack.
int lower_dynamic_linear(torch::jit::Graph& g) {
  int lowered = 0;
  for (auto* n : g.nodes()) {
    if (n->kind() != c10::aten::linear || n->inputs().size() != 3) continue;
    Node* a_dq = n->input(0)->node();
    Node* w_dq = n->input(1)->node();
    if (a_dq->kind() != c10::aten::dequantize || w_dq->kind() != c10::aten::dequantize) continue;
    Node* a_q = a_dq->input(0)->node();
    if (a_q->kind() != c10::aten::quantize_per_tensor_dynamic || a_q->inputs().size() != 3) continue;
    Node* unpack = w_dq->input(0)->node();
    if (unpack->kind().toQualString() != std::string("quantized::linear_unpack")) continue;
    // The bias as packed with the weight (unpack's second output), or none.
    if (n->input(2) != unpack->output(1) && n->input(2)->type()->kind() != c10::TypeKind::NoneType) continue;
    torch::jit::WithInsertPoint guard(n);
    Node* dyn = g.insertNode(g.create(c10::Symbol::fromQualString("quantized::linear_dynamic"),
                                      {a_q->input(0), unpack->input(0), a_q->input(2)}));
    dyn->output()->setType(n->output()->type());
    n->output()->replaceAllUsesWith(dyn->output());
    ++lowered;
  }
  return lowered;
}

// Float ops still sandwiched between dequantize and quantize. A quantize
// straight after a dequantize is no float op but a requantization between
// two qparams (LibTorch has no quantized-to-quantized requantize op), which
// is counted apart.
std::vector<std::string> float_islands(const torch::jit::Graph& g) {
  std::map<std::string, int> count;
  int requantizations = 0;
  for (const auto* n : g.nodes()) {
    if (n->kind() == c10::prim::Constant || n->kind() == c10::aten::dequantize || n->kind() == c10::prim::ListConstruct)
      continue;
    if (n->kind() == c10::aten::quantize_per_tensor && n->input(0)->node()->kind() == c10::aten::dequantize) {
      ++requantizations;
      continue;
    }
    bool from_dq = false;
    for (const auto* v : n->inputs()) {
      const Node* p = v->node();
      if (p->kind() == c10::prim::ListConstruct)
        for (const auto* w : p->inputs()) from_dq = from_dq || w->node()->kind() == c10::aten::dequantize;
      from_dq = from_dq || p->kind() == c10::aten::dequantize;
    }
    if (from_dq) ++count[n->kind().toQualString()];
  }
  std::vector<std::string> notes;
  for (const auto& [kind, k] : count)
    notes.push_back(kind + " x" + std::to_string(k) + " stays float (dequantize -> " + kind + " -> ...)");
  if (requantizations > 0)
    notes.push_back(std::to_string(requantizations) +
                    " requantizations between differing qparams (dequantize -> quantize_per_tensor)");
  return notes;
}

// Limits of the engines' kernels that the Q/DQ graph cannot show until its
// qparams are known. QNNPACK's add (LibTorch 1.13, qnnpack_add) refuses to
// create its operator unless each input's scale over the output's is in
// [2^-14, 2^8): ConvNeXt's layer scale (1e-6 at init) makes one residual
// operand about 3e-6 of the sum, and the kernel would throw at run time.
struct ScaleRatioLimit {
  const char* kernel;
  double min_ratio, max_ratio;  // input scale / output scale, [min, max)
};
constexpr ScaleRatioLimit kQnnpackAddLimit{"quantized::add", 1.0 / 16384.0, 256.0};

// Adds the engine cannot run stay in reference form, dequantize -> add
// (-> relu) -> quantize_per_tensor, and are named in a note. `dtypes` maps
// each output scale value to the dtype its quantize had before QuantFusion.
std::vector<std::string> restore_out_of_range_adds(torch::jit::Graph& g, const std::map<Value*, Value*>& dtypes) {
  const auto add = c10::Symbol::fromQualString("quantized::add");
  const auto add_relu = c10::Symbol::fromQualString("quantized::add_relu");
  std::vector<Node*> restore;
  double lowest = kQnnpackAddLimit.max_ratio, highest = kQnnpackAddLimit.min_ratio;
  for (auto* n : g.nodes()) {
    if ((n->kind() != add && n->kind() != add_relu) || n->inputs().size() != 4) continue;
    const auto out_scale = constant_double(n->input(2));
    if (!out_scale || *out_scale <= 0) continue;
    bool out_of_range = false;
    for (std::size_t i = 0; i < 2; ++i) {
      const auto in = qparams_of(n->input(i));
      if (!in) continue;
      const double ratio = in->first / *out_scale;
      if (ratio >= kQnnpackAddLimit.min_ratio && ratio < kQnnpackAddLimit.max_ratio) continue;
      out_of_range = true;
      lowest = std::min(lowest, ratio);
      highest = std::max(highest, ratio);
    }
    if (out_of_range) restore.push_back(n);
  }
  std::vector<std::string> notes;
  if (!restore.empty()) {
    std::ostringstream note;
    note << kQnnpackAddLimit.kernel << " x" << restore.size()
         << " kept in reference form (dequantize -> add -> quantize): qnnpack's add takes input-to-output scale "
            "ratios in [2^-14, 2^8) only; these have "
         << lowest;
    if (lowest != highest) note << " to " << highest;
    notes.push_back(note.str());
  }
  for (Node* n : restore) {
    torch::jit::WithInsertPoint guard(n);
    Value* a = g.insertNode(g.create(c10::aten::dequantize, {n->input(0)}))->output();
    Value* b = g.insertNode(g.create(c10::aten::dequantize, {n->input(1)}))->output();
    a->setType(c10::TensorType::get());
    b->setType(c10::TensorType::get());
    Value* sum = g.insertNode(g.create(c10::aten::add, {a, b, g.insertConstant(1)}))->output();
    sum->setType(c10::TensorType::get());
    if (n->kind() == add_relu) {
      sum = g.insertNode(g.create(c10::aten::relu, {sum}))->output();
      sum->setType(c10::TensorType::get());
    }
    const auto dtype = dtypes.find(n->input(2));
    Value* dtype_value = dtype != dtypes.end() ? dtype->second : g.insertConstant(int64_t(at::kQUInt8));
    Node* q = g.insertNode(g.create(c10::aten::quantize_per_tensor, {sum, n->input(2), n->input(3), dtype_value}));
    q->output()->setType(n->output()->type());
    n->output()->replaceAllUsesWith(q->output());
    n->destroy();
  }
  return notes;
}

// Output scale value -> dtype value of every quantize after a float add,
// recorded before QuantFusion replaces them (quantized::add has no dtype).
std::map<Value*, Value*> add_output_dtypes(torch::jit::Graph& g) {
  std::map<Value*, Value*> out;
  for (auto* n : g.nodes())
    if (n->kind() == c10::aten::quantize_per_tensor && n->inputs().size() == 4) {
      const auto producer = n->input(0)->node()->kind();
      if (producer == c10::aten::add || producer == c10::aten::relu) out[n->input(1)] = n->input(3);
    }
  return out;
}

}  // namespace

LoweringReport lower(Graph& graph, Lowering target) {
  LoweringReport report;
  report.ops_before = histogram(graph.ir());
  if (target == Lowering::Reference) {
    report.ops_after = report.ops_before;
    return report;
  }
  EngineGuard engine(target);
  std::shared_ptr<torch::jit::Graph> g = graph.ir_ptr();
  split_dequantize_uses(*g);
  torch::jit::InsertPrepackUnpack(g);
  const auto dtypes = add_output_dtypes(*g);
  torch::jit::QuantFusion(g);
  if (target == Lowering::QNNPACK)
    for (auto& note : restore_out_of_range_adds(*g, dtypes)) report.notes.push_back(std::move(note));
  const int cats = lower_cat(*g);
  const int dynamic_linears = lower_dynamic_linear(*g);
  int preserving = 0;
  for (int k; (k = lower_qparam_preserving_ops(*g)) > 0;) preserving += k;
  torch::jit::EliminateDeadCode(g);
  torch::jit::ConstantPropagation(g);
  torch::jit::EliminateDeadCode(g);
  graph.renumber();

  report.ops_after = histogram(*g);
  for (const auto& [kind, k] : report.ops_after)
    if (kind.rfind("quantized::", 0) == 0) report.lowered_ops += k;
  report.lowered_ops += preserving;
  if (cats > 0) report.notes.push_back("aten::cat x" + std::to_string(cats) + " -> quantized::cat (qsdk pattern)");
  if (dynamic_linears > 0)
    report.notes.push_back("aten::linear x" + std::to_string(dynamic_linears) +
                           " (dynamic input) -> quantized::linear_dynamic (qsdk pattern)");
  if (preserving > 0)
    report.notes.push_back(std::to_string(preserving) +
                           " pooling/relu/view ops run on quantized tensors (qsdk pattern)");
  for (const auto& [kind, k] : report.ops_after)
    if (kind.find("prepack") != std::string::npos)
      report.notes.push_back(kind + " x" + std::to_string(k) + " not folded into a packed-params constant");
  for (auto& n : float_islands(*g)) report.notes.push_back(std::move(n));
  return report;
}

std::vector<at::Tensor> run_with_engine(const Graph& graph, Lowering target, const std::vector<at::Tensor>& inputs) {
  EngineGuard engine(target);
  return graph.run(inputs);
}

double max_difference_in_steps(const at::Tensor& reference_out, const at::Tensor& lowered_out, double output_scale) {
  const auto diff = (reference_out.to(at::kDouble) - lowered_out.to(at::kDouble)).abs().max().item<double>();
  return diff / output_scale;
}

double output_scale(const Graph& graph, std::size_t index) {
  std::vector<Value*> outputs(graph.ir().outputs().begin(), graph.ir().outputs().end());
  if (outputs.size() == 1 && outputs[0]->node()->kind() == c10::prim::TupleConstruct) {
    const auto flat = outputs[0]->node()->inputs();
    outputs.assign(flat.begin(), flat.end());
  }
  if (index >= outputs.size()) return -1;
  Value* v = outputs[index];
  if (v->node()->kind() != c10::aten::dequantize) return -1;
  auto q = qparams_of(v->node()->input(0));
  return q ? q->first : -1;
}

}  // namespace qsdk
