// The engine under test, C++ side (ABI 2.2): how a backend declares the
// integer arithmetic of its hardware, and the optional executor that runs a
// quantized model on the vendor's engine (NPU, DSP, simulator, C model) so
// the conformance suite can compare it with the host's integer-exact
// reference (CONTRIBUTING.md, "Checking your engine"). Header only, no
// LibTorch.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "qsdk/abi.h"

namespace qsdk {

// How a value exactly halfway between two integers is rounded.
enum class Rounding : std::int32_t {
  HalfToEven = QSDK_ROUND_HALF_TO_EVEN,
  HalfAwayFromZero = QSDK_ROUND_HALF_AWAY_FROM_ZERO,
  HalfUp = QSDK_ROUND_HALF_UP
};
// How an accumulator is scaled by input scale x weight scale / output scale.
enum class Multiplier : std::int32_t {
  Float32 = QSDK_MULTIPLIER_FLOAT32,
  Float64 = QSDK_MULTIPLIER_FLOAT64,
  Int32Shift = QSDK_MULTIPLIER_INT32_SHIFT,  // exact product, one rounding (TOSA)
  Gemmlowp = QSDK_MULTIPLIER_GEMMLOWP        // doubling high multiply + rounding shift (gemmlowp, TFLite)
};
enum class Overflow : std::int32_t { Saturate = QSDK_OVERFLOW_SATURATE, Wrap = QSDK_OVERFLOW_WRAP };

inline const char* to_string(Rounding r) {
  switch (r) {
    case Rounding::HalfToEven: return "half_to_even";
    case Rounding::HalfAwayFromZero: return "half_away_from_zero";
    case Rounding::HalfUp: return "half_up";
  }
  return "?";
}
inline const char* to_string(Multiplier m) {
  switch (m) {
    case Multiplier::Float32: return "float32";
    case Multiplier::Float64: return "float64";
    case Multiplier::Int32Shift: return "int32_shift";
    case Multiplier::Gemmlowp: return "gemmlowp";
  }
  return "?";
}
inline const char* to_string(Overflow o) { return o == Overflow::Wrap ? "wrap" : "saturate"; }
inline bool parse(const std::string& name, Rounding& out) {
  for (Rounding r : {Rounding::HalfToEven, Rounding::HalfAwayFromZero, Rounding::HalfUp})
    if (name == to_string(r)) return out = r, true;
  return false;
}
inline bool parse(const std::string& name, Multiplier& out) {
  for (Multiplier m : {Multiplier::Float32, Multiplier::Float64, Multiplier::Int32Shift, Multiplier::Gemmlowp})
    if (name == to_string(m)) return out = m, true;
  return false;
}
inline bool parse(const std::string& name, Overflow& out) {
  for (Overflow o : {Overflow::Saturate, Overflow::Wrap})
    if (name == to_string(o)) return out = o, true;
  return false;
}

// What the integer-exact reference computes for this backend (abi.h,
// qsdk_arithmetic_decl, says what each field governs). The defaults are what
// a float engine with IEEE rounding does.
struct Arithmetic {
  Rounding rounding = Rounding::HalfToEven;
  Multiplier multiplier = Multiplier::Float32;
  int accumulator_bits = 32;
  Overflow accumulator_overflow = Overflow::Saturate;
  Rounding pooling_rounding = Rounding::HalfToEven;
  Rounding elementwise_rounding = Rounding::HalfToEven;
  bool operator==(const Arithmetic& o) const {
    return rounding == o.rounding && multiplier == o.multiplier && accumulator_bits == o.accumulator_bits &&
           accumulator_overflow == o.accumulator_overflow && pooling_rounding == o.pooling_rounding &&
           elementwise_rounding == o.elementwise_rounding;
  }
  bool operator!=(const Arithmetic& o) const { return !(*this == o); }
};

enum class ElementType : std::int32_t {
  Float32 = QSDK_ELEMENT_FLOAT32,
  UInt8 = QSDK_ELEMENT_UINT8,
  Int8 = QSDK_ELEMENT_INT8,
  Int32 = QSDK_ELEMENT_INT32,
  Int64 = QSDK_ELEMENT_INT64
};
inline std::size_t element_size(ElementType t) {
  switch (t) {
    case ElementType::UInt8:
    case ElementType::Int8: return 1;
    case ElementType::Float32:
    case ElementType::Int32: return 4;
    case ElementType::Int64: return 8;
  }
  return 0;
}
inline const char* to_string(ElementType t) {
  switch (t) {
    case ElementType::Float32: return "float32";
    case ElementType::UInt8: return "uint8";
    case ElementType::Int8: return "int8";
    case ElementType::Int32: return "int32";
    case ElementType::Int64: return "int64";
  }
  return "?";
}

// A dense row-major tensor that owns its bytes.
struct EngineTensor {
  std::string name;
  ElementType type = ElementType::Float32;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> data;

