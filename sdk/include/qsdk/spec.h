// Quantization specs: what one edge of the graph (an input, weight, bias or
// output of a matched pattern) gets. Plain data, like PyTorch's
// QuantizationSpec family, so the host can validate, print and compare them.
//
// No LibTorch here: a plugin that includes only qsdk headers compiles in
// about a second. Header-only: a plugin links nothing of qsdk's. The enum
// values are the C ABI's (qsdk/abi.h).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "qsdk/abi.h"

namespace qsdk {

// Integer storage of a quantized value. Narrower widths (4-bit weights, say)
// use Int8/UInt8 storage with a narrower [quant_min, quant_max], as PT2E does.
enum class DType : std::int32_t {
  UInt8 = QSDK_DTYPE_UINT8,
  Int8 = QSDK_DTYPE_INT8,
  Int16 = QSDK_DTYPE_INT16,
  Int32 = QSDK_DTYPE_INT32
};

enum class Granularity : std::int32_t { PerTensor = QSDK_PER_TENSOR, PerChannel = QSDK_PER_CHANNEL };

// Symmetric: zero point fixed at 0 (int8) or at the midpoint (uint8).
enum class Scheme : std::int32_t { Affine = QSDK_AFFINE, Symmetric = QSDK_SYMMETRIC };

// How observed statistics become qparams (prepare/calibrate stage).
enum class ObserverKind : std::int32_t {
  MinMax = QSDK_OBSERVER_MINMAX,                              // running min and max of everything seen
  MovingAverageMinMax = QSDK_OBSERVER_MOVING_AVERAGE_MINMAX,  // exponential moving average of per-batch min/max
  HistogramPercentile = QSDK_OBSERVER_HISTOGRAM_PERCENTILE,   // histogram, clip at a percentile
  HistogramEntropy = QSDK_OBSERVER_HISTOGRAM_ENTROPY,         // histogram, KL-minimising clip (TensorRT style)
  MSE = QSDK_OBSERVER_MSE                                     // scale that minimises quantization MSE
};

// What kind of spec this is; decides which of QuantSpec's fields matter.
enum class SpecKind : std::int32_t {
  Float = QSDK_SPEC_FLOAT,        // leave this edge in floating point
  Observed = QSDK_SPEC_OBSERVED,  // qparams computed by an observer from calibration data
  Fixed = QSDK_SPEC_FIXED,        // qparams given (sigmoid/softmax outputs): scale, zero_point
  Shared = QSDK_SPEC_SHARED,      // same qparams as another edge of the match (shared_with)
  Derived = QSDK_SPEC_DERIVED,    // scale = product of the sources' scales, zero point 0 (bias)
  Dynamic = QSDK_SPEC_DYNAMIC     // activation qparams computed at run time (dynamic linear)
};

// One edge of a matched pattern. `node` indexes the pattern's op chain;
// `input` is the operand index of that op, or kOutput for its result. An
// operand that is a list (cat's tensors) means every element of the list.
struct EdgeRef {
  static constexpr int kOutput = QSDK_EDGE_OUTPUT;
  int node = 0;
  int input = 0;

  bool is_output() const { return input == kOutput; }
  friend bool operator==(const EdgeRef& a, const EdgeRef& b) { return a.node == b.node && a.input == b.input; }
  friend bool operator!=(const EdgeRef& a, const EdgeRef& b) { return !(a == b); }
};

// Operand `input` of pattern node `node`.
inline EdgeRef in(int node, int input) { return EdgeRef{node, input}; }
// Result of pattern node `node`.
inline EdgeRef out(int node) { return EdgeRef{node, EdgeRef::kOutput}; }

struct QuantSpec {
  SpecKind kind = SpecKind::Float;

  // Observed, Fixed, Derived, Dynamic: the quantized representation.
  DType dtype = DType::UInt8;
  std::int64_t quant_min = 0;
  std::int64_t quant_max = 255;
  Scheme scheme = Scheme::Affine;
  Granularity granularity = Granularity::PerTensor;
  int axis = -1;  // channel axis; required when granularity is PerChannel

  // Observed and Dynamic.
  ObserverKind observer = ObserverKind::MinMax;
  bool reduce_range = false;            // drop one bit of range (old x86 VNNI overflow workaround)
  double eps = 1.1920928955078125e-07;  // smallest scale allowed (float32 epsilon, as torch)

  // Fixed.
  double scale = 0.0;
  std::int64_t zero_point = 0;

  // Shared: the edge whose qparams this one reuses.
  EdgeRef shared_with{};

