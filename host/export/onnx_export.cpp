#include "export/onnx_export.h"

#include <ATen/ATen.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/csrc/jit/ir/ir.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "graph/graph.h"
#include "qsdk/version.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

int bits_for(std::int64_t lo, std::int64_t hi) {
  int bits = 0;
  while ((std::int64_t{1} << bits) < hi - lo + 1) ++bits;
  return bits;
}

onnx::TensorProto_DataType onnx_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
    case at::kDouble: return onnx::TensorProto_DataType_FLOAT;
    case at::kChar:
    case at::kQInt8: return onnx::TensorProto_DataType_INT8;
    case at::kByte:
    case at::kQUInt8: return onnx::TensorProto_DataType_UINT8;
    case at::kInt:
    case at::kQInt32: return onnx::TensorProto_DataType_INT32;
    case at::kLong: return onnx::TensorProto_DataType_INT64;
    case at::kBool: return onnx::TensorProto_DataType_BOOL;
    default: return onnx::TensorProto_DataType_UNDEFINED;
  }
}

const char* onnx_type_name(onnx::TensorProto_DataType t) {
  switch (t) {
    case onnx::TensorProto_DataType_INT8: return "int8";
    case onnx::TensorProto_DataType_UINT8: return "uint8";
    case onnx::TensorProto_DataType_INT32: return "int32";
    default: return "float32";
  }
}

// The quantization a QuantizeLinear (or a weight's DequantizeLinear) uses:
// its scale and zero-point initializers, for the DequantizeLinear after it.
struct QdqParams {
  std::string scale, zero_point;
  std::optional<int> axis;
  std::string source;  // the float tensor quantized
};

