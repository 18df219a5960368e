#include "qsdk/spec.h"

#include <array>
#include <cstdio>
#include <utility>

namespace qsdk {
namespace {

// One table per enum keeps to_string and parse in step.
template <typename E, std::size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;

constexpr NameTable<DType, 4> kDTypeNames{
    {{DType::UInt8, "uint8"}, {DType::Int8, "int8"}, {DType::Int16, "int16"}, {DType::Int32, "int32"}}};
constexpr NameTable<Granularity, 2> kGranularityNames{
    {{Granularity::PerTensor, "per_tensor"}, {Granularity::PerChannel, "per_channel"}}};
constexpr NameTable<Scheme, 2> kSchemeNames{{{Scheme::Affine, "affine"}, {Scheme::Symmetric, "symmetric"}}};
constexpr NameTable<ObserverKind, 5> kObserverNames{{{ObserverKind::MinMax, "minmax"},
                                                     {ObserverKind::MovingAverageMinMax, "moving_average_minmax"},
                                                     {ObserverKind::HistogramPercentile, "histogram_percentile"},
                                                     {ObserverKind::HistogramEntropy, "histogram_entropy"},
                                                     {ObserverKind::MSE, "mse"}}};
constexpr NameTable<SpecKind, 6> kSpecKindNames{{{SpecKind::Float, "float"},
                                                 {SpecKind::Observed, "observed"},
                                                 {SpecKind::Fixed, "fixed"},
                                                 {SpecKind::Shared, "shared"},
                                                 {SpecKind::Derived, "derived"},
                                                 {SpecKind::Dynamic, "dynamic"}}};

template <typename E, std::size_t N>
const char* name_of(const NameTable<E, N>& table, E value) {
  for (const auto& [e, name] : table)
    if (e == value) return name;
  return "?";
}

template <typename E, std::size_t N>
bool value_of(const NameTable<E, N>& table, const std::string& name, E& out) {
  for (const auto& [e, n] : table)
    if (name == n) {
      out = e;
      return true;
    }
  return false;
}

QuantSpec observed(DType dtype, std::int64_t lo, std::int64_t hi, Scheme scheme) {
  QuantSpec s;
  s.kind = SpecKind::Observed;
  s.dtype = dtype;
  s.quant_min = lo;
  s.quant_max = hi;
  s.scheme = scheme;
  return s;
}

}  // namespace

bool operator==(const QuantSpec& a, const QuantSpec& b) {
  return a.kind == b.kind && a.dtype == b.dtype && a.quant_min == b.quant_min && a.quant_max == b.quant_max &&
         a.scheme == b.scheme && a.granularity == b.granularity && a.axis == b.axis && a.observer == b.observer &&
         a.reduce_range == b.reduce_range && a.eps == b.eps && a.scale == b.scale && a.zero_point == b.zero_point &&
         a.shared_with == b.shared_with && a.derived_from == b.derived_from;
}

namespace spec {

QuantSpec float_() { return QuantSpec{}; }

QuantSpec uint8_affine(int bits) { return observed(DType::UInt8, 0, (std::int64_t{1} << bits) - 1, Scheme::Affine); }

QuantSpec int_affine(int bits) {
  const std::int64_t half = std::int64_t{1} << (bits - 1);
  return observed(bits > 8 ? DType::Int16 : DType::Int8, -half, half - 1, Scheme::Affine);
}

QuantSpec int8_symmetric(int bits) {
  const std::int64_t limit = (std::int64_t{1} << (bits - 1)) - 1;
  return observed(DType::Int8, -limit, limit, Scheme::Symmetric);
}

QuantSpec int8_symmetric_per_channel(int axis, int bits) {
  QuantSpec s = int8_symmetric(bits);
  s.granularity = Granularity::PerChannel;
  s.axis = axis;
  return s;
}

QuantSpec fixed(double scale, std::int64_t zero_point, DType dtype, std::int64_t quant_min, std::int64_t quant_max) {
  QuantSpec s = observed(dtype, quant_min, quant_max, Scheme::Affine);
  s.kind = SpecKind::Fixed;
  s.scale = scale;
  s.zero_point = zero_point;
  return s;
}

QuantSpec shared_with(EdgeRef edge) {
  QuantSpec s;
  s.kind = SpecKind::Shared;
  s.shared_with = edge;
  return s;
}

QuantSpec derived_bias(EdgeRef input, EdgeRef weight) {
  QuantSpec s = observed(DType::Int32, -2147483648LL, 2147483647LL, Scheme::Symmetric);
  s.kind = SpecKind::Derived;
  s.derived_from = {input, weight};
  return s;
}

QuantSpec dynamic_uint8() {
  QuantSpec s = uint8_affine();
  s.kind = SpecKind::Dynamic;
  return s;
}

}  // namespace spec

std::pair<std::int64_t, std::int64_t> dtype_limits(DType d) {
  switch (d) {
    case DType::UInt8: return {0, 255};
    case DType::Int8: return {-128, 127};
    case DType::Int16: return {-32768, 32767};
    case DType::Int32: return {-2147483648LL, 2147483647LL};
  }
  return {0, 0};
}

const char* to_string(DType v) { return name_of(kDTypeNames, v); }
const char* to_string(Granularity v) { return name_of(kGranularityNames, v); }
const char* to_string(Scheme v) { return name_of(kSchemeNames, v); }
const char* to_string(ObserverKind v) { return name_of(kObserverNames, v); }
const char* to_string(SpecKind v) { return name_of(kSpecKindNames, v); }

std::string to_string(const EdgeRef& e) {
  if (e.is_output()) return "out(" + std::to_string(e.node) + ")";
  return "in(" + std::to_string(e.node) + "," + std::to_string(e.input) + ")";
}

bool parse(const std::string& name, DType& out) { return value_of(kDTypeNames, name, out); }
bool parse(const std::string& name, Granularity& out) { return value_of(kGranularityNames, name, out); }
bool parse(const std::string& name, Scheme& out) { return value_of(kSchemeNames, name, out); }
bool parse(const std::string& name, ObserverKind& out) { return value_of(kObserverNames, name, out); }
bool parse(const std::string& name, SpecKind& out) { return value_of(kSpecKindNames, name, out); }

bool parse(const std::string& text, EdgeRef& out) {
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