  // Derived: scale = product of these edges' scales (input x weight for a bias).
  std::vector<EdgeRef> derived_from;

  // --- fluent modifiers, for readable rule tables ---------------------------
  QuantSpec& with_observer(ObserverKind k) {
    observer = k;
    return *this;
  }
  QuantSpec& with_range(std::int64_t lo, std::int64_t hi) {
    quant_min = lo;
    quant_max = hi;
    return *this;
  }
  QuantSpec& with_reduce_range(bool on = true) {
    reduce_range = on;
    return *this;
  }
  QuantSpec& with_eps(double e) {
    eps = e;
    return *this;
  }
};

// Names used in YAML, reports and error messages; parse is the inverse of
// to_string and returns false when the name is unknown. Readable
// constructors for the common specs are in namespace spec: `bits` narrows
// the range within the storage type (e.g. int8_symmetric(4) is [-8, 7] in
// int8):
//   float_()                            leave the edge in float
//   uint8_affine(bits)                  unsigned affine activations, [0, 2^bits - 1]
//   int_affine(bits)                    signed affine (int16 storage above 8 bits)
//   int8_symmetric(bits)                signed symmetric per-tensor weights, [-(2^(bits-1) - 1), 2^(bits-1) - 1]
//   int8_symmetric_per_channel(axis, bits)  per-channel along `axis` (conv/linear weights: 0)
//   fixed(scale, zero_point, ...)       known output range, e.g. sigmoid: fixed(1.0 / 256, 0)
//   shared_with(edge)                   another edge's qparams
//   derived_bias(input, weight)         int32 bias, scale = input scale x weight scale (per-channel
//                                       when the weight is)
//   dynamic_uint8()                     run-time activation qparams (dynamic linear)

namespace spec_detail {

// One table per enum keeps to_string and parse in step.
template <typename E, std::size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;

inline constexpr NameTable<DType, 4> kDTypeNames{
    {{DType::UInt8, "uint8"}, {DType::Int8, "int8"}, {DType::Int16, "int16"}, {DType::Int32, "int32"}}};
inline constexpr NameTable<Granularity, 2> kGranularityNames{
    {{Granularity::PerTensor, "per_tensor"}, {Granularity::PerChannel, "per_channel"}}};
inline constexpr NameTable<Scheme, 2> kSchemeNames{{{Scheme::Affine, "affine"}, {Scheme::Symmetric, "symmetric"}}};
inline constexpr NameTable<ObserverKind, 5> kObserverNames{
    {{ObserverKind::MinMax, "minmax"},
     {ObserverKind::MovingAverageMinMax, "moving_average_minmax"},
     {ObserverKind::HistogramPercentile, "histogram_percentile"},
     {ObserverKind::HistogramEntropy, "histogram_entropy"},
     {ObserverKind::MSE, "mse"}}};
inline constexpr NameTable<SpecKind, 6> kSpecKindNames{{{SpecKind::Float, "float"},
                                                        {SpecKind::Observed, "observed"},
                                                        {SpecKind::Fixed, "fixed"},
                                                        {SpecKind::Shared, "shared"},
                                                        {SpecKind::Derived, "derived"},
                                                        {SpecKind::Dynamic, "dynamic"}}};

template <typename E, std::size_t N>
inline const char* name_of(const NameTable<E, N>& table, E value) {
  for (const auto& [e, name] : table)
    if (e == value) return name;
  return "?";
}

template <typename E, std::size_t N>
inline bool value_of(const NameTable<E, N>& table, const std::string& name, E& out) {
  for (const auto& [e, n] : table)
    if (name == n) {
      out = e;
      return true;
    }
  return false;
}

inline QuantSpec observed(DType dtype, std::int64_t lo, std::int64_t hi, Scheme scheme) {
  QuantSpec s;
  s.kind = SpecKind::Observed;
  s.dtype = dtype;
  s.quant_min = lo;
  s.quant_max = hi;
  s.scheme = scheme;
  return s;
}

}  // namespace spec_detail

inline bool operator==(const QuantSpec& a, const QuantSpec& b) {
  return a.kind == b.kind && a.dtype == b.dtype && a.quant_min == b.quant_min && a.quant_max == b.quant_max &&
         a.scheme == b.scheme && a.granularity == b.granularity && a.axis == b.axis && a.observer == b.observer &&
         a.reduce_range == b.reduce_range && a.eps == b.eps && a.scale == b.scale && a.zero_point == b.zero_point &&
         a.shared_with == b.shared_with && a.derived_from == b.derived_from;
}
inline bool operator!=(const QuantSpec& a, const QuantSpec& b) { return !(a == b); }

namespace spec {

inline QuantSpec float_() { return QuantSpec{}; }

inline QuantSpec uint8_affine(int bits = 8) {
  return spec_detail::observed(DType::UInt8, 0, (std::int64_t{1} << bits) - 1, Scheme::Affine);
}

inline QuantSpec int_affine(int bits = 8) {
  const std::int64_t half = std::int64_t{1} << (bits - 1);
  return spec_detail::observed(bits > 8 ? DType::Int16 : DType::Int8, -half, half - 1, Scheme::Affine);
}

inline QuantSpec int8_symmetric(int bits = 8) {
  const std::int64_t limit = (std::int64_t{1} << (bits - 1)) - 1;
  return spec_detail::observed(DType::Int8, -limit, limit, Scheme::Symmetric);
}

inline QuantSpec int8_symmetric_per_channel(int axis = 0, int bits = 8) {
  QuantSpec s = int8_symmetric(bits);
  s.granularity = Granularity::PerChannel;
  s.axis = axis;
  return s;
}

inline QuantSpec fixed(double scale, std::int64_t zero_point, DType dtype = DType::UInt8, std::int64_t quant_min = 0,
                       std::int64_t quant_max = 255) {
  QuantSpec s = spec_detail::observed(dtype, quant_min, quant_max, Scheme::Affine);
  s.kind = SpecKind::Fixed;
  s.scale = scale;
  s.zero_point = zero_point;
  return s;
}

inline QuantSpec shared_with(EdgeRef edge) {
  QuantSpec s;
  s.kind = SpecKind::Shared;
  s.shared_with = edge;
  return s;
}

inline QuantSpec derived_bias(EdgeRef input = in(0, 0), EdgeRef weight = in(0, 1)) {
  QuantSpec s = spec_detail::observed(DType::Int32, -2147483648LL, 2147483647LL, Scheme::Symmetric);
  s.kind = SpecKind::Derived;
  s.derived_from = {input, weight};
  return s;
}

inline QuantSpec dynamic_uint8() {
  QuantSpec s = uint8_affine();
  s.kind = SpecKind::Dynamic;
  return s;
}

}  // namespace spec

inline std::pair<std::int64_t, std::int64_t> dtype_limits(DType d) {
  switch (d) {
    case DType::UInt8: return {0, 255};
    case DType::Int8: return {-128, 127};
    case DType::Int16: return {-32768, 32767};
    case DType::Int32: return {-2147483648LL, 2147483647LL};
  }
  return {0, 0};
}

inline const char* to_string(DType v) { return spec_detail::name_of(spec_detail::kDTypeNames, v); }
inline const char* to_string(Granularity v) { return spec_detail::name_of(spec_detail::kGranularityNames, v); }
inline const char* to_string(Scheme v) { return spec_detail::name_of(spec_detail::kSchemeNames, v); }
inline const char* to_string(ObserverKind v) { return spec_detail::name_of(spec_detail::kObserverNames, v); }
inline const char* to_string(SpecKind v) { return spec_detail::name_of(spec_detail::kSpecKindNames, v); }

inline std::string to_string(const EdgeRef& e) {
  if (e.is_output()) return "out(" + std::to_string(e.node) + ")";
  return "in(" + std::to_string(e.node) + "," + std::to_string(e.input) + ")";
}

inline bool parse(const std::string& name, DType& out) {
  return spec_detail::value_of(spec_detail::kDTypeNames, name, out);
}
inline bool parse(const std::string& name, Granularity& out) {
  return spec_detail::value_of(spec_detail::kGranularityNames, name, out);
}
inline bool parse(const std::string& name, Scheme& out) {
  return spec_detail::value_of(spec_detail::kSchemeNames, name, out);
}
inline bool parse(const std::string& name, ObserverKind& out) {
  return spec_detail::value_of(spec_detail::kObserverNames, name, out);
}
inline bool parse(const std::string& name, SpecKind& out) {
  return spec_detail::value_of(spec_detail::kSpecKindNames, name, out);
}

inline bool parse(const std::string& text, EdgeRef& out) {
  int node = 0, input = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "in(%d,%d)%c", &node, &input, &tail) == 2 && node >= 0 && input >= 0) {
    out = in(node, input);
    return true;
  }
  if (std::sscanf(text.c_str(), "out(%d)%c", &node, &tail) == 1 && node >= 0) {
    out = qsdk::out(node);
    return true;
  }
  return false;
}

}  // namespace qsdk