  std::size_t numel() const {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
  }
  // Every element converted to T (int64_t or double hold all types exactly).
  template <typename T>
  std::vector<T> values() const {
    std::vector<T> out(numel());
    const std::size_t size = element_size(type);
    if (data.size() != out.size() * size) throw std::runtime_error("tensor '" + name + "': size does not match shape");
    for (std::size_t i = 0; i < out.size(); ++i) {
      const unsigned char* p = data.data() + i * size;
      switch (type) {
        case ElementType::Float32: out[i] = static_cast<T>(load<float>(p)); break;
        case ElementType::UInt8: out[i] = static_cast<T>(load<std::uint8_t>(p)); break;
        case ElementType::Int8: out[i] = static_cast<T>(load<std::int8_t>(p)); break;
        case ElementType::Int32: out[i] = static_cast<T>(load<std::int32_t>(p)); break;
        case ElementType::Int64: out[i] = static_cast<T>(load<std::int64_t>(p)); break;
      }
    }
    return out;
  }
  // A tensor of `type` holding `values` (each converted; integers must fit).
  template <typename T>
  static EngineTensor of(std::string name, ElementType type, std::vector<std::int64_t> shape,
                         const std::vector<T>& values) {
    EngineTensor t{std::move(name), type, std::move(shape), {}};
    const std::size_t size = element_size(type);
    t.data.resize(values.size() * size);
    for (std::size_t i = 0; i < values.size(); ++i) {
      unsigned char* p = t.data.data() + i * size;
      switch (type) {
        case ElementType::Float32: store(p, static_cast<float>(values[i])); break;
        case ElementType::UInt8: store(p, static_cast<std::uint8_t>(values[i])); break;
        case ElementType::Int8: store(p, static_cast<std::int8_t>(values[i])); break;
        case ElementType::Int32: store(p, static_cast<std::int32_t>(values[i])); break;
        case ElementType::Int64: store(p, static_cast<std::int64_t>(values[i])); break;
      }
    }
    return t;
  }

 private:
  template <typename V>
  static V load(const unsigned char* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  template <typename V>
  static void store(unsigned char* p, V v) {
    std::memcpy(p, &v, sizeof v);
  }
};

struct OnnxAttribute {
  std::string name;
  std::int32_t type = QSDK_ATTRIBUTE_INT;  // QSDK_ATTRIBUTE_*
  std::int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<double> floats;
};

struct OnnxNode {
  std::string name, op_type;
  std::vector<std::string> inputs, outputs;
  std::vector<OnnxAttribute> attributes;

  const OnnxAttribute* attribute(const std::string& n) const {
    for (const auto& a : attributes)
      if (a.name == n) return &a;
    return nullptr;
  }
  std::int64_t int_attribute(const std::string& n, std::int64_t fallback) const {
    const auto* a = attribute(n);
    return a ? a->i : fallback;
  }
  std::vector<std::int64_t> ints_attribute(const std::string& n, std::vector<std::int64_t> fallback) const {
    const auto* a = attribute(n);
    return a ? a->ints : fallback;
  }
};

// The quantized model an engine runs (abi.h, qsdk_engine_model).
struct EngineModel {
  std::string onnx_bytes;  // serialized ONNX QDQ ModelProto
  std::string onnx_path;   // the same bytes as a file
  std::vector<OnnxNode> nodes;
  std::map<std::string, EngineTensor> initializers;
  std::vector<std::string> inputs, outputs;
};

struct EngineResult {
  std::vector<EngineTensor> outputs;        // in EngineModel::outputs order
  std::vector<EngineTensor> intermediates;  // optional: QuantizeLinear outputs by ONNX name, as integers
};

// A backend's engine: runs `model` on float32 `inputs` (the model's input
// order). Throw std::exception to report a failure; its message reaches the
// report.
using Engine = std::function<EngineResult(const EngineModel& model, const std::vector<EngineTensor>& inputs)>;

}  // namespace qsdk
