// The engine types of qsdk/engine.h to and from the C tables of qsdk/abi.h,
// header only. The host builds a qsdk_engine_model from an EngineModel and
// reads a qsdk_engine_result; QSDK_PLUGIN does the reverse. Readers check
// every pointer, count and size, and throw std::runtime_error naming the
// place: what crosses is never trusted.
#pragma once

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "qsdk/abi.h"
#include "qsdk/engine.h"

namespace qsdk::engine_abi {

inline qsdk_string view(const std::string& s) { return {s.data(), s.size()}; }

inline std::string text(qsdk_string s, const std::string& what) {
  if (s.size == 0) return {};
  if (!s.data) throw std::runtime_error(what + ": a string at a null pointer");
  if (s.size > (std::size_t{1} << 20)) throw std::runtime_error(what + ": a string longer than 1 MiB");
  return std::string(s.data, s.size);
}

// Arrays of records (nodes, names, dims) stay far below 2^24 entries; byte
// buffers (a model, a tensor's data) may reach 2^36 bytes: a garbage count
// fails here instead of exhausting memory.
template <typename T>
const T* entries(const T* data, std::size_t count, const std::string& what, std::size_t limit = std::size_t{1} << 24) {
  if (count == 0) return nullptr;
  if (!data) throw std::runtime_error(what + ": " + std::to_string(count) + " entries at a null pointer");
  if (count > limit)
    throw std::runtime_error(what + ": " + std::to_string(count) + " entries, more than the " + std::to_string(limit) +
                             " allowed");
  return data;
}
inline constexpr std::size_t kMaxBufferBytes = std::size_t{1} << 36;

// The i-th entry of an array of sized structs, strided by the first one's struct_size.
template <typename T>
const T& strided(const T* data, std::size_t i, const std::string& what) {
  if (data->struct_size < sizeof(T))
    throw std::runtime_error(what + ": struct_size " + std::to_string(data->struct_size) + ", expected at least " +
                             std::to_string(sizeof(T)));
  return *reinterpret_cast<const T*>(reinterpret_cast<const char*>(data) + i * data->struct_size);
}

inline EngineTensor tensor_from_c(const qsdk_tensor& c, const std::string& what) {
  EngineTensor t;
  t.name = text(c.name, what + " name");
  const std::string where = what + " '" + t.name + "'";
  if (c.element_type < QSDK_ELEMENT_FLOAT32 || c.element_type > QSDK_ELEMENT_INT64)
    throw std::runtime_error(where + ": unknown element type " + std::to_string(c.element_type));
  t.type = static_cast<ElementType>(c.element_type);
  if (const auto* dims = entries(c.shape, c.rank, where + " shape")) t.shape.assign(dims, dims + c.rank);
  std::size_t n = 1;
  for (auto d : t.shape) {
    if (d < 0 || d > (std::int64_t{1} << 32)) throw std::runtime_error(where + ": dimension " + std::to_string(d));
    n *= static_cast<std::size_t>(d);
  }
  if (c.byte_size != n * element_size(t.type))
    throw std::runtime_error(where + ": " + std::to_string(c.byte_size) + " bytes for " + std::to_string(n) + " " +
                             to_string(t.type) + " elements");
  if (const auto* bytes =
          entries(static_cast<const unsigned char*>(c.data), c.byte_size, where + " data", kMaxBufferBytes))
    t.data.assign(bytes, bytes + c.byte_size);
  return t;
}

inline std::vector<EngineTensor> tensors_from_c(const qsdk_tensor* data, std::size_t count, const std::string& what) {
  std::vector<EngineTensor> out;
  if (!entries(data, count, what)) return out;
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(tensor_from_c(strided(data, i, what), what + " " + std::to_string(i)));
  return out;
}

// C views of tensors; the tensors must outlive it.
struct CTensors {
  std::vector<qsdk_tensor> tensors;
  explicit CTensors(const std::vector<const EngineTensor*>& ts) {
    for (const auto* t : ts) {
      qsdk_tensor c{};
      c.struct_size = sizeof c;
      c.name = view(t->name);
      c.element_type = static_cast<std::int32_t>(t->type);
      c.shape = t->shape.empty() ? nullptr : t->shape.data();
      c.rank = t->shape.size();
      c.data = t->data.empty() ? nullptr : t->data.data();
      c.byte_size = t->data.size();
      tensors.push_back(c);
    }
  }
  explicit CTensors(const std::vector<EngineTensor>& ts) : CTensors(pointers(ts)) {}