// Builds the ONNX graph node by node from the reference graph.
class OnnxWriter {
 public:
  OnnxWriter(const Graph& reference, const std::vector<QuantizedTensor>& quantized, bool batch_symbolic)
      : ref_(reference), batch_symbolic_(batch_symbolic) {
    for (const auto& q : quantized) quantized_by_node_[q.node] = q;
    model_.set_ir_version(8);
    model_.set_producer_name("qsdk");
    model_.set_producer_version(kVersion);
    auto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOnnxOpset);
    g_ = model_.mutable_graph();
    g_->set_name("qsdk_quantized_model");
  }

  OnnxModel write() {
    add_inputs();
    for (Node* n : ref_.ir().nodes()) convert_node(n);
    add_outputs();
    OnnxModel out;
    if (shape_folded_) {
      // Sizes folded from the captured shapes hold for the captured batch only.
      out.fixed_batch = true;
      for (auto* list : {g_->mutable_input(), g_->mutable_output()})
        for (auto& info : *list)
          for (auto& d : *info.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim())
            if (d.has_dim_param()) d.set_dim_value(fixed_batch_size_);
    }
    try {
      // Shapes first: they fill in the outputs' shapes the reference's types do not say.
      onnx::shape_inference::InferShapes(model_, onnx::OpSchemaRegistry::Instance(), {true, 1, false});
      model_.SerializeToString(&out.bytes);
      check_onnx_model(out.bytes, "exported ONNX model");
    } catch (const InputError& e) {
      // The exporter wrote something the checker refuses: a qsdk bug, not the user's.
      throw std::logic_error(std::string("ONNX export produced an invalid model: ") + e.cause());
    } catch (const onnx::InferenceError& e) {
      throw std::logic_error(std::string("ONNX export produced an invalid model: shape inference: ") + e.what());
    }
    out.nodes = g_->node_size();
    for (const auto& n : g_->node()) {
      out.quantize_linear += n.op_type() == "QuantizeLinear";
      out.dequantize_linear += n.op_type() == "DequantizeLinear";
    }
    out.input_names = input_names_;
    out.output_names = output_names_;
    out.quantized = std::move(encodings_);
    out.ops = std::move(ops_);
    return out;
  }

 private:
  // --- names and where ---------------------------------------------------
  // Tensor names and node names are separate namespaces in ONNX.
  std::string unique(std::string base, std::set<std::string>* used = nullptr) {
    if (!used) used = &used_;
    for (auto& c : base)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '/' && c != ':') c = '_';
    std::string name = base;
    for (int k = 1; used->count(name); ++k) name = base + "_" + std::to_string(k);
    used->insert(name);
    return name;
  }

  std::string where(const Node* n) const {
    const std::string& path = ref_.module_path(n);
    return "node %" + std::to_string(ref_.id(n)) + " (" + n->kind().toQualString() + (path.empty() ? "" : ", " + path) +
           ")";
  }

  // "layer1.0.conv1/conv2d_12": the module path, the op, the node id; Q/DQ
  // nodes are named after the tensor they quantize.
  std::string base_name(const Node* n) const {
    if (auto it = base_override_.find(n); it != base_override_.end()) return it->second;
    std::string op = n->kind().toUnqualString();
    const std::string& path = ref_.module_path(n);
    return (path.empty() ? "" : path + "/") + op + "_" + std::to_string(ref_.id(n));
  }

  [[noreturn]] void fail(const Node* n, const std::string& cause) const {
    throw InputError(ref_.source() + ": " + where(n), cause);
  }

  // --- constants -----------------------------------------------------------
  // Only prim::Constant: toIValue also answers for some computed values.
  std::optional<c10::IValue> constant(const Value* v) const {
    if (v->node()->kind() != c10::prim::Constant) return std::nullopt;
    return torch::jit::toIValue(v);
  }

  c10::IValue constant_arg(const Node* n, std::size_t i) const {
    auto iv = constant(n->input(i));
    if (!iv) fail(n, "argument " + std::to_string(i) + " is not a constant; the ONNX export needs it fixed");
    return *iv;
  }
  // A number the graph computes from constants and known shapes (traced
  // models compute view sizes with aten::size -> NumToTensor -> mul -> Int):
  // folded here, as the shapes are fixed by capture.
  std::optional<double> static_scalar(const Value* v) const {
    if (auto iv = constant(v)) {
      if (iv->isInt() || iv->isDouble()) return iv->toScalar().toDouble();
      if (iv->isTensor() && iv->toTensor().dim() == 0 && !iv->toTensor().is_quantized())
        return iv->toTensor().item<double>();
      return std::nullopt;
    }
    const Node* p = v->node();
    const std::string kind = p->kind().toQualString();
    if (kind == "aten::size" && p->inputs().size() == 2) {
      const auto shape = shape_of(p->input(0));
      const auto d = static_scalar(p->input(1));
      if (std::getenv("QSDK_DEBUG_SIZE"))
        fprintf(stderr, "size: shape %d dim %d type %s\n", bool(shape), bool(d),
                through_qdq(p->input(0))->type()->str().c_str());
      if (!shape || !d) return std::nullopt;
      shape_folded_ = true;
      auto i = static_cast<std::int64_t>(*d);
      if (i < 0) i += static_cast<std::int64_t>(shape->size());
      if (i < 0 || i >= static_cast<std::int64_t>(shape->size())) return std::nullopt;
      return double((*shape)[static_cast<std::size_t>(i)]);
    }
    if (kind == "prim::NumToTensor" || kind == "aten::Int" || kind == "aten::Float" || kind == "aten::ScalarImplicit")
      return static_scalar(p->input(0));
    static const std::set<std::string> kArithmetic{"aten::mul", "aten::add",      "aten::sub",
                                                   "aten::div", "aten::floordiv", "aten::floor_divide"};
    if (kArithmetic.count(kind) && p->inputs().size() >= 2) {
      if (kind != "aten::div" && kind != "aten::floordiv" && p->output()->type()->cast<c10::TensorType>() &&
          !is_scalar_tensor(p->output()))
        return std::nullopt;
      const auto a = static_scalar(p->input(0)), b = static_scalar(p->input(1));
      if (!a || !b) return std::nullopt;
      if (kind == "aten::mul") return *a * *b;
      if (kind == "aten::add") return *a + *b;
      if (kind == "aten::sub") return *a - *b;
      if (*b == 0) return std::nullopt;
      if (kind == "aten::div") return *a / *b;
      return std::floor(*a / *b);
    }
    return std::nullopt;
  }
  // A 0-d tensor (NumToTensor arithmetic), as far as the types say.
  bool is_scalar_tensor(const Value* v) const {
    const auto t = v->type()->cast<c10::TensorType>();
    return t && t->dim() && *t->dim() == 0;
  }

  std::int64_t int_arg(const Node* n, std::size_t i) const {
    if (auto v = static_scalar(n->input(i)); v && !constant(n->input(i))) return static_cast<std::int64_t>(*v);
    return constant_arg(n, i).toInt();
  }
  double double_arg(const Node* n, std::size_t i) const { return constant_arg(n, i).toScalar().toDouble(); }
  bool bool_arg(const Node* n, std::size_t i) const { return constant_arg(n, i).toBool(); }
  bool is_none(const Node* n, std::size_t i) const {
    auto iv = constant(n->input(i));
    return iv && iv->isNone();
  }
  std::vector<std::int64_t> ints_arg(const Node* n, std::size_t i) const {
    const Node* list = n->input(i)->node();
    if (list->kind() == c10::prim::ListConstruct) {
      std::vector<std::int64_t> out;
      for (const Value* e : list->inputs()) {
        const auto v = static_scalar(e);
        if (!v)
          fail(n, "argument " + std::to_string(i) + " is a list computed at run time; the ONNX export needs it fixed");
        out.push_back(static_cast<std::int64_t>(*v));
      }
      return out;
    }
    const c10::IValue iv = constant_arg(n, i);
    if (iv.isInt()) return {iv.toInt()};
    return iv.toIntVector();
  }

  std::string initializer(const at::Tensor& tensor, const std::string& base) {
    at::Tensor t = tensor.is_quantized() ? tensor.int_repr() : tensor;
    if (t.scalar_type() == at::kDouble) t = t.to(at::kFloat);
    t = t.contiguous().cpu();
    auto* p = g_->add_initializer();
    p->set_name(unique(base));
    p->set_data_type(onnx_type(t.scalar_type()));
    for (auto d : t.sizes()) p->add_dims(d);
    p->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
    return p->name();
  }
  std::string scalar_initializer(double value, const std::string& base) {
    return initializer(at::full({}, value, at::kFloat), base);
  }
  std::string ints_initializer(const std::vector<std::int64_t>& values, const std::string& base) {
    return initializer(at::tensor(values, at::kLong), base);
  }

  // The ONNX name of `v`; constants become initializers on first use.
  std::string name_of(const Value* v, const Node* user) {
    if (auto it = names_.find(v); it != names_.end()) return it->second;
    if (auto it = deferred_weights_.find(v); it != deferred_weights_.end()) return emit_weight(v, false);
    if (auto iv = constant(v); iv && iv->isTensor())
      return names_[v] = initializer(iv->toTensor(), base_name(user) + ".const");
    if (auto sv = static_scalar(v)) return names_[v] = scalar_initializer(*sv, base_name(user) + ".scalar");
    fail(user, std::string("input '") + v->debugName() + "' (from " + v->node()->kind().toQualString() +
                   ") has no ONNX form");
  }

  // --- emitting ------------------------------------------------------------
  onnx::NodeProto* emit(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name) {
    auto* p = g_->add_node();
    p->set_op_type(op_type);
    p->set_name(unique(name, &used_node_names_));
    for (const auto& i : inputs) p->add_input(i);
    for (const auto& o : outputs) p->add_output(o);
    return p;
  }
  static void attr(onnx::NodeProto* p, const std::string& name, std::int64_t v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* p, const std::string& name, float v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* p, const std::string& name, const std::string& v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_STRING);
    a->set_s(v);
  }
  static void attr(onnx::NodeProto* p, const std::string& name, const std::vector<std::int64_t>& v) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    for (auto x : v) a->add_ints(x);
  }

  // One ONNX node for aten node `n`, its output named after `n`.
  onnx::NodeProto* emit_for(const Node* n, const std::string& op_type, const std::vector<std::string>& inputs) {
    const std::string out = unique(base_name(n));
    names_[n->output(0)] = out;
    auto* p = emit(op_type, inputs, {out}, base_name(n));
    record_op(n, p->name(), op_type);
    return p;
  }
  void record_op(const Node* n, const std::string& node_name, const std::string& op_type) {
    ops_.push_back({node_name, op_type, ref_.id(n), n->kind().toQualString(), ref_.module_path(n)});
  }
  // A temporary tensor name for a chain of nodes that stands for `n`.
  std::string temp(const Node* n, const std::string& what) { return unique(base_name(n) + "." + what); }

  // --- graph inputs and outputs --------------------------------------------
  onnx::ValueInfoProto value_info(const std::string& name, const Value* v) const {
    onnx::ValueInfoProto info;
    info.set_name(name);
    auto* tensor = info.mutable_type()->mutable_tensor_type();
    const auto type = v->type()->cast<c10::TensorType>();
    tensor->set_elem_type(type && type->scalarType() ? onnx_type(*type->scalarType())
                                                     : onnx::TensorProto_DataType_FLOAT);
    if (const auto shape = shape_of(v)) {
      auto* dims = tensor->mutable_shape();
      for (std::size_t i = 0; i < shape->size(); ++i) {
        auto* d = dims->add_dim();
        if (i == 0) fixed_batch_size_ = (*shape)[0];
        if (i == 0 && batch_symbolic_ && shape->size() > 1)
          d->set_dim_param("batch");
        else
          d->set_dim_value((*shape)[i]);
      }
    }
    return info;
  }

  void add_inputs() {
    const auto inputs = ref_.ir().inputs();
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Value* v = inputs[i];
      if (!v->type()->cast<c10::TensorType>())
        throw InputError(ref_.source(), "input " + std::to_string(i) + " is not a tensor; ONNX export needs tensors");
      const std::string name = unique(inputs.size() == 1 ? "input" : "input_" + std::to_string(i));
      names_[v] = name;
      *g_->add_input() = value_info(name, v);
      input_names_.push_back(name);
    }
  }

  void add_outputs() {
    std::vector<const Value*> outputs;
    for (const Value* v : ref_.ir().outputs()) {
      if (v->node()->kind() == c10::prim::TupleConstruct)
        for (const Value* e : v->node()->inputs()) outputs.push_back(e);
      else
        outputs.push_back(v);
    }
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const std::string name = unique(outputs.size() == 1 ? "output" : "output_" + std::to_string(i));
      // An Identity per output: clean names, and an output may be an input or repeated.
      emit("Identity", {name_of(outputs[i], outputs[i]->node())}, {name}, name);
      *g_->add_output() = value_info(name, outputs[i]);
      output_names_.push_back(name);
    }
  }

  // --- quantization ----------------------------------------------------------
  const QuantizedTensor* recorded(const Node* n) const {
    auto it = quantized_by_node_.find(ref_.id(n));
    return it == quantized_by_node_.end() ? nullptr : &it->second;
  }

  void record_encoding(OnnxQuantizedTensor e, const Node* n) {
    if (const QuantizedTensor* q = recorded(n)) {
      e.kind = q->kind;
      e.symmetric = q->symmetric;
      e.quant_min = q->quant_min;
      e.quant_max = q->quant_max;
      e.source = q->label;
    }
    e.bitwidth = bits_for(e.quant_min, e.quant_max);
    e.reference_node = ref_.id(n);
    encodings_.push_back(std::move(e));
  }

  // Scale and zero point as initializers of the types QuantizeLinear takes.
  QdqParams qdq_params(const at::Tensor& scale, const at::Tensor& zero_point, onnx::TensorProto_DataType dtype,
                       const std::string& base, std::optional<int> axis) {
    const auto storage = dtype == onnx::TensorProto_DataType_INT8    ? at::kChar
                         : dtype == onnx::TensorProto_DataType_UINT8 ? at::kByte
                                                                     : at::kInt;
    return {initializer(scale.to(at::kFloat), base + ".scale"),
            initializer(zero_point.to(storage), base + ".zero_point"), axis, ""};
  }

  std::vector<double> float_values(const at::Tensor& t) const {
    const at::Tensor f = t.to(at::kFloat).to(at::kDouble).contiguous().reshape({-1});
    return {f.data_ptr<double>(), f.data_ptr<double>() + f.numel()};
  }
  std::vector<std::int64_t> int_values(const at::Tensor& t) const {
    const at::Tensor f = t.to(at::kLong).contiguous().reshape({-1});
    return {f.data_ptr<std::int64_t>(), f.data_ptr<std::int64_t>() + f.numel()};
  }

  // aten::quantize_per_tensor(x, scale, zero_point, dtype) -> QuantizeLinear.
  void quantize(const Node* n) {
    const double scale = double_arg(n, 1);
    const std::int64_t zp = int_arg(n, 2);
    const auto qdtype = static_cast<at::ScalarType>(int_arg(n, 3));
    const auto dtype = onnx_type(qdtype);
    if (dtype != onnx::TensorProto_DataType_INT8 && dtype != onnx::TensorProto_DataType_UINT8)
      fail(n, std::string("quantized dtype ") + c10::toString(qdtype) + " has no opset-17 QuantizeLinear");
    const std::string x = name_of(n->input(0), n);
    base_override_[n] = x + "_quantized";
    QdqParams p =
        qdq_params(at::full({}, scale, at::kDouble), at::full({}, zp, at::kLong), dtype, base_name(n), std::nullopt);
    p.source = x;
    emit_for(n, "QuantizeLinear", {x, p.scale, p.zero_point});
    qdq_[n->output(0)] = p;
    OnnxQuantizedTensor e{x,     names_[n->output(0)],   "activation", onnx_type_name(dtype), 0, 0, 8,
                          false, {double(float(scale))}, {zp},         std::nullopt,          ""};
    e.quant_min = dtype == onnx::TensorProto_DataType_INT8 ? -128 : 0;
    e.quant_max = dtype == onnx::TensorProto_DataType_INT8 ? 127 : 255;
    record_encoding(std::move(e), n);
  }

  // fake_quantize_per_{tensor,channel}_affine: a range narrower than int8/uint8
  // (4-bit, reduce_range) as QuantizeLinear -> Clip to the range -> DequantizeLinear.
  void fake_quantize(const Node* n, bool per_channel) {
    at::Tensor scale, zp;
    std::optional<int> axis;
    std::size_t lo_index = 3;
    if (per_channel) {
      scale = constant_arg(n, 1).toTensor();
      zp = constant_arg(n, 2).toTensor();
      axis = static_cast<int>(int_arg(n, 3));
      lo_index = 4;
    } else {
      scale = at::full({}, double_arg(n, 1), at::kDouble);
      zp = at::full({}, int_arg(n, 2), at::kLong);
    }
    const std::int64_t lo = int_arg(n, lo_index), hi = int_arg(n, lo_index + 1);
    onnx::TensorProto_DataType dtype;
    if (lo >= 0 && hi <= 255)
      dtype = onnx::TensorProto_DataType_UINT8;
    else if (lo >= -128 && hi <= 127)
      dtype = onnx::TensorProto_DataType_INT8;
    else
      fail(n, "the range " + std::to_string(lo) + ".." + std::to_string(hi) +
                  " needs more than 8 bits; opset 17 QuantizeLinear has only int8 and uint8");
    const std::string x = name_of(n->input(0), n);
    base_override_[n] = x + "_fake_quantized";
    const QdqParams p = qdq_params(scale, zp, dtype, base_name(n), axis);
    const std::string q = temp(n, "q"), clipped = temp(n, "clipped");
    auto* qn = emit("QuantizeLinear", {x, p.scale, p.zero_point}, {q}, base_name(n) + ".quantize");
    if (axis) attr(qn, "axis", std::int64_t{*axis});
    const auto storage = dtype == onnx::TensorProto_DataType_INT8 ? at::kChar : at::kByte;
    const std::string lo_name = initializer(at::full({}, lo, storage), base_name(n) + ".quant_min");
    const std::string hi_name = initializer(at::full({}, hi, storage), base_name(n) + ".quant_max");
    emit("Clip", {q, lo_name, hi_name}, {clipped}, base_name(n) + ".clip");
    const std::string out = unique(base_name(n));
    auto* dq = emit("DequantizeLinear", {clipped, p.scale, p.zero_point}, {out}, base_name(n) + ".dequantize");
    if (axis) attr(dq, "axis", std::int64_t{*axis});
    names_[n->output(0)] = out;
    record_op(n, qn->name(), "QuantizeLinear+Clip+DequantizeLinear");
    OnnxQuantizedTensor e{x, clipped, "activation",        onnx_type_name(dtype), lo,   hi,
                          8, false,   float_values(scale), int_values(zp),        axis, ""};
    record_encoding(std::move(e), n);
  }

  // aten::quantize_per_tensor_dynamic(x, dtype, reduce_range) -> DynamicQuantizeLinear.
  void quantize_dynamic(const Node* n) {
    const auto qdtype = static_cast<at::ScalarType>(int_arg(n, 1));
    if (qdtype != at::kQUInt8 || bool_arg(n, 2))
      fail(n, "ONNX DynamicQuantizeLinear is uint8 over the full 0..255 range only; this spec asks for " +
                  std::string(c10::toString(qdtype)) + (bool_arg(n, 2) ? " with reduce_range" : ""));
    const std::string x = name_of(n->input(0), n);
    base_override_[n] = x + "_dynamic_quantized";
    const std::string y = unique(base_name(n)), s = temp(n, "scale"), zp = temp(n, "zero_point");
    auto* p = emit("DynamicQuantizeLinear", {x}, {y, s, zp}, base_name(n));
    record_op(n, p->name(), "DynamicQuantizeLinear");
    names_[n->output(0)] = y;
    qdq_[n->output(0)] = {s, zp, std::nullopt, ""};
  }

  // aten::dequantize of a quantize (activation) or of a quantized constant (weight).
  void dequantize(const Node* n) {
    const Value* q = n->input(0);
    if (auto it = qdq_.find(q); it != qdq_.end()) {
      if (!it->second.source.empty()) base_override_[n] = it->second.source + "_dequantized";
      auto* p = emit_for(n, "DequantizeLinear", {names_.at(q), it->second.scale, it->second.zero_point});
      if (it->second.axis) attr(p, "axis", std::int64_t{*it->second.axis});
      return;
    }
    if (auto iv = constant(q); iv && iv->isTensor() && iv->toTensor().is_quantized()) {
      const auto uses = n->output()->uses();
      if (!uses.empty()) base_override_[n] = base_name(uses.front().user) + ".weight";
      deferred_weights_[n->output(0)] = n;  // emitted where used: a MatMul wants it transposed
      return;
    }
    fail(n, std::string("dequantize of ") + q->node()->kind().toQualString() + " has no ONNX form");
  }

  // A quantized weight constant -> int8 initializer -> DequantizeLinear;
  // `transpose` stores it transposed (linear as MatMul).
  std::string emit_weight(const Value* dq_value, bool transpose) {
    const Node* n = deferred_weights_.at(dq_value);
    if (!transpose)
      if (auto it = names_.find(dq_value); it != names_.end()) return it->second;
    const at::Tensor w = constant(n->input(0))->toTensor();
    at::Tensor ints = w.int_repr();
    std::optional<int> axis;
    at::Tensor scale, zp;
    if (w.qscheme() == at::kPerChannelAffine || w.qscheme() == at::kPerChannelSymmetric) {
      axis = static_cast<int>(w.q_per_channel_axis());
      scale = w.q_per_channel_scales();
      zp = w.q_per_channel_zero_points();
    } else {
      scale = at::full({}, w.q_scale(), at::kDouble);
      zp = at::full({}, w.q_zero_point(), at::kLong);
    }
    if (transpose) {
      ints = ints.t();
      if (axis) axis = 1 - *axis;
    }
    const auto dtype = onnx_type(w.scalar_type());
    const std::string base = base_name(n) + (transpose ? ".transposed" : "");
    const std::string values = initializer(ints, base + "_quantized");
    const QdqParams p = qdq_params(scale, zp, dtype, base, axis);
    const std::string out = unique(base);
    auto* dq = emit("DequantizeLinear", {values, p.scale, p.zero_point}, {out}, base);
    if (axis) attr(dq, "axis", std::int64_t{*axis});
    if (!transpose) names_[dq_value] = out;
    OnnxQuantizedTensor e{values,         values, "weight", onnx_type_name(dtype), 0, 0, 8, false, float_values(scale),
                          int_values(zp), axis,   ""};
    e.quant_min = dtype == onnx::TensorProto_DataType_INT8 ? -128 : 0;
    e.quant_max = dtype == onnx::TensorProto_DataType_INT8 ? 127 : 255;
    record_encoding(std::move(e), n);
    return out;
  }

  // The scale an activation input was quantized with, when the reference
  // shows it (dequantize of quantize, or a per-tensor fake_quantize).
  std::optional<double> activation_scale(const Value* v) const {
    const Node* p = v->node();
    if (p->kind() == c10::aten::dequantize) p = p->input(0)->node();
    if (p->kind() != c10::aten::quantize_per_tensor && p->kind() != c10::aten::fake_quantize_per_tensor_affine)
      return std::nullopt;
    auto s = constant(p->input(1));
    if (!s || !(s->isDouble() || s->isInt())) return std::nullopt;
    return s->toScalar().toDouble();
  }

  // The weight's scales when it is a quantized constant behind dequantize.
  std::optional<at::Tensor> weight_scales(const Value* v) const {
    if (v->node()->kind() != c10::aten::dequantize) return std::nullopt;
    auto w = constant(v->node()->input(0));
    if (!w || !w->isTensor() || !w->toTensor().is_quantized()) return std::nullopt;
    const at::Tensor t = w->toTensor();
    if (t.qscheme() == at::kPerChannelAffine || t.qscheme() == at::kPerChannelSymmetric)
      return t.q_per_channel_scales().to(at::kDouble);
    return at::full({1}, t.q_scale(), at::kDouble);
  }

  // A conv/linear bias: int32 behind DequantizeLinear when convert rounded it
  // to steps of input scale x weight scale (a derived spec), else float.
  std::string bias(const Node* n, std::size_t index, std::size_t input_index, std::size_t weight_index) {
    const Value* b = n->input(index);
    auto iv = constant(b);
    if (!iv || !iv->isTensor()) return name_of(b, n);
    const auto s_in = activation_scale(n->input(input_index));
    const auto s_w = weight_scales(n->input(weight_index));
    if (!s_in || !s_w) return name_of(b, n);
    const at::Tensor values = iv->toTensor().to(at::kDouble);
    // Integral in steps of the double product, as convert rounded it; the
    // file stores the step in float32.
    const at::Tensor step = *s_w * *s_in;
    const at::Tensor k = values / step;
    const at::Tensor ints = k.round();
    // Convert stored q x step in float32: allow its rounding, relative to |q|.
    const at::Tensor slack = 1e-3 + ints.abs() * 2.5e-7;
    if ((k - ints).abs().gt(slack).any().item<bool>() || ints.abs().max().item<double>() > 2147483647.0) {
      return name_of(b, n);
    }
    const bool per_channel = s_w->numel() > 1;
    const at::Tensor scale = per_channel ? step : step.reshape({});
    const std::string base = base_name(n) + ".bias";
    const std::string stored = initializer(ints.to(at::kInt), base + "_quantized");
    const QdqParams p = qdq_params(scale, at::zeros_like(scale, at::kLong), onnx::TensorProto_DataType_INT32, base,
                                   per_channel ? std::optional<int>(0) : std::nullopt);
    const std::string out = unique(base);
    auto* dq = emit("DequantizeLinear", {stored, p.scale, p.zero_point}, {out}, base);
    if (per_channel) attr(dq, "axis", std::int64_t{0});
    OnnxQuantizedTensor e{stored,
                          stored,
                          "bias",
                          "int32",
                          -2147483648LL,
                          2147483647LL,
                          32,
                          true,
                          float_values(scale),
                          int_values(at::zeros_like(scale, at::kLong)),
                          per_channel ? std::optional<int>(0) : std::nullopt,
                          "bias of " + where(n)};
    encodings_.push_back(std::move(e));
    return out;
  }

  // --- float ops -------------------------------------------------------------
  // A value's shape: of the constant (convert's constants carry no complete
  // type), of the weight behind a dequantize, or from the graph's types.
  std::optional<std::vector<std::int64_t>> shape_of(const Value* v) const {
    if (auto iv = constant(v); iv && iv->isTensor()) return iv->toTensor().sizes().vec();
    if (v->node()->kind() == c10::aten::dequantize)
      if (auto iv = constant(v->node()->input(0)); iv && iv->isTensor()) return iv->toTensor().sizes().vec();
    return concrete_shape(through_qdq(v));
  }

  // The value a Q/DQ chain stands for: convert's new nodes carry no shapes,
  // the captured value they quantize does.
  static const Value* through_qdq(const Value* v) {
    static const std::set<std::string> kQdq{
        "aten::quantize_per_tensor", "aten::dequantize", "aten::fake_quantize_per_tensor_affine",
        "aten::fake_quantize_per_channel_affine", "aten::quantize_per_tensor_dynamic"};
    while (kQdq.count(v->node()->kind().toQualString())) v = v->node()->input(0);
    return v;
  }

  std::int64_t rank_of(const Value* v, const Node* n) const {
    const auto t = through_qdq(v)->type()->cast<c10::TensorType>();
    if (!t || !t->dim()) fail(n, "the rank of its input is unknown");
    return static_cast<std::int64_t>(*t->dim());
  }

  // conv1d/2d/3d and the transposed forms: Conv / ConvTranspose.
  void conv(const Node* n, bool transposed, std::size_t stride_i, std::size_t pad_i, std::size_t dilation_i,
            std::size_t groups_i, std::optional<std::size_t> output_padding_i) {
    const std::string x = name_of(n->input(0), n);
    const std::string w = name_of(n->input(1), n);
    std::vector<std::string> inputs{x, w};
    if (!is_none(n, 2)) inputs.push_back(bias(n, 2, 0, 1));
    const auto wshape = shape_of(n->input(1));
    if (!wshape) fail(n, "the weight's shape is unknown");
    const std::vector<std::int64_t> kernel(wshape->begin() + 2, wshape->end());
    const std::size_t dims = kernel.size();
    auto expand = [&](std::vector<std::int64_t> v) {
      if (v.size() == 1 && dims > 1) v.assign(dims, v[0]);
      return v;
    };
    const auto stride = expand(ints_arg(n, stride_i));
    const auto dilation = expand(ints_arg(n, dilation_i));
    std::vector<std::int64_t> pads;
    const c10::IValue padding = constant_arg(n, pad_i);
    if (padding.isString()) {
      // conv's padding="same" (stride 1): the extra pixel goes at the end, as PyTorch does.
      std::vector<std::int64_t> begin, end;
      for (std::size_t i = 0; i < dims; ++i) {
        const std::int64_t total = padding.toStringRef() == "same" ? dilation[i] * (kernel[i] - 1) : 0;
        begin.push_back(total / 2);
        end.push_back(total - total / 2);
      }
      pads = begin;
      pads.insert(pads.end(), end.begin(), end.end());
    } else {
      const auto p = expand(padding.toIntVector());
      pads = p;
      pads.insert(pads.end(), p.begin(), p.end());
    }
    auto* p = emit_for(n, transposed ? "ConvTranspose" : "Conv", inputs);
    attr(p, "kernel_shape", kernel);
    attr(p, "strides", stride);
    attr(p, "pads", pads);
    attr(p, "dilations", dilation);
    attr(p, "group", int_arg(n, groups_i));
    if (output_padding_i) attr(p, "output_padding", expand(ints_arg(n, *output_padding_i)));
  }

  // aten::linear: Gemm for 2-D inputs, else MatMul with the weight stored
  // transposed (so a quantized weight stays DequantizeLinear -> MatMul) + Add.
  void linear(const Node* n) {
    const std::string x = name_of(n->input(0), n);
    const bool has_bias = !is_none(n, 2);
    if (rank_of(n->input(0), n) == 2) {
      std::vector<std::string> inputs{x, name_of(n->input(1), n)};
      if (has_bias) inputs.push_back(bias(n, 2, 0, 1));
      attr(emit_for(n, "Gemm", inputs), "transB", std::int64_t{1});
      return;
    }
    std::string wt;
    if (deferred_weights_.count(n->input(1))) {
      wt = emit_weight(n->input(1), true);
    } else if (auto iv = constant(n->input(1)); iv && iv->isTensor()) {
      wt = initializer(iv->toTensor().t(), base_name(n) + ".weight_t");
    } else {
      wt = temp(n, "weight_t");
      emit("Transpose", {name_of(n->input(1), n)}, {wt}, base_name(n) + ".transpose");
    }
    if (!has_bias) {
      emit_for(n, "MatMul", {x, wt});
      return;
    }
    const std::string product = temp(n, "matmul");
    auto* mm = emit("MatMul", {x, wt}, {product}, base_name(n));
    record_op(n, mm->name(), "MatMul+Add");
    const std::string out = unique(base_name(n) + ".out");
    emit("Add", {product, bias(n, 2, 0, 1)}, {out}, base_name(n) + ".add");
    names_[n->output(0)] = out;
  }

  void elementwise(const Node* n, const std::string& op_type) {
    std::string a = name_of(n->input(0), n);
    std::string b = name_of(n->input(1), n);
    // add/sub(self, other, alpha): other * alpha.
    if ((op_type == "Add" || op_type == "Sub") && n->inputs().size() > 2 && double_arg(n, 2) != 1.0) {
      const std::string scaled = temp(n, "alpha");
      emit("Mul", {b, scalar_initializer(double_arg(n, 2), base_name(n) + ".alpha")}, {scaled},
           base_name(n) + ".alpha");
      b = scaled;
    }
    emit_for(n, op_type, {a, b});
  }

  void clip(const Node* n, std::optional<double> lo, std::optional<double> hi) {
    emit_for(n, "Clip",
             {name_of(n->input(0), n), lo ? scalar_initializer(*lo, base_name(n) + ".min") : std::string(),
              hi ? scalar_initializer(*hi, base_name(n) + ".max") : std::string()});
  }
  std::optional<double> optional_double(const Node* n, std::size_t i) const {
    if (is_none(n, i)) return std::nullopt;
    return double_arg(n, i);
  }

  void pool(const Node* n, const std::string& op_type) {
    const auto dims = static_cast<std::size_t>(rank_of(n->input(0), n) - 2);  // spatial dimensions
    auto expand = [&](std::vector<std::int64_t> v) {
      if (v.size() == 1 && dims > 1) v.assign(dims, v[0]);
      return v;
    };
    const auto kernel = expand(ints_arg(n, 1));
    std::vector<std::int64_t> stride = ints_arg(n, 2);
    stride = stride.empty() ? kernel : expand(stride);
    auto pads = expand(ints_arg(n, 3));
    pads.insert(pads.end(), pads.begin(), pads.end());
    auto* p = emit_for(n, op_type, {name_of(n->input(0), n)});
    attr(p, "kernel_shape", kernel);
    attr(p, "strides", stride);
    attr(p, "pads", pads);
    if (op_type == "MaxPool") {
      attr(p, "dilations", expand(ints_arg(n, 4)));
      attr(p, "ceil_mode", std::int64_t{bool_arg(n, 5)});
    } else {
      attr(p, "ceil_mode", std::int64_t{bool_arg(n, 4)});
      attr(p, "count_include_pad", std::int64_t{bool_arg(n, 5)});
      if (n->inputs().size() > 6 && !is_none(n, 6)) fail(n, "divisor_override has no ONNX AveragePool form");
    }
  }

  void adaptive_pool(const Node* n, bool max) {
    const auto out = ints_arg(n, 1);
    const std::string x = name_of(n->input(0), n);
    if (std::all_of(out.begin(), out.end(), [](std::int64_t d) { return d == 1; })) {
      emit_for(n, max ? "GlobalMaxPool" : "GlobalAveragePool", {x});
      return;
    }
    const auto in = shape_of(n->input(0));
    if (!in) fail(n, "its input's shape is unknown");
    std::vector<std::int64_t> kernel;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const std::int64_t size = (*in)[in->size() - out.size() + i];
      if (out[i] <= 0 || size % out[i] != 0)
        fail(n, "adaptive pooling from " + std::to_string(size) + " to " + std::to_string(out[i]) +
                    " is not a fixed window; ONNX has no adaptive pooling");
      kernel.push_back(size / out[i]);
    }
    auto* p = emit_for(n, max ? "MaxPool" : "AveragePool", {x});
    attr(p, "kernel_shape", kernel);
    attr(p, "strides", kernel);
  }

  // aten::chunk(x, chunks, dim) -> Split into equal parts (the last smaller),
  // its list taken apart by the prim::ListUnpack after it.
  void chunk(const Node* n) {
    const auto shape = shape_of(n->input(0));
    if (!shape) fail(n, "its input's shape is unknown");
    const std::int64_t chunks = int_arg(n, 1);
    std::int64_t dim = int_arg(n, 2);
    if (dim < 0) dim += static_cast<std::int64_t>(shape->size());
    const std::int64_t size = (*shape)[static_cast<std::size_t>(dim)];
    const std::int64_t each = (size + chunks - 1) / chunks;
    std::vector<std::int64_t> splits;
    for (std::int64_t left = size; left > 0; left -= each) splits.push_back(std::min(each, left));
    std::vector<std::string> outs;
    for (std::size_t i = 0; i < splits.size(); ++i) outs.push_back(temp(n, std::to_string(i)));
    auto* p =
        emit("Split", {name_of(n->input(0), n), ints_initializer(splits, base_name(n) + ".split")}, outs, base_name(n));
    attr(p, "axis", dim);
    record_op(n, p->name(), "Split");
    chunks_[n->output(0)] = outs;
  }
  void unpack(const Node* n) {
    auto it = chunks_.find(n->input(0));
    if (it == chunks_.end() || it->second.size() != n->outputs().size())
      fail(n, "it unpacks a list the export did not build");
    for (std::size_t i = 0; i < n->outputs().size(); ++i) names_[n->output(i)] = it->second[i];
  }

  void reshape_to(const Node* n, std::vector<std::int64_t> shape) {
    emit_for(n, "Reshape", {name_of(n->input(0), n), ints_initializer(shape, base_name(n) + ".shape")});
  }

  void flatten(const Node* n) {
    const std::int64_t rank = rank_of(n->input(0), n);
    std::int64_t start = int_arg(n, 1), end = int_arg(n, 2);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    if (start == 1 && end == rank - 1) {
      attr(emit_for(n, "Flatten", {name_of(n->input(0), n)}), "axis", std::int64_t{1});
      return;
    }
    auto out = shape_of(n->output(0));
    if (!out) fail(n, "its output shape is unknown");
    if (start > 0 && !out->empty()) (*out)[0] = 0;  // ONNX Reshape: 0 copies the batch dimension
    reshape_to(n, *out);
  }

  std::vector<std::int64_t> transpose_perm(const Node* n) {
    const std::int64_t rank = rank_of(n->input(0), n);
    std::vector<std::int64_t> perm(static_cast<std::size_t>(rank));
    for (std::int64_t i = 0; i < rank; ++i) perm[static_cast<std::size_t>(i)] = i;
    std::int64_t a = int_arg(n, 1), b = int_arg(n, 2);
    if (a < 0) a += rank;
    if (b < 0) b += rank;
    std::swap(perm[static_cast<std::size_t>(a)], perm[static_cast<std::size_t>(b)]);
    return perm;
  }

  // gelu without opset 20's Gelu: 0.5 x (1 + erf(x / sqrt 2)), or the tanh form.
  void gelu(const Node* n) {
    const std::string x = name_of(n->input(0), n);
    const bool tanh_form = n->inputs().size() > 1 && constant_arg(n, 1).toStringRef() == "tanh";
    const std::string b = base_name(n);
    std::string inner;
    auto step = [&](const std::string& op, const std::vector<std::string>& in, const std::string& what) {
      const std::string out = temp(n, what);
      auto* p = emit(op, in, {out}, b + "." + what);
      if (what == "scaled_in" || what == "cube") record_once(n, p);
      return out;
    };
    if (tanh_form) {
      const std::string cube = step("Mul", {x, step("Mul", {x, x}, "square")}, "cube");
      const std::string inner_sum =
          step("Add", {x, step("Mul", {cube, scalar_initializer(0.044715, b + ".c")}, "cube_scaled")}, "inner");
      inner = step("Tanh", {step("Mul", {inner_sum, scalar_initializer(std::sqrt(2.0 / M_PI), b + ".k")}, "scaled_in")},
                   "tanh");
    } else {
      inner = step("Erf", {step("Div", {x, scalar_initializer(std::sqrt(2.0), b + ".sqrt2")}, "scaled_in")}, "erf");
    }
    const std::string one_plus = step("Add", {inner, scalar_initializer(1.0, b + ".one")}, "one_plus");
    const std::string times_x = step("Mul", {x, one_plus}, "times_x");
    const std::string out = unique(b);
    emit("Mul", {times_x, scalar_initializer(0.5, b + ".half")}, {out}, b + ".half");
    names_[n->output(0)] = out;
  }
  void record_once(const Node* n, const onnx::NodeProto* p) {
    if (ops_.empty() || ops_.back().reference_node != ref_.id(n)) record_op(n, p->name(), "Gelu (decomposed)");
  }

  void resize(const Node* n, bool linear) {
    const auto in = shape_of(n->input(0));
    const auto out = shape_of(n->output(0));
    if (!in || !out || in->size() != out->size()) fail(n, "its input and output shapes are unknown");
    std::vector<float> scales;
    for (std::size_t i = 0; i < in->size(); ++i) scales.push_back(float((*out)[i]) / float((*in)[i]));
    const std::string s = initializer(at::tensor(scales, at::kFloat), base_name(n) + ".scales");
    auto* p = emit_for(n, "Resize", {name_of(n->input(0), n), "", s});
    attr(p, "mode", std::string(linear ? "linear" : "nearest"));
    if (linear) {
      const bool align = bool_arg(n, 2);
      attr(p, "coordinate_transformation_mode", std::string(align ? "align_corners" : "pytorch_half_pixel"));
    } else {
      attr(p, "coordinate_transformation_mode", std::string("asymmetric"));
      attr(p, "nearest_mode", std::string("floor"));
    }
  }

  std::string ones_or(const Node* n, std::size_t i, const std::vector<std::int64_t>& shape, double fill,
                      const std::string& what) {
    if (!is_none(n, i)) return name_of(n->input(i), n);
    return initializer(at::full(shape, fill, at::kFloat), base_name(n) + "." + what);
  }

  void layer_norm(const Node* n) {
    const auto shape = ints_arg(n, 1);
    auto* p =
        emit_for(n, "LayerNormalization",
                 {name_of(n->input(0), n), ones_or(n, 2, shape, 1.0, "weight"), ones_or(n, 3, shape, 0.0, "bias")});
    attr(p, "axis", -static_cast<std::int64_t>(shape.size()));
    attr(p, "epsilon", float(double_arg(n, 4)));
  }

  void batch_norm(const Node* n) {
    if (bool_arg(n, 5)) fail(n, "batch_norm in training mode has no inference form");
    const auto shape = shape_of(n->input(3));
    if (!shape) fail(n, "its running statistics are not constants");
    auto* p = emit_for(n, "BatchNormalization",
                       {name_of(n->input(0), n), ones_or(n, 1, *shape, 1.0, "weight"),
                        ones_or(n, 2, *shape, 0.0, "bias"), name_of(n->input(3), n), name_of(n->input(4), n)});
    attr(p, "epsilon", float(double_arg(n, 7)));
  }

  void convert_node(Node* n) {
    using namespace c10;
    const std::string kind = n->kind().toQualString();
    if (n->kind() == prim::Constant || n->kind() == prim::ListConstruct || n->kind() == prim::TupleConstruct) return;
    // Shape arithmetic folded to numbers (static_scalar), used where consumed.
    if (n->outputs().size() == 1 && static_scalar(n->output())) return;
    if (n->kind() == aten::quantize_per_tensor) return quantize(n);
    if (n->kind() == aten::dequantize) return dequantize(n);
    if (kind == "aten::fake_quantize_per_tensor_affine") return fake_quantize(n, false);
    if (kind == "aten::fake_quantize_per_channel_affine") return fake_quantize(n, true);
    if (kind == "aten::quantize_per_tensor_dynamic") return quantize_dynamic(n);
    if (kind == "aten::conv1d" || kind == "aten::conv2d" || kind == "aten::conv3d")
      return conv(n, false, 3, 4, 5, 6, {});
    if (kind == "aten::conv_transpose1d" || kind == "aten::conv_transpose2d") return conv(n, true, 3, 4, 7, 6, 5);
    if (kind == "aten::_convolution")
      return conv(n, bool_arg(n, 6), 3, 4, 5, 8, bool_arg(n, 6) ? std::optional(7) : std::nullopt);
    if (kind == "aten::linear") return linear(n);
    // Table lookup: the weight (an initializer, or its dequantized int8 rows) gathered by the token ids.
    if (kind == "aten::embedding")
      return (void)emit_for(n, "Gather", {name_of(n->input(0), n), name_of(n->input(1), n)});
    if (kind == "aten::chunk") return chunk(n);
    if (kind == "aten::select") {  // a 0-d index drops the axis, as select does
      auto* p = emit_for(
          n, "Gather",
          {name_of(n->input(0), n), initializer(at::scalar_tensor(int_arg(n, 2), at::kLong), base_name(n) + ".index")});
      return attr(p, "axis", int_arg(n, 1));
    }
    if (kind == "aten::slice") {  // start/end None: the whole axis (ONNX clamps ends past it)
      const std::int64_t start = is_none(n, 2) ? 0 : int_arg(n, 2);
      const std::int64_t end = is_none(n, 3) ? std::numeric_limits<std::int64_t>::max() : int_arg(n, 3);
      const std::string base = base_name(n);
      return (void)emit_for(n, "Slice",
                            {name_of(n->input(0), n), ints_initializer({start}, base + ".starts"),
                             ints_initializer({end}, base + ".ends"), ints_initializer({int_arg(n, 1)}, base + ".axes"),
                             ints_initializer({int_arg(n, 4)}, base + ".steps")});
    }
    if (kind == "aten::masked_fill")  // where the mask is set, the fill value; elsewhere the input
      return (void)emit_for(n, "Where",
                            {name_of(n->input(1), n), scalar_initializer(double_arg(n, 2), base_name(n) + ".fill"),
                             name_of(n->input(0), n)});
    if (n->kind() == prim::ListUnpack) return unpack(n);
    if (kind == "aten::bmm") return (void)emit_for(n, "MatMul", {name_of(n->input(0), n), name_of(n->input(1), n)});
    if (kind == "aten::matmul") return (void)emit_for(n, "MatMul", {name_of(n->input(0), n), name_of(n->input(1), n)});
    static const std::map<std::string, std::string> binary{
        {"aten::add", "Add"}, {"aten::sub", "Sub"}, {"aten::mul", "Mul"}, {"aten::div", "Div"}};
    if (auto it = binary.find(kind); it != binary.end()) return elementwise(n, it->second);
    static const std::map<std::string, std::string> unary{
        {"aten::relu", "Relu"},           {"aten::sigmoid", "Sigmoid"},     {"aten::tanh", "Tanh"},
        {"aten::hardswish", "HardSwish"}, {"aten::contiguous", "Identity"}, {"aten::detach", "Identity"}};
    if (auto it = unary.find(kind); it != unary.end()) return (void)emit_for(n, it->second, {name_of(n->input(0), n)});
    if (kind == "aten::dropout") {
      if (bool_arg(n, 2)) fail(n, "dropout in training mode has no inference form");
      return (void)emit_for(n, "Identity", {name_of(n->input(0), n)});
    }
    if (kind == "aten::hardsigmoid") {
      auto* p = emit_for(n, "HardSigmoid", {name_of(n->input(0), n)});
      attr(p, "alpha", float(1.0 / 6.0));
      attr(p, "beta", 0.5f);
      return;
    }
    if (kind == "aten::silu") {
      const std::string x = name_of(n->input(0), n), s = temp(n, "sigmoid");
      emit("Sigmoid", {x}, {s}, base_name(n) + ".sigmoid");
      return (void)emit_for(n, "Mul", {x, s});
    }
    if (kind == "aten::clamp") return clip(n, optional_double(n, 1), optional_double(n, 2));
    if (kind == "aten::hardtanh") return clip(n, double_arg(n, 1), double_arg(n, 2));
    if (kind == "aten::relu6") return clip(n, 0.0, 6.0);
    if (kind == "aten::max_pool1d" || kind == "aten::max_pool2d") return pool(n, "MaxPool");
    if (kind == "aten::avg_pool1d" || kind == "aten::avg_pool2d") return pool(n, "AveragePool");
    if (kind == "aten::adaptive_avg_pool1d" || kind == "aten::adaptive_avg_pool2d") return adaptive_pool(n, false);
    if (kind == "aten::adaptive_max_pool2d" && n->outputs().size() == 1) return adaptive_pool(n, true);
    if (kind == "aten::softmax" || kind == "aten::log_softmax") {
      auto* p = emit_for(n, kind == "aten::softmax" ? "Softmax" : "LogSoftmax", {name_of(n->input(0), n)});
      return attr(p, "axis", int_arg(n, 1));
    }
    if (kind == "aten::cat" || kind == "aten::concat") {
      const Node* list = n->input(0)->node();
      if (list->kind() != prim::ListConstruct) fail(n, "its tensor list is not built in the graph");
      std::vector<std::string> inputs;
      for (const Value* v : list->inputs()) inputs.push_back(name_of(v, n));
      return attr(emit_for(n, "Concat", inputs), "axis", int_arg(n, 1));
    }
    if (kind == "aten::flatten") return flatten(n);
    if (kind == "aten::reshape" || kind == "aten::view") return reshape_to(n, ints_arg(n, 1));
    if (kind == "aten::permute")
      return attr(emit_for(n, "Transpose", {name_of(n->input(0), n)}), "perm", ints_arg(n, 1));
    if (kind == "aten::transpose")
      return attr(emit_for(n, "Transpose", {name_of(n->input(0), n)}), "perm", transpose_perm(n));
    if (kind == "aten::t")
      return attr(emit_for(n, "Transpose", {name_of(n->input(0), n)}), "perm", std::vector<std::int64_t>{1, 0});
    if (kind == "aten::unsqueeze" || kind == "aten::squeeze") {
      if (n->inputs().size() < 2) fail(n, "squeeze without a dimension has no fixed ONNX form");
      return (void)emit_for(n, kind == "aten::unsqueeze" ? "Unsqueeze" : "Squeeze",
                            {name_of(n->input(0), n), ints_initializer(ints_arg(n, 1), base_name(n) + ".axes")});
    }
    if (kind == "aten::mean") {
      auto* p = emit_for(n, "ReduceMean", {name_of(n->input(0), n)});
      attr(p, "axes", ints_arg(n, 1));
      return attr(p, "keepdims", std::int64_t{bool_arg(n, 2)});
    }
    if (kind == "aten::gelu") return gelu(n);
    if (kind == "aten::layer_norm") return layer_norm(n);
    if (kind == "aten::batch_norm") return batch_norm(n);
    if (kind == "aten::upsample_nearest2d" || kind == "aten::upsample_nearest1d") return resize(n, false);
    if (kind == "aten::upsample_bilinear2d" || kind == "aten::upsample_linear1d") return resize(n, true);
    fail(n,
         "no ONNX mapping for " + kind +
             " (CONTRIBUTING.md, \"ONNX export\", lists the mapped ops); export the model without it or add a mapping");
  }

  const Graph& ref_;
  bool batch_symbolic_;
  onnx::ModelProto model_;
  onnx::GraphProto* g_ = nullptr;
  std::unordered_map<int, QuantizedTensor> quantized_by_node_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, QdqParams> qdq_;
  std::unordered_map<const Value*, const Node*> deferred_weights_;
  std::unordered_map<const Node*, std::string> base_override_;
  std::unordered_map<const Value*, std::vector<std::string>> chunks_;
  mutable bool shape_folded_ = false;
  mutable std::int64_t fixed_batch_size_ = 1;  // an aten::size became a number: the batch is fixed
  std::set<std::string> used_, used_node_names_;
  std::vector<std::string> input_names_, output_names_;
  std::vector<OnnxQuantizedTensor> encodings_;
  std::vector<OnnxOpRecord> ops_;
};

}  // namespace

