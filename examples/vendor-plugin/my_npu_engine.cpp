// my-npu's bit-accurate engine: the shape of a vendor's C model of its
// hardware. It walks the ONNX QDQ graph qsdk exports, node by node, and
// computes on integers what the NPU computes:
//  - QuantizeLinear of a float tensor: round half to even, add the zero point;
//  - Conv / Gemm on DequantizeLinear inputs: an int64 sum of (q - zero point)
//    products plus the int32 bias, saturated to 32 bits, then requantized at
//    the QuantizeLinear that consumes it (directly or through one Relu) with
//    gemmlowp's fixed-point multiplier and rounding shift;
//  - Add of two DequantizeLinear outputs (then Relu), and a Relu of one: in
//    float64, rounded half to even at its QuantizeLinear;
//  - Flatten / Reshape between a DequantizeLinear and a QuantizeLinear with
//    the same qparams: the integers, reshaped;
//  - Identity: its input;
//  - DequantizeLinear to a graph output: float32.
// Anything else throws "unsupported: ...".
#include "my_npu_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace my_npu {

using qsdk::ElementType;
using qsdk::EngineModel;
using qsdk::EngineResult;
using qsdk::EngineTensor;
using qsdk::OnnxNode;

qsdk::Arithmetic declared_arithmetic() {
  qsdk::Arithmetic a;
  a.rounding = qsdk::Rounding::HalfAwayFromZero;
  a.multiplier = qsdk::Multiplier::Gemmlowp;
  a.accumulator_bits = 32;
  a.accumulator_overflow = qsdk::Overflow::Saturate;
  a.pooling_rounding = qsdk::Rounding::HalfAwayFromZero;
  a.elementwise_rounding = qsdk::Rounding::HalfToEven;
  return a;
}

namespace detail {

constexpr std::int64_t kInt32Min = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t kInt32Max = std::numeric_limits<std::int32_t>::max();

std::int32_t saturate_int32(std::int64_t v) { return static_cast<std::int32_t>(std::clamp(v, kInt32Min, kInt32Max)); }

QuantizedMultiplier quantize_multiplier(double real_multiplier) {
  if (real_multiplier == 0) return {};
  int exponent = 0;
  const double fraction = std::frexp(real_multiplier, &exponent);
  std::int64_t q = std::llround(fraction * 2147483648.0);
  if (q == (std::int64_t{1} << 31)) {
    q /= 2;
    ++exponent;
  }
  return {static_cast<std::int32_t>(q), exponent};
}

std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) {
  if (a == kInt32Min && b == kInt32Min) return static_cast<std::int32_t>(kInt32Max);
  const std::int64_t ab = std::int64_t{a} * std::int64_t{b};
  const std::int64_t nudge = ab >= 0 ? (std::int64_t{1} << 30) : (1 - (std::int64_t{1} << 30));
  return static_cast<std::int32_t>((ab + nudge) / (std::int64_t{1} << 31));
}

std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent, bool ties_to_even_bug) {
  if (exponent <= 0) return x;
  // Beyond 31 every int32 gives the same result as at 62: no overflow of the mask.
  const int e = std::min(exponent, 62);
  const std::int64_t v = x;
  const std::int64_t mask = (std::int64_t{1} << e) - 1;
  const std::int64_t rem = v & mask;
  const std::int64_t base = v >> e;  // arithmetic shift: floor
  if (ties_to_even_bug) {
    const std::int64_t half = std::int64_t{1} << (e - 1);
    return static_cast<std::int32_t>(base + ((rem > half || (rem == half && (base & 1))) ? 1 : 0));
  }
  const std::int64_t threshold = (mask >> 1) + (v < 0 ? 1 : 0);
  return static_cast<std::int32_t>(base + (rem > threshold ? 1 : 0));
}

std::int32_t multiply_by_quantized_multiplier(std::int32_t acc, QuantizedMultiplier m, bool ties_to_even_bug) {
  const int left = std::max(m.shift, 0);
  const int right = std::max(-m.shift, 0);
  // acc x 2^left, saturated (|acc| < 2^31: exact in int64 up to left = 32).
  const std::int32_t x = left >= 32 ? (acc > 0   ? static_cast<std::int32_t>(kInt32Max)
                                       : acc < 0 ? static_cast<std::int32_t>(kInt32Min)
                                                 : 0)
                                    : saturate_int32(std::int64_t{acc} * (std::int64_t{1} << left));
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m.multiplier), right, ties_to_even_bug);
}

}  // namespace detail

