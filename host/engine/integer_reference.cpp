#include "engine/integer_reference.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/operator.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "engine/integer_arithmetic.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Stack;
using torch::jit::Value;

// Scales as the ONNX export stores them: float32.
at::Tensor as_float32(const at::Tensor& scale) { return scale.to(at::kDouble).to(at::kFloat).to(at::kDouble); }

// Floating tensors as float64: integers are exact there, and float32
// constants meet float64 activations.
c10::IValue widened(const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    return t.defined() && t.is_floating_point() ? c10::IValue(t.to(at::kDouble)) : v;
  }
  if (v.isTensorList()) {
    auto list = v.toTensorVector();
    for (auto& t : list)
      if (t.defined() && t.is_floating_point()) t = t.to(at::kDouble);
    return c10::IValue(list);
  }
  return v;
}

// A per-channel vector shaped to broadcast along `axis` of an ndim tensor;
// a single value as a scalar tensor.
at::Tensor along(const at::Tensor& v, std::int64_t ndim, std::int64_t axis) {
  if (v.numel() == 1) return v.reshape({});
  std::vector<std::int64_t> shape(static_cast<std::size_t>(ndim), 1);
  shape[static_cast<std::size_t>(axis)] = -1;
  return v.reshape(shape);
}

std::pair<std::int64_t, std::int64_t> range_of(at::ScalarType quantized) {
  switch (quantized) {
    case at::kQUInt8: return {0, 255};
    case at::kQInt8: return {-128, 127};
    case at::kQInt32: return {std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()};
    default: return {0, 255};
  }
}

double number(const c10::IValue& v) {
  if (v.isTensor()) return v.toTensor().item<double>();
  return v.toScalar().toDouble();
}

bool is_kind(const Node* n, std::initializer_list<c10::Symbol> kinds) {
  for (auto k : kinds)
    if (n->kind() == k) return true;
  return false;
}

class Interpreter {
 public:
  Interpreter(const Graph& graph, const Arithmetic& arithmetic, const std::map<int, at::Tensor>& substitutes)
      : graph_(graph), a_(arithmetic), substitutes_(substitutes) {}