OnnxModel export_onnx(const Graph& reference, const std::vector<QuantizedTensor>& quantized, bool batch_symbolic) {
  return OnnxWriter(reference, quantized, batch_symbolic).write();
}

std::string with_outputs(const std::string& bytes, const std::vector<std::string>& names) {
  onnx::ModelProto m;
  m.ParseFromString(bytes);
  std::map<std::string, const onnx::ValueInfoProto*> infos;
  for (const auto& v : m.graph().value_info()) infos[v.name()] = &v;
  std::vector<onnx::ValueInfoProto> added;
  for (const auto& name : names) {
    auto it = infos.find(name);
    if (it == infos.end()) throw std::logic_error("with_outputs: no type known for tensor " + name);
    added.push_back(*it->second);
  }
  for (auto& v : added) *m.mutable_graph()->add_output() = std::move(v);
  std::string out;
  m.SerializeToString(&out);
  return out;
}

void check_onnx_model(const std::string& bytes, const std::string& where) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes)) throw InputError(where, "not an ONNX model (the protobuf does not parse)");
  try {
    onnx::checker::check_model(m);
    onnx::ShapeInferenceOptions options{true, 1, false};
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const onnx::checker::ValidationError& e) {
    throw InputError(where, std::string("fails the onnx checker: ") + e.what());
  } catch (const onnx::InferenceError& e) {
    throw InputError(where, std::string("fails onnx shape inference: ") + e.what());
  }
}

}  // namespace qsdk