namespace {

// ---------------------------------------------------------------------------
// Tensors in flight

enum class Kind {
  Float,        // float values: a graph input or a float32 initializer
  Integers,     // a QuantizeLinear output or an integer initializer
  Dequantized,  // a DequantizeLinear output: the integers and their qparams
  Reshaped,     // a Flatten / Reshape of a Dequantized tensor (same qparams)
  Accumulator,  // a Conv / Gemm result: int32 accumulators, not yet requantized
  Sum           // an Add result: float64, not yet quantized
};

// Scales and zero points: one (per tensor) or one per index of `axis`.
struct QParams {
  std::vector<double> scales;
  std::vector<std::int64_t> zero_points;
  int axis = -1;  // -1: per tensor
  bool per_tensor() const { return axis < 0; }
};

struct Value {
  Kind kind = Kind::Float;
  std::vector<std::int64_t> shape;
  std::vector<double> reals;                // Float, Sum
  std::vector<std::int64_t> ints;           // Integers, Dequantized, Reshaped, Accumulator (int32 values)
  ElementType type = ElementType::Float32;  // Integers, Dequantized, Reshaped: the integer type
  QParams qparams;                          // Dequantized, Reshaped
  // Accumulator: input scale x weight scale per output channel; element i
  // is of channel (i / inner) % scales.size().
  std::vector<double> input_scales;
  std::int64_t inner = 1;
  bool relu = false;     // Accumulator, Sum: through a Relu
  std::string producer;  // "Conv node 'conv1'", for messages
};

std::string describe(const OnnxNode& n) { return n.op_type + " node '" + n.name + "'"; }

[[noreturn]] void unsupported(const OnnxNode& n, const std::string& why) {
  throw std::runtime_error("unsupported: " + describe(n) + ": " + why);
}
[[noreturn]] void malformed(const OnnxNode& n, const std::string& why) {
  throw std::runtime_error("my-npu engine: " + describe(n) + ": " + why);
}

std::int64_t numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s + "]";
}

std::pair<std::int64_t, std::int64_t> range_of(ElementType t) {
  return t == ElementType::Int8 ? std::pair<std::int64_t, std::int64_t>{-128, 127}
                                : std::pair<std::int64_t, std::int64_t>{0, 255};
}

// round half to even (the default floating-point rounding mode), then the
// zero point, clamped to the integer range; in double so huge values clamp.
std::int64_t quantize_real(double v, double scale, std::int64_t zero_point, ElementType type) {
  const auto [lo, hi] = range_of(type);
  const double q = std::nearbyint(v / scale) + static_cast<double>(zero_point);
  return static_cast<std::int64_t>(std::clamp(q, static_cast<double>(lo), static_cast<double>(hi)));
}

// ---------------------------------------------------------------------------
// The executor

class Executor {
 public:
  Executor(const EngineModel& model, bool ties_to_even_bug) : model_(model), bug_(ties_to_even_bug) {}