  IntegerReference run(const std::vector<at::Tensor>& inputs) {
    auto& ir = graph_.ir();
    if (inputs.size() != ir.inputs().size())
      throw InputError(graph_.source(), "the integer reference got " + std::to_string(inputs.size()) +
                                            " inputs for a graph of " + std::to_string(ir.inputs().size()));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      env_[ir.inputs()[i]] = inputs[i];
      if (inputs[i].is_quantized()) ints_[ir.inputs()[i]] = from_quantized(inputs[i]);
    }
    for (Node* n : ir.nodes()) step(n);
    IntegerReference out;
    for (const Value* v : ir.outputs()) flatten(env_.at(v), out.outputs);
    out.quantized = std::move(quantized_);
    return out;
  }

 private:
  std::string where(const Node* n) const {
    const std::string& path = graph_.module_path(n);
    return graph_.source() + ": node %" + std::to_string(graph_.id(n)) + " (" + n->kind().toQualString() +
           (path.empty() ? "" : ", " + path) + ")";
  }

  static void flatten(const c10::IValue& v, std::vector<at::Tensor>& out) {
    if (v.isTensor()) {
      at::Tensor t = v.toTensor();
      out.push_back((t.is_quantized() ? t.dequantize() : t).to(at::kDouble));
    } else if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) flatten(e, out);
    } else if (v.isTensorList()) {
      for (const auto& t : v.toTensorVector()) flatten(t, out);
    }
  }

  void step(Node* n) {
    if (n->kind() == c10::prim::Constant) {
      const c10::IValue v = *torch::jit::toIValue(n->output());
      env_[n->output()] = v;
      if (v.isTensor() && v.toTensor().is_quantized()) ints_[n->output()] = from_quantized(v.toTensor());
      return;
    }
    if (!n->blocks().empty())
      throw InputError(where(n), "the integer reference runs straight-line graphs only; this node has blocks");
    if (is_kind(n, {c10::aten::quantize_per_tensor, c10::aten::fake_quantize_per_tensor_affine})) {
      quantize(n);
      return;
    }
    if (n->kind() == c10::aten::dequantize) {
      if (const IntegerTensor* t = find(n->input(0))) {
        env_[n->output()] = dequantize(*t);
        return;
      }
    }
    generic(n);
    // Weights in narrow ranges are fake-quantized per channel: the integers
    // are recovered from the (exact) result.
    if (n->kind() == c10::aten::fake_quantize_per_channel_affine) {
      const at::Tensor out = env_.at(n->output()).toTensor();
      IntegerTensor t;
      t.graph_scale = env_.at(n->input(1)).toTensor().to(at::kDouble);
      t.scale = as_float32(t.graph_scale);
      t.zero_point = env_.at(n->input(2)).toTensor().to(at::kLong);
      t.axis = static_cast<int>(env_.at(n->input(3)).toInt());
      t.quant_min = env_.at(n->input(4)).toInt();
      t.quant_max = env_.at(n->input(5)).toInt();
      const auto ndim = out.dim();
      t.values =
          at::clamp(integer::round(out.to(at::kDouble) / along(t.graph_scale, ndim, *t.axis), Rounding::HalfToEven) +
                        along(t.zero_point, ndim, *t.axis),
                    t.quant_min, t.quant_max);
      t.how = "weight";
      ints_[n->output()] = std::move(t);
    }
  }

  // The quantize nodes upstream of `v` up to the nearest ones: what the op
  // computing `v` read.
  void collect_sources(const Value* v, std::vector<int>& out) const {
    std::vector<const Value*> todo{v};
    std::set<const Value*> seen;
    while (!todo.empty() && seen.size() < 256) {
      const Value* x = todo.back();
      todo.pop_back();
      if (!seen.insert(x).second) continue;
      const Node* p = x->node();
      if (const IntegerTensor* t = find(x); t && t->node >= 0) {
        if (std::find(out.begin(), out.end(), t->node) == out.end()) out.push_back(t->node);
        continue;
      }
      if (p->kind() == c10::prim::Constant || p->kind() == c10::prim::Param) continue;
      for (const Value* in : p->inputs()) todo.push_back(in);
    }
    std::sort(out.begin(), out.end());
  }

  const IntegerTensor* find(const Value* v) const {
    auto it = ints_.find(v);
    return it == ints_.end() ? nullptr : &it->second;
  }
  // The integers behind a float input: a dequantize of a quantized value, or
  // a fake-quantized value itself.
  const IntegerTensor* source(const Value* v) const {
    if (v->node()->kind() == c10::aten::dequantize) return find(v->node()->input(0));
    return find(v);
  }

  static IntegerTensor from_quantized(const at::Tensor& t) {
    IntegerTensor r;
    r.values = t.int_repr().to(at::kLong);
    if (t.qscheme() == at::kPerChannelAffine || t.qscheme() == at::kPerChannelSymmetric ||
        t.qscheme() == at::kPerChannelAffineFloatQParams) {
      r.graph_scale = t.q_per_channel_scales().to(at::kDouble);
      r.zero_point = t.q_per_channel_zero_points().to(at::kLong);
      r.axis = static_cast<int>(t.q_per_channel_axis());
    } else {
      r.graph_scale = at::full({1}, t.q_scale(), at::kDouble);
      r.zero_point = at::full({1}, t.q_zero_point(), at::kLong);
    }
    r.scale = as_float32(r.graph_scale);
    std::tie(r.quant_min, r.quant_max) = range_of(t.scalar_type());
    r.how = "constant";
    return r;
  }

  static at::Tensor centered(const IntegerTensor& t) {
    const auto ndim = t.values.dim();
    return (t.values - along(t.zero_point, ndim, t.axis.value_or(0))).to(at::kDouble);
  }
  static at::Tensor dequantize(const IntegerTensor& t) {
    return centered(t) * along(t.scale, t.values.dim(), t.axis.value_or(0));
  }

  void generic(Node* n) {
    Stack stack;
    for (const Value* in : n->inputs()) stack.push_back(widened(env_.at(in)));
    // The interpreter runs these itself (LibTorch does not export its
    // helpers for them); they have no operator to look up.
    if (n->kind() == c10::prim::ListConstruct) {
      c10::impl::GenericList list(n->output()->type()->expectRef<c10::ListType>().getElementType());
      for (auto& v : stack) list.push_back(std::move(v));
      stack = {c10::IValue(std::move(list))};
    } else if (n->kind() == c10::prim::TupleConstruct) {
      stack = {c10::ivalue::Tuple::create(std::move(stack))};
    } else if (n->kind() == c10::prim::ListUnpack || n->kind() == c10::prim::TupleUnpack) {
      const c10::IValue whole = stack.at(0);
      stack.clear();
      if (whole.isTuple())
        for (const auto& e : whole.toTupleRef().elements()) stack.push_back(e);
      else
        for (const auto& e : whole.toListRef()) stack.push_back(e);
    } else if (n->kind() == c10::prim::ConstantChunk) {
      const auto chunks = stack.at(0).toTensor().chunk(n->i(c10::attr::chunks), n->i(c10::attr::dim));
      stack.clear();
      for (const auto& c : chunks) stack.emplace_back(c);
    } else {
      n->getOperation()(stack);
    }
    for (std::size_t i = 0; i < n->outputs().size(); ++i) env_[n->outputs()[i]] = stack.at(i);
  }

  // Runs node `p` with its first inputs replaced (the rest as computed).
  at::Tensor run_with(Node* p, const std::vector<c10::IValue>& first) {
    Stack stack;
    for (std::size_t i = 0; i < p->inputs().size(); ++i)
      stack.push_back(i < first.size() ? first[i] : widened(env_.at(p->inputs()[i])));
    p->getOperation()(stack);
    return stack.at(0).toTensor();
  }

  void quantize(Node* n) {
    IntegerTensor out;
    const double scale = number(env_.at(n->input(1)));
    const auto zero_point = static_cast<std::int64_t>(number(env_.at(n->input(2))));
    const bool fake = n->kind() == c10::aten::fake_quantize_per_tensor_affine;
    at::ScalarType dtype = at::kQUInt8;
    if (fake) {
      out.quant_min = env_.at(n->input(3)).toInt();
      out.quant_max = env_.at(n->input(4)).toInt();
    } else {
      dtype = env_.at(n->input(3)).toScalarType();
      std::tie(out.quant_min, out.quant_max) = range_of(dtype);
    }
    out.graph_scale = at::full({1}, scale, at::kDouble);
    out.scale = as_float32(out.graph_scale);
    out.zero_point = at::full({1}, zero_point, at::kLong);

    std::optional<at::Tensor> q = accumulated(n->input(0), out);
    if (!q) q = pooled(n->input(0), out);
    if (!q) {
      const at::Tensor v = widened(env_.at(n->input(0))).toTensor();
      q = at::clamp(integer::round(v / out.scale.item<double>(), a_.elementwise_rounding) + zero_point, out.quant_min,
                    out.quant_max);
      out.how = "real arithmetic";
    }
    out.values = *q;
    out.node = graph_.id(n);
    if (out.producer < 0) out.producer = graph_.id(n->input(0)->node());
    collect_sources(n->input(0), out.sources);
    quantized_[out.node] = out;
    // Op by op: what follows reads the other engine's values.
    if (const auto it = substitutes_.find(out.node);
        it != substitutes_.end() && it->second.numel() == out.values.numel())
      out.values = it->second.to(at::kLong).reshape(out.values.sizes());
    if (fake) {
      env_[n->output()] = dequantize(out);
    } else {
      const at::ScalarType storage = dtype == at::kQInt8 ? at::kChar : dtype == at::kQInt32 ? at::kInt : at::kByte;
      env_[n->output()] = at::_make_per_tensor_quantized_tensor(out.values.to(storage), scale, zero_point);
    }
    ints_[n->output()] = std::move(out);
  }

  // conv / linear / matmul / bmm on quantized inputs (through one fused
  // relu, clamp or hardtanh): the integer accumulator, requantized as
  // declared. nullopt when `x` is not such an op.
  std::optional<at::Tensor> accumulated(Value* x, IntegerTensor& out) {
    Node* p = x->node();
    bool relu = false;
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    auto bound = [&](const Value* v, double fallback) {
      const c10::IValue& b = env_.at(v);
      return b.isNone() ? fallback : number(b);
    };
    if (is_kind(p, {c10::aten::relu, c10::aten::relu_})) {
      relu = true;
      p = p->input(0)->node();
    } else if (is_kind(p, {c10::aten::hardtanh, c10::aten::hardtanh_, c10::aten::clamp, c10::aten::clamp_})) {
      lo = bound(p->input(1), lo);
      hi = bound(p->input(2), hi);
      p = p->input(0)->node();
    } else if (is_kind(p, {c10::aten::relu6, c10::aten::relu6_})) {
      lo = 0;
      hi = 6;
      p = p->input(0)->node();
    }
    const bool conv = is_kind(p, {c10::aten::conv1d, c10::aten::conv2d, c10::aten::conv3d});
    const bool linear = p->kind() == c10::aten::linear;
    const bool product = is_kind(p, {c10::aten::matmul, c10::aten::bmm});
    if (!conv && !linear && !product) return std::nullopt;
    const IntegerTensor* in = source(p->input(0));
    const IntegerTensor* w = source(p->input(1));
    if (!in || !w || in->axis || (product && w->axis)) return std::nullopt;

    // The bias in steps of input scale x weight scale, as convert rounded it
    // (a float bias that is not whole steps: no integer form).
    at::Tensor bias_steps;
    const bool has_bias_input = (conv || linear) && p->inputs().size() > 2;
    if (has_bias_input) {
      const c10::IValue& b = env_.at(p->input(2));
      if (b.isTensor() && b.toTensor().defined()) {
        const at::Tensor k = b.toTensor().to(at::kDouble) / (w->graph_scale * in->graph_scale);
        const at::Tensor whole = k.round();
        if ((k - whole).abs().gt(1e-3 + whole.abs() * 2.5e-7).any().item<bool>()) return std::nullopt;
        bias_steps = whole.to(at::kLong);
      }
    }
    std::vector<c10::IValue> first{centered(*in), centered(*w)};
    if (has_bias_input) first.emplace_back();                      // None: the bias is added on the integers
    at::Tensor acc = at::round(run_with(p, first)).to(at::kLong);  // whole numbers, exact in float64
    const std::int64_t channel_dim = conv ? 1 : acc.dim() - 1;
    if (bias_steps.defined()) acc = acc + along(bias_steps, acc.dim(), channel_dim);
    acc = integer::limit_accumulator(acc, a_);
    const at::Tensor multiplier = along(w->scale * in->scale / out.scale, acc.dim(), channel_dim);
    const std::int64_t zp = out.zero_point.item<std::int64_t>();
    const double s = out.scale.item<double>();
    std::int64_t lower = out.quant_min, upper = out.quant_max;
    if (relu) lower = std::max(lower, zp);
    auto level = [&](double v) {
      return zp + integer::round(at::full({}, v / s, at::kDouble), a_.elementwise_rounding).item<std::int64_t>();
    };
    if (std::isfinite(lo)) lower = std::max(lower, level(lo));
    if (std::isfinite(hi)) upper = std::min(upper, level(hi));
    out.how = std::string(p->kind().toUnqualString()) + " (integer accumulator)";
    out.producer = graph_.id(p);
    return at::clamp(integer::requantize(acc, multiplier, a_) + zp, lower, std::max(lower, upper));
  }

  // Average pooling and mean of a quantized input: the mean of the
  // integers, rounded as declared.
  std::optional<at::Tensor> pooled(Value* x, IntegerTensor& out) {
    Node* p = x->node();
    if (!is_kind(p,
                 {c10::aten::avg_pool1d, c10::aten::avg_pool2d, c10::aten::avg_pool3d, c10::aten::adaptive_avg_pool1d,
                  c10::aten::adaptive_avg_pool2d, c10::aten::adaptive_avg_pool3d, c10::aten::mean}))
      return std::nullopt;
    const IntegerTensor* in = source(p->input(0));
    if (!in || in->axis) return std::nullopt;
    at::Tensor mean = run_with(p, {centered(*in)});
    const double ratio = in->scale.item<double>() / out.scale.item<double>();
    if (ratio != 1) mean = mean * ratio;
    out.how = std::string(p->kind().toUnqualString()) + " (integer mean)";
    out.producer = graph_.id(p);
    return at::clamp(integer::round(mean, a_.pooling_rounding) + out.zero_point.item<std::int64_t>(), out.quant_min,
                     out.quant_max);
  }

  const Graph& graph_;
  const Arithmetic& a_;
  const std::map<int, at::Tensor>& substitutes_;
  std::unordered_map<const Value*, c10::IValue> env_;
  std::unordered_map<const Value*, IntegerTensor> ints_;
  std::map<int, IntegerTensor> quantized_;
};

}  // namespace

IntegerReference run_integer_reference(const Graph& reference, const Arithmetic& arithmetic,
                                       const std::vector<at::Tensor>& inputs,
                                       const std::map<int, at::Tensor>& substitutes) {
  c10::InferenceMode guard;
  return Interpreter(reference, arithmetic, substitutes).run(inputs);
}

}  // namespace qsdk