 private:
  static std::vector<const EngineTensor*> pointers(const std::vector<EngineTensor>& ts) {
    std::vector<const EngineTensor*> p;
    for (const auto& t : ts) p.push_back(&t);
    return p;
  }
};

// An EngineModel as C tables (the host's side); the model must outlive it.
class CModel {
 public:
  explicit CModel(const EngineModel& m) {
    std::vector<const EngineTensor*> inits;
    for (const auto& [name, t] : m.initializers) inits.push_back(&t);
    initializers_ = std::make_unique<CTensors>(inits);
    for (const auto& n : m.nodes) {
      auto& attrs = attributes_.emplace_back();
      for (const auto& a : n.attributes) {
        qsdk_onnx_attribute c{};
        c.struct_size = sizeof c;
        c.name = view(a.name);
        c.type = a.type;
        c.i = a.i;
        c.f = a.f;
        c.s = view(a.s);
        c.ints = a.ints.empty() ? nullptr : a.ints.data();
        c.int_count = a.ints.size();
        c.floats = a.floats.empty() ? nullptr : a.floats.data();
        c.float_count = a.floats.size();
        attrs.push_back(c);
      }
      qsdk_onnx_node c{};
      c.struct_size = sizeof c;
      c.name = view(n.name);
      c.op_type = view(n.op_type);
      const auto& ins = names(n.inputs);
      c.inputs = ins.empty() ? nullptr : ins.data();
      c.input_count = ins.size();
      const auto& outs = names(n.outputs);
      c.outputs = outs.empty() ? nullptr : outs.data();
      c.output_count = outs.size();
      c.attributes = attrs.empty() ? nullptr : attrs.data();
      c.attribute_count = attrs.size();
      nodes_.push_back(c);
    }
    const auto& ins = names(m.inputs);
    const auto& outs = names(m.outputs);
    model_.struct_size = sizeof model_;
    model_.onnx_bytes = m.onnx_bytes.data();
    model_.onnx_size = m.onnx_bytes.size();
    model_.onnx_path = view(m.onnx_path);
    model_.nodes = nodes_.empty() ? nullptr : nodes_.data();
    model_.node_count = nodes_.size();
    model_.initializers = initializers_->tensors.empty() ? nullptr : initializers_->tensors.data();
    model_.initializer_count = initializers_->tensors.size();
    model_.input_names = ins.empty() ? nullptr : ins.data();
    model_.input_count = ins.size();
    model_.output_names = outs.empty() ? nullptr : outs.data();
    model_.output_count = outs.size();
  }
  const qsdk_engine_model* get() const { return &model_; }