  EngineResult run(const std::vector<EngineTensor>& inputs) {
    if (inputs.size() != model_.inputs.size())
      throw std::runtime_error("my-npu engine: got " + std::to_string(inputs.size()) + " inputs for a model of " +
                               std::to_string(model_.inputs.size()));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].type != ElementType::Float32)
        throw std::runtime_error("my-npu engine: input '" + model_.inputs[i] + "' is " +
                                 qsdk::to_string(inputs[i].type) + "; the engine takes float32 inputs");
      Value v;
      v.kind = Kind::Float;
      v.shape = inputs[i].shape;
      v.reals = inputs[i].values<double>();
      v.producer = "graph input '" + model_.inputs[i] + "'";
      values_[model_.inputs[i]] = std::move(v);
    }
    for (const OnnxNode& n : model_.nodes) step(n);

    EngineResult result;
    for (const std::string& name : model_.outputs) result.outputs.push_back(graph_output(name));
    result.intermediates = std::move(intermediates_);
    return result;
  }

 private:
  void step(const OnnxNode& n) {
    if (n.outputs.empty() || n.outputs[0].empty()) malformed(n, "has no output");
    Value out;
    if (n.op_type == "QuantizeLinear") {
      out = quantize_linear(n);
    } else if (n.op_type == "DequantizeLinear") {
      out = dequantize_linear(n);
    } else if (n.op_type == "Conv") {
      out = conv(n);
    } else if (n.op_type == "Gemm") {
      out = gemm(n);
    } else if (n.op_type == "Add") {
      out = add(n);
    } else if (n.op_type == "Relu") {
      out = relu(n);
    } else if (n.op_type == "Flatten" || n.op_type == "Reshape") {
      out = reshape(n);
    } else if (n.op_type == "Identity") {  // the export names its outputs through one
      out = input(n, 0);
    } else {
      unsupported(n, "the my-npu engine does not run this op");
    }
    if (n.outputs.size() > 1)
      for (std::size_t i = 1; i < n.outputs.size(); ++i)
        if (!n.outputs[i].empty()) unsupported(n, "has more than one output");
    out.producer = describe(n);
    values_[n.outputs[0]] = std::move(out);
  }

  // --- inputs -------------------------------------------------------------

  static bool has_input(const OnnxNode& n, std::size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); }

  // Input i of n: a graph input, an earlier node's output, or an initializer.
  const Value& input(const OnnxNode& n, std::size_t i) {
    if (!has_input(n, i)) malformed(n, "input " + std::to_string(i) + " is missing");
    const std::string& name = n.inputs[i];
    if (auto it = values_.find(name); it != values_.end()) return it->second;
    auto init = model_.initializers.find(name);
    if (init == model_.initializers.end())
      malformed(n, "input '" + name + "' is neither a graph input, an initializer nor an earlier node's output");
    const EngineTensor& t = init->second;
    Value v;
    v.shape = t.shape;
    v.type = t.type;
    v.producer = "initializer '" + name + "'";
    if (t.type == ElementType::Float32) {
      v.kind = Kind::Float;
      v.reals = t.values<double>();
    } else {
      v.kind = Kind::Integers;
      v.ints = t.values<std::int64_t>();
    }
    return values_[name] = std::move(v);
  }

  // Input i of n, a DequantizeLinear output; anything else is unsupported.
  const Value& dequantized_input(const OnnxNode& n, std::size_t i, const std::string& role) {
    const Value& v = input(n, i);
    switch (v.kind) {
      case Kind::Dequantized: return v;
      case Kind::Float: unsupported(n, role + " '" + n.inputs[i] + "' is float (" + v.producer + "), not quantized");
      case Kind::Accumulator:
      case Kind::Sum:
        unsupported(n, role + " '" + n.inputs[i] + "' is the result of " + v.producer + ", not requantized");
      case Kind::Reshaped:
        unsupported(n, role + " '" + n.inputs[i] + "' comes from " + v.producer + " without a QuantizeLinear between");
      case Kind::Integers: malformed(n, role + " '" + n.inputs[i] + "' is integer; expected a DequantizeLinear output");
    }
    return v;
  }

  // A per-tensor DequantizeLinear input (activations).
  const Value& per_tensor_input(const OnnxNode& n, std::size_t i, const std::string& role) {
    const Value& v = dequantized_input(n, i, role);
    if (!v.qparams.per_tensor())
      unsupported(n, role + " '" + n.inputs[i] + "' is quantized per channel; activations must be per tensor");
    return v;
  }

  // Scales (float, each finite and >= 0) and zero points (integers) of a Q/DQ node.
  std::vector<double> scales(const OnnxNode& n, std::size_t i) {
    const Value& s = input(n, i);
    if (s.kind != Kind::Float) malformed(n, "scale '" + n.inputs[i] + "' is not a float tensor");
    for (double v : s.reals)
      if (!std::isfinite(v) || v < 0) malformed(n, "scale '" + n.inputs[i] + "' holds " + std::to_string(v));
    if (s.reals.empty()) malformed(n, "scale '" + n.inputs[i] + "' is empty");
    return s.reals;
  }

  // --- ops ----------------------------------------------------------------

  Value dequantize_linear(const OnnxNode& n) {
    const Value& x = input(n, 0);
    if (x.kind != Kind::Integers) {
      if (x.kind == Kind::Float) malformed(n, "dequantizes float tensor '" + n.inputs[0] + "'");
      malformed(n, "input '" + n.inputs[0] + "' is not an integer tensor (it comes from " + x.producer + ")");
    }
    if (x.type != ElementType::UInt8 && x.type != ElementType::Int8 && x.type != ElementType::Int32)
      unsupported(n, std::string("dequantizes ") + qsdk::to_string(x.type) + " (uint8, int8 or int32 only)");
    Value out;
    out.kind = Kind::Dequantized;
    out.shape = x.shape;
    out.ints = x.ints;
    out.type = x.type;
    out.qparams.scales = scales(n, 1);
    const std::size_t count = out.qparams.scales.size();
    if (has_input(n, 2)) {
      const Value& zp = input(n, 2);
      if (zp.kind != Kind::Integers || zp.type != x.type)
        malformed(n, "zero point '" + n.inputs[2] + "' is not of the input's type (" + qsdk::to_string(x.type) + ")");
      out.qparams.zero_points = zp.ints;
    } else {
      out.qparams.zero_points.assign(count, 0);
    }
    if (out.qparams.zero_points.size() != count)
      malformed(
          n, std::to_string(count) + " scales but " + std::to_string(out.qparams.zero_points.size()) + " zero points");
    if (count > 1) {
      const auto rank = static_cast<std::int64_t>(x.shape.size());
      std::int64_t axis = n.int_attribute("axis", 1);
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank) malformed(n, "axis out of range for shape " + shape_string(x.shape));
      if (x.shape[static_cast<std::size_t>(axis)] != static_cast<std::int64_t>(count))
        malformed(n, std::to_string(count) + " scales along axis " + std::to_string(axis) + " of shape " +
                         shape_string(x.shape));
      out.qparams.axis = static_cast<int>(axis);
    }
    return out;
  }

  Value quantize_linear(const OnnxNode& n) {
    const std::vector<double> s = scales(n, 1);
    if (s.size() != 1) unsupported(n, "quantizes per channel; activations must be per tensor");
    const double scale = s[0];
    if (scale == 0) malformed(n, "scale is 0");
    std::int64_t zero_point = 0;
    ElementType type = ElementType::UInt8;  // ONNX's default without a zero point
    if (has_input(n, 2)) {
      const Value& zp = input(n, 2);
      if (zp.kind != Kind::Integers) malformed(n, "zero point '" + n.inputs[2] + "' is not an integer tensor");
      if (zp.ints.size() != 1) unsupported(n, "has per-channel zero points; activations must be per tensor");
      if (zp.type != ElementType::UInt8 && zp.type != ElementType::Int8)
        unsupported(n, std::string("quantizes to ") + qsdk::to_string(zp.type) + " (uint8 or int8 only)");
      zero_point = zp.ints[0];
      type = zp.type;
    }
    const auto [lo, hi] = range_of(type);

    const Value& x = input(n, 0);
    Value out;
    out.kind = Kind::Integers;
    out.shape = x.shape;
    out.type = type;
    out.ints.resize(x.kind == Kind::Float || x.kind == Kind::Sum ? x.reals.size() : x.ints.size());
    switch (x.kind) {
      case Kind::Float:
      case Kind::Sum:
        for (std::size_t i = 0; i < x.reals.size(); ++i) {
          if (std::isnan(x.reals[i])) malformed(n, "input '" + n.inputs[0] + "' holds NaN");
          out.ints[i] = quantize_real(x.reals[i], scale, zero_point, type);
        }
        break;
      case Kind::Accumulator: {
        std::vector<detail::QuantizedMultiplier> multipliers;
        for (double input_scale : x.input_scales)
          multipliers.push_back(detail::quantize_multiplier(input_scale / scale));
        const auto channels = static_cast<std::int64_t>(multipliers.size());
        for (std::size_t i = 0; i < x.ints.size(); ++i) {
          const auto c = static_cast<std::size_t>((static_cast<std::int64_t>(i) / x.inner) % channels);
          const std::int32_t y =
              detail::multiply_by_quantized_multiplier(static_cast<std::int32_t>(x.ints[i]), multipliers[c], bug_);
          std::int64_t q = std::int64_t{y} + zero_point;
          if (x.relu) q = std::max(q, zero_point);
          out.ints[i] = std::clamp(q, lo, hi);
        }
        break;
      }
      case Kind::Reshaped: {
        const QParams& p = x.qparams;
        if (!p.per_tensor() || p.scales[0] != scale || p.zero_points[0] != zero_point || x.type != type)
          unsupported(n, "requantizes the output of " + x.producer + " to other qparams than its DequantizeLinear's");
        out.ints = x.ints;
        break;
      }
      case Kind::Dequantized:
        unsupported(n, "quantizes DequantizeLinear output '" + n.inputs[0] + "' again (no op between)");
      case Kind::Integers: malformed(n, "quantizes integer tensor '" + n.inputs[0] + "'");
    }
    intermediates_.push_back(EngineTensor::of<std::int64_t>(n.outputs[0], type, out.shape, out.ints));
    return out;
  }

  // The weight's scales and zero points for each of `channels` output
  // channels (per tensor: repeated; per channel: along axis 0 only).
  static void weight_qparams(const OnnxNode& n, const Value& w, std::int64_t channels, std::vector<double>& scales,
                             std::vector<std::int64_t>& zero_points) {
    const QParams& p = w.qparams;
    if (!p.per_tensor() && p.axis != 0) unsupported(n, "weights are quantized along axis " + std::to_string(p.axis));
    const auto count = static_cast<std::size_t>(channels);
    scales = p.per_tensor() ? std::vector<double>(count, p.scales[0]) : p.scales;
    zero_points = p.per_tensor() ? std::vector<std::int64_t>(count, p.zero_points[0]) : p.zero_points;
  }

  // The int32 bias, one per output channel (q - zero point), from input i.
  std::vector<std::int64_t> bias(const OnnxNode& n, std::size_t i, std::int64_t channels) {
    if (!has_input(n, i)) unsupported(n, "has no bias");
    const Value& b = input(n, i);
    if (b.kind == Kind::Float) unsupported(n, "has a float bias '" + n.inputs[i] + "'");
    const Value& d = dequantized_input(n, i, "bias");
    if (d.type != ElementType::Int32) unsupported(n, std::string("has a ") + qsdk::to_string(d.type) + " bias");
    const auto count = static_cast<std::int64_t>(d.ints.size());
    if (count != channels && count != 1)
      malformed(n, "bias has " + std::to_string(count) + " values for " + std::to_string(channels) + " channels");
    if (d.shape.size() > 1 && !(d.shape.size() == 2 && d.shape[0] == 1))
      unsupported(n, "bias of shape " + shape_string(d.shape) + " (one value per output channel only)");
    std::vector<std::int64_t> out(static_cast<std::size_t>(channels));
    for (std::int64_t c = 0; c < channels; ++c) {
      const auto k = static_cast<std::size_t>(count == 1 ? 0 : c);
      const std::int64_t zp = d.qparams.zero_points.size() == 1 ? d.qparams.zero_points[0] : d.qparams.zero_points[k];
      out[static_cast<std::size_t>(c)] = d.ints[k] - zp;
    }
    return out;
  }

  Value conv(const OnnxNode& n) {
    const Value& x = per_tensor_input(n, 0, "input");
    const Value& w = dequantized_input(n, 1, "weight");
    if (x.shape.size() != 4) unsupported(n, "input of shape " + shape_string(x.shape) + " (2-D NCHW convolution only)");
    if (w.shape.size() != 4) malformed(n, "weight of shape " + shape_string(w.shape) + " for a 2-D convolution");
    if (const auto* a = n.attribute("auto_pad"); a && !a->s.empty() && a->s != "NOTSET")
      unsupported(n, "auto_pad " + a->s);
    const std::int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const std::int64_t M = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3];
    const std::int64_t group = n.int_attribute("group", 1);
    const auto strides = n.ints_attribute("strides", {1, 1});
    const auto pads = n.ints_attribute("pads", {0, 0, 0, 0});
    const auto dilations = n.ints_attribute("dilations", {1, 1});
    const auto kernel = n.ints_attribute("kernel_shape", {KH, KW});
    if (strides.size() != 2 || pads.size() != 4 || dilations.size() != 2 || kernel.size() != 2)
      malformed(n, "strides, pads, dilations or kernel_shape of the wrong length");
    if (kernel[0] != KH || kernel[1] != KW) malformed(n, "kernel_shape does not match the weight");
    if (group < 1 || C != Cg * group || M % group != 0)
      malformed(n, "group " + std::to_string(group) + " with input " + shape_string(x.shape) + " and weight " +
                       shape_string(w.shape));
    if (strides[0] < 1 || strides[1] < 1 || dilations[0] < 1 || dilations[1] < 1)
      malformed(n, "strides and dilations must be positive");
    const std::int64_t OH = (H + pads[0] + pads[2] - dilations[0] * (KH - 1) - 1) / strides[0] + 1;
    const std::int64_t OW = (W + pads[1] + pads[3] - dilations[1] * (KW - 1) - 1) / strides[1] + 1;
    if (OH < 1 || OW < 1) malformed(n, "the kernel does not fit the padded input");

    std::vector<double> w_scales;
    std::vector<std::int64_t> w_zps;
    weight_qparams(n, w, M, w_scales, w_zps);
    const std::vector<std::int64_t> b = bias(n, 2, M);
    const std::int64_t zx = x.qparams.zero_points[0];

    Value out;
    out.kind = Kind::Accumulator;
    out.shape = {N, M, OH, OW};
    out.ints.resize(static_cast<std::size_t>(N * M * OH * OW));
    out.inner = OH * OW;
    for (std::int64_t m = 0; m < M; ++m)
      out.input_scales.push_back(x.qparams.scales[0] * w_scales[static_cast<std::size_t>(m)]);
    const std::int64_t per_group = M / group;
    auto at = [](const std::vector<std::int64_t>& v, std::int64_t i) { return v[static_cast<std::size_t>(i)]; };
    for (std::int64_t b_n = 0; b_n < N; ++b_n)
      for (std::int64_t m = 0; m < M; ++m) {
        const std::int64_t g = m / per_group;
        const std::int64_t zw = w_zps[static_cast<std::size_t>(m)];
        for (std::int64_t oh = 0; oh < OH; ++oh)
          for (std::int64_t ow = 0; ow < OW; ++ow) {
            std::int64_t acc = b[static_cast<std::size_t>(m)];
            for (std::int64_t ci = 0; ci < Cg; ++ci)
              for (std::int64_t kh = 0; kh < KH; ++kh) {
                const std::int64_t ih = oh * strides[0] - pads[0] + kh * dilations[0];
                if (ih < 0 || ih >= H) continue;  // padding contributes 0
                for (std::int64_t kw = 0; kw < KW; ++kw) {
                  const std::int64_t iw = ow * strides[1] - pads[1] + kw * dilations[1];
                  if (iw < 0 || iw >= W) continue;
                  const std::int64_t qx = at(x.ints, ((b_n * C + g * Cg + ci) * H + ih) * W + iw);
                  const std::int64_t qw = at(w.ints, ((m * Cg + ci) * KH + kh) * KW + kw);
                  acc += (qx - zx) * (qw - zw);
                }
              }
            out.ints[static_cast<std::size_t>(((b_n * M + m) * OH + oh) * OW + ow)] = detail::saturate_int32(acc);
          }
      }
    return out;
  }

  Value gemm(const OnnxNode& n) {
    auto real_attribute = [&](const char* name) {
      const auto* a = n.attribute(name);
      return !a ? 1.0 : a->type == QSDK_ATTRIBUTE_FLOAT ? a->f : static_cast<double>(a->i);
    };
    if (real_attribute("alpha") != 1 || real_attribute("beta") != 1) unsupported(n, "alpha or beta is not 1");
    if (n.int_attribute("transA", 0) != 0) unsupported(n, "transA = 1");
    if (n.int_attribute("transB", 0) != 1) unsupported(n, "transB = 0 (weights as [out, in] only)");
    const Value& a = per_tensor_input(n, 0, "input");
    const Value& w = dequantized_input(n, 1, "weight");
    if (a.shape.size() != 2 || w.shape.size() != 2 || a.shape[1] != w.shape[1])
      malformed(n, "input " + shape_string(a.shape) + " and weight " + shape_string(w.shape) + " do not multiply");
    const std::int64_t N = a.shape[0], K = a.shape[1], M = w.shape[0];
    std::vector<double> w_scales;
    std::vector<std::int64_t> w_zps;
    weight_qparams(n, w, M, w_scales, w_zps);
    const std::vector<std::int64_t> b = bias(n, 2, M);
    const std::int64_t za = a.qparams.zero_points[0];

    Value out;
    out.kind = Kind::Accumulator;
    out.shape = {N, M};
    out.ints.resize(static_cast<std::size_t>(N * M));
    out.inner = 1;
    for (std::int64_t m = 0; m < M; ++m)
      out.input_scales.push_back(a.qparams.scales[0] * w_scales[static_cast<std::size_t>(m)]);
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t m = 0; m < M; ++m) {
        std::int64_t acc = b[static_cast<std::size_t>(m)];
        const std::int64_t zw = w_zps[static_cast<std::size_t>(m)];
        for (std::int64_t k = 0; k < K; ++k)
          acc +=
              (a.ints[static_cast<std::size_t>(i * K + k)] - za) * (w.ints[static_cast<std::size_t>(m * K + k)] - zw);
        out.ints[static_cast<std::size_t>(i * M + m)] = detail::saturate_int32(acc);
      }
    return out;
  }

  // a + b in float64 from the dequantized inputs, with numpy broadcasting.
  Value add(const OnnxNode& n) {
    const Value& a = per_tensor_input(n, 0, "input");
    const Value& b = per_tensor_input(n, 1, "input");
    const std::size_t rank = std::max(a.shape.size(), b.shape.size());
    // Shapes right-aligned, padded with 1s.
    auto padded = [rank](const std::vector<std::int64_t>& s) {
      std::vector<std::int64_t> p(rank - s.size(), 1);
      p.insert(p.end(), s.begin(), s.end());
      return p;
    };
    const auto sa = padded(a.shape), sb = padded(b.shape);
    std::vector<std::int64_t> shape(rank);
    for (std::size_t d = 0; d < rank; ++d) {
      if (sa[d] != sb[d] && sa[d] != 1 && sb[d] != 1)
        malformed(n, "shapes " + shape_string(a.shape) + " and " + shape_string(b.shape) + " do not broadcast");
      shape[d] = sa[d] == 1 ? sb[d] : sa[d];
    }
    const double scale_a = a.qparams.scales[0], scale_b = b.qparams.scales[0];
    const std::int64_t zp_a = a.qparams.zero_points[0], zp_b = b.qparams.zero_points[0];

    Value out;
    out.kind = Kind::Sum;
    out.shape = shape;
    out.reals.resize(static_cast<std::size_t>(numel(shape)));
    std::vector<std::int64_t> index(rank, 0);
    for (std::size_t i = 0; i < out.reals.size(); ++i) {
      // Offsets into a and b: broadcast dimensions stay at 0.
      std::int64_t ia = 0, ib = 0;
      for (std::size_t d = 0; d < rank; ++d) {
        ia = ia * sa[d] + (sa[d] == 1 ? 0 : index[d]);
        ib = ib * sb[d] + (sb[d] == 1 ? 0 : index[d]);
      }
      const double va = static_cast<double>(a.ints[static_cast<std::size_t>(ia)] - zp_a) * scale_a;
      const double vb = static_cast<double>(b.ints[static_cast<std::size_t>(ib)] - zp_b) * scale_b;
      out.reals[i] = va + vb;
      for (std::size_t d = rank; d-- > 0;) {  // next index, row-major
        if (++index[d] < shape[d]) break;
        index[d] = 0;
      }
    }
    return out;
  }

  // Relu between a Conv / Gemm / Add and its QuantizeLinear.
  Value relu(const OnnxNode& n) {
    const Value& x = input(n, 0);
    if (x.kind == Kind::Dequantized) {  // a Relu the backend left in float: on the real values, per tensor
      const Value& d = per_tensor_input(n, 0, "input");
      Value out;
      out.kind = Kind::Sum;
      out.shape = d.shape;
      out.relu = true;
      for (std::int64_t q : d.ints)
        out.reals.push_back(std::max(static_cast<double>(q - d.qparams.zero_points[0]) * d.qparams.scales[0], 0.0));
      return out;
    }
    if ((x.kind != Kind::Accumulator && x.kind != Kind::Sum) || x.relu)
      unsupported(n,
                  "a Relu runs only between a Conv, Gemm or Add and a QuantizeLinear (input from " + x.producer + ")");
    Value out = x;
    out.relu = true;
    for (double& v : out.reals) v = std::max(v, 0.0);  // Sum; an accumulator clamps at its zero point
    return out;
  }

  // Flatten / Reshape of a DequantizeLinear output (to a QuantizeLinear of the same qparams).
  Value reshape(const OnnxNode& n) {
    const Value& x = input(n, 0);
    if (x.kind != Kind::Reshaped) per_tensor_input(n, 0, "input");
    const auto rank = static_cast<std::int64_t>(x.shape.size());
    std::vector<std::int64_t> shape;
    if (n.op_type == "Flatten") {
      std::int64_t axis = n.int_attribute("axis", 1);
      if (axis < 0) axis += rank;
      if (axis < 0 || axis > rank) malformed(n, "axis out of range for shape " + shape_string(x.shape));
      const auto split = x.shape.begin() + axis;
      shape = {numel(std::vector<std::int64_t>(x.shape.begin(), split)),
               numel(std::vector<std::int64_t>(split, x.shape.end()))};
    } else {
      if (!has_input(n, 1)) malformed(n, "has no shape input");
      auto init = model_.initializers.find(n.inputs[1]);
      if (init == model_.initializers.end()) unsupported(n, "shape '" + n.inputs[1] + "' is not an initializer");
      if (init->second.type != ElementType::Int64) malformed(n, "shape '" + n.inputs[1] + "' is not int64");
      shape = init->second.values<std::int64_t>();
      const bool allow_zero = n.int_attribute("allowzero", 0) != 0;
      std::int64_t known = 1, inferred = -1;
      for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 0 && !allow_zero) {
          if (static_cast<std::int64_t>(d) >= rank) malformed(n, "shape copies a dimension the input lacks");
          shape[d] = x.shape[d];
        }
        if (shape[d] == -1) {
          if (inferred >= 0) malformed(n, "shape has more than one -1");
          inferred = static_cast<std::int64_t>(d);
        } else if (shape[d] < 0) {
          malformed(n, "shape has a negative dimension");
        } else {
          known *= shape[d];
        }
      }
      if (inferred >= 0) {
        if (known == 0 || numel(x.shape) % known != 0) malformed(n, "cannot infer the -1 dimension");
        shape[static_cast<std::size_t>(inferred)] = numel(x.shape) / known;
      }
    }
    if (numel(shape) != numel(x.shape))
      malformed(n, "reshapes " + shape_string(x.shape) + " to " + shape_string(shape));
    Value out = x;
    out.kind = Kind::Reshaped;
    out.shape = shape;
    return out;
  }

  // --- outputs ------------------------------------------------------------

  EngineTensor graph_output(const std::string& name) {
    auto it = values_.find(name);
    if (it == values_.end())
      throw std::runtime_error("my-npu engine: graph output '" + name + "' is computed by no node");
    const Value& v = it->second;
    std::vector<double> reals;
    switch (v.kind) {
      case Kind::Float: reals = v.reals; break;
      case Kind::Dequantized: {
        const QParams& p = v.qparams;
        std::int64_t inner = 1;
        if (!p.per_tensor())
          for (std::size_t d = static_cast<std::size_t>(p.axis) + 1; d < v.shape.size(); ++d) inner *= v.shape[d];
        const auto count = static_cast<std::int64_t>(p.scales.size());
        reals.resize(v.ints.size());
        for (std::size_t i = 0; i < v.ints.size(); ++i) {
          const auto c = static_cast<std::size_t>(p.per_tensor() ? 0 : (static_cast<std::int64_t>(i) / inner) % count);
          reals[i] =
              static_cast<double>(static_cast<float>(static_cast<double>(v.ints[i] - p.zero_points[c]) * p.scales[c]));
        }
        break;
      }
      default:
        throw std::runtime_error("unsupported: " + v.producer + ": its output '" + name +
                                 "' is a graph output; the engine returns DequantizeLinear outputs only");
    }
    return EngineTensor::of<double>(name, ElementType::Float32, v.shape, reals);
  }

  const EngineModel& model_;
  const bool bug_;
  std::map<std::string, Value> values_;
  std::vector<EngineTensor> intermediates_;
};

}  // namespace

EngineResult run(const EngineModel& model, const std::vector<EngineTensor>& inputs, bool ties_to_even_bug) {
  return Executor(model, ties_to_even_bug).run(inputs);
}

}  // namespace my_npu