 private:
  const std::vector<qsdk_string>& names(const std::vector<std::string>& s) {
    auto& v = strings_.emplace_back();
    for (const auto& x : s) v.push_back(view(x));
    return v;
  }
  std::unique_ptr<CTensors> initializers_;
  std::deque<std::vector<qsdk_string>> strings_;
  std::deque<std::vector<qsdk_onnx_attribute>> attributes_;
  std::vector<qsdk_onnx_node> nodes_;
  qsdk_engine_model model_{};
};

inline std::vector<std::string> names_from_c(const qsdk_string* data, std::size_t count, const std::string& what) {
  std::vector<std::string> out;
  if (const auto* s = entries(data, count, what))
    for (std::size_t i = 0; i < count; ++i) out.push_back(text(s[i], what));
  return out;
}

// The plugin's side: the host's tables as an EngineModel.
inline EngineModel model_from_c(const qsdk_engine_model& c) {
  if (c.struct_size < sizeof(qsdk_engine_model)) throw std::runtime_error("qsdk_engine_model: struct_size too small");
  EngineModel m;
  if (const auto* b = entries(static_cast<const char*>(c.onnx_bytes), c.onnx_size, "onnx bytes", kMaxBufferBytes))
    m.onnx_bytes.assign(b, c.onnx_size);
  m.onnx_path = text(c.onnx_path, "onnx path");
  if (entries(c.nodes, c.node_count, "nodes"))
    for (std::size_t i = 0; i < c.node_count; ++i) {
      const auto& cn = strided(c.nodes, i, "node");
      OnnxNode n;
      n.name = text(cn.name, "node name");
      n.op_type = text(cn.op_type, "node op_type");
      n.inputs = names_from_c(cn.inputs, cn.input_count, "node inputs");
      n.outputs = names_from_c(cn.outputs, cn.output_count, "node outputs");
      if (entries(cn.attributes, cn.attribute_count, "attributes"))
        for (std::size_t k = 0; k < cn.attribute_count; ++k) {
          const auto& ca = strided(cn.attributes, k, "attribute");
          OnnxAttribute a;
          a.name = text(ca.name, "attribute name");
          a.type = ca.type;
          a.i = ca.i;
          a.f = ca.f;
          a.s = text(ca.s, "attribute string");
          if (const auto* v = entries(ca.ints, ca.int_count, "attribute ints")) a.ints.assign(v, v + ca.int_count);
          if (const auto* v = entries(ca.floats, ca.float_count, "attribute floats"))
            a.floats.assign(v, v + ca.float_count);
          n.attributes.push_back(std::move(a));
        }
      m.nodes.push_back(std::move(n));
    }
  for (auto& t : tensors_from_c(c.initializers, c.initializer_count, "initializer")) {
    std::string name = t.name;
    m.initializers.emplace(std::move(name), std::move(t));
  }
  m.inputs = names_from_c(c.input_names, c.input_count, "input names");
  m.outputs = names_from_c(c.output_names, c.output_count, "output names");
  return m;
}

// An EngineResult as C tables (the plugin's side), released as one object:
// the pointer handed out is header.c, and header.owner leads back.
struct CResult {
  struct Header {  // standard layout: &header.c converts back to &header
    qsdk_engine_result c;
    CResult* owner;
  };
  EngineResult result;
  CTensors outputs, intermediates;
  Header header{};
  explicit CResult(EngineResult r)
      : result(std::move(r)), outputs(result.outputs), intermediates(result.intermediates) {
    header.owner = this;
    qsdk_engine_result& c = header.c;
    c.struct_size = sizeof c;
    c.outputs = outputs.tensors.empty() ? nullptr : outputs.tensors.data();
    c.output_count = outputs.tensors.size();
    c.intermediates = intermediates.tensors.empty() ? nullptr : intermediates.tensors.data();
    c.intermediate_count = intermediates.tensors.size();
  }
};

inline qsdk_arithmetic_decl arithmetic_to_c(const Arithmetic& a) {
  qsdk_arithmetic_decl c{};
  c.struct_size = sizeof c;
  c.rounding = static_cast<std::int32_t>(a.rounding);
  c.multiplier = static_cast<std::int32_t>(a.multiplier);
  c.accumulator_bits = a.accumulator_bits;
  c.accumulator_overflow = static_cast<std::int32_t>(a.accumulator_overflow);
  c.pooling_rounding = static_cast<std::int32_t>(a.pooling_rounding);
  c.elementwise_rounding = static_cast<std::int32_t>(a.elementwise_rounding);
  return c;
}

}  // namespace qsdk::engine_abi
