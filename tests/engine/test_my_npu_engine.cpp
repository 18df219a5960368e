// The my-npu template's bit-accurate engine (examples/vendor-plugin,
// my_npu_engine.h) on small QDQ models built by hand, against results
// computed by hand. No LibTorch, no ONNX: EngineModel is plain data.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "my_npu_engine.h"

using qsdk::ElementType;
using qsdk::EngineModel;
using qsdk::EngineResult;
using qsdk::EngineTensor;
using qsdk::OnnxAttribute;
using qsdk::OnnxNode;
namespace detail = my_npu::detail;

namespace {

using Shape = std::vector<std::int64_t>;
using Ints = std::vector<std::int64_t>;
using Reals = std::vector<double>;

OnnxAttribute int_attr(const std::string& name, std::int64_t i) {
  OnnxAttribute a;
  a.name = name;
  a.type = QSDK_ATTRIBUTE_INT;
  a.i = i;
  return a;
}
OnnxAttribute ints_attr(const std::string& name, Ints ints) {
  OnnxAttribute a;
  a.name = name;
  a.type = QSDK_ATTRIBUTE_INTS;
  a.ints = std::move(ints);
  return a;
}

// A QDQ model under construction: initializers and nodes, in order.
struct Builder {
  EngineModel m;

  void input(const std::string& name) { m.inputs.push_back(name); }
  void output(const std::string& name) { m.outputs.push_back(name); }
  void node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
            std::vector<std::string> outputs, std::vector<OnnxAttribute> attributes = {}) {
    m.nodes.push_back(OnnxNode{name, op, std::move(inputs), std::move(outputs), std::move(attributes)});
  }
  template <typename T>
  void initializer(const std::string& name, ElementType type, Shape shape, const std::vector<T>& values) {
    m.initializers[name] = EngineTensor::of<T>(name, type, std::move(shape), values);
  }
  // Scale and zero point initializers `<prefix>_scale`, `<prefix>_zp`: scalars,
  // or 1-D when there is more than one.
  void qparams(const std::string& prefix, const Reals& scales, ElementType zp_type, const Ints& zps) {
    const Shape shape = scales.size() == 1 ? Shape{} : Shape{static_cast<std::int64_t>(scales.size())};
    initializer(prefix + "_scale", ElementType::Float32, shape, scales);
    initializer(prefix + "_zp", zp_type, shape, zps);
  }
  // QuantizeLinear `<x>_q` then DequantizeLinear `<x>_dq` of tensor x, per tensor.
  std::string qdq(const std::string& x, double scale, ElementType zp_type, std::int64_t zp) {
    qparams(x, {scale}, zp_type, {zp});
    node("QuantizeLinear", x + "_quantize", {x, x + "_scale", x + "_zp"}, {x + "_q"});
    node("DequantizeLinear", x + "_dequantize", {x + "_q", x + "_scale", x + "_zp"}, {x + "_dq"});
    return x + "_dq";
  }
  // An integer constant behind a DequantizeLinear (axis 0 when per channel): its output name.
  std::string constant(const std::string& name, ElementType type, Shape shape, const Ints& values, const Reals& scales,
                       const Ints& zps) {
    initializer(name, type, std::move(shape), values);
    qparams(name, scales, type, zps);
    node("DequantizeLinear", name + "_dequantize", {name, name + "_scale", name + "_zp"}, {name + "_dq"},
         {int_attr("axis", 0)});
    return name + "_dq";
  }
};

EngineTensor float_input(const std::string& name, Shape shape, const Reals& values) {
  return EngineTensor::of<double>(name, ElementType::Float32, std::move(shape), values);
}

const EngineTensor& intermediate(const EngineResult& r, const std::string& name) {
  for (const auto& t : r.intermediates)
    if (t.name == name) return t;
  throw std::runtime_error("no intermediate '" + name + "'");
}

std::string error_of(const EngineModel& m, const std::vector<EngineTensor>& inputs) {
  try {
    my_npu::run(m, inputs);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

constexpr std::int32_t kInt32Min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t kInt32Max = std::numeric_limits<std::int32_t>::max();

}  // namespace

TEST_CASE("my-npu declares gemmlowp arithmetic with half away from zero rounding") {
  const qsdk::Arithmetic a = my_npu::declared_arithmetic();
  CHECK(a.rounding == qsdk::Rounding::HalfAwayFromZero);
  CHECK(a.multiplier == qsdk::Multiplier::Gemmlowp);
  CHECK(a.accumulator_bits == 32);
  CHECK(a.accumulator_overflow == qsdk::Overflow::Saturate);
  CHECK(a.pooling_rounding == qsdk::Rounding::HalfAwayFromZero);
  CHECK(a.elementwise_rounding == qsdk::Rounding::HalfToEven);
}

TEST_CASE("QuantizeMultiplier, SRDHM and RDBPOT give gemmlowp's values") {
  SUBCASE("QuantizeMultiplier") {
    auto check = [](double m, std::int32_t m0, int shift) {
      const detail::QuantizedMultiplier q = detail::quantize_multiplier(m);
      CHECK(q.multiplier == m0);
      CHECK(q.shift == shift);
    };
    check(0.5, 1 << 30, 0);
    check(0.25, 1 << 30, -1);
    check(1.0, 1 << 30, 1);
    check(0.75, 3 << 29, 0);
    check(0.0, 0, 0);
    // A fraction that rounds to 2^31: halved, exponent up.
    check(1.0 - 1e-12, 1 << 30, 1);
  }
  SUBCASE("SaturatingRoundingDoublingHighMul") {
    CHECK(detail::saturating_rounding_doubling_high_mul(3, 1 << 30) == 2);  // 1.5 -> 2
    // gemmlowp's nudge rounds negative ties toward zero: -1.5 -> -1, -0.5 -> 0.
    CHECK(detail::saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1);
    CHECK(detail::saturating_rounding_doubling_high_mul(46, 1 << 30) == 23);  // exact
    CHECK(detail::saturating_rounding_doubling_high_mul(1, 1 << 30) == 1);    // 0.5 -> 1
    CHECK(detail::saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0);
    CHECK(detail::saturating_rounding_doubling_high_mul(-5, 1 << 30) == -2);
    CHECK(detail::saturating_rounding_doubling_high_mul(kInt32Min, kInt32Min) == kInt32Max);
    CHECK(detail::saturating_rounding_doubling_high_mul(kInt32Max, kInt32Max) == kInt32Max - 1);
  }
  SUBCASE("RoundingDivideByPOT rounds ties away from zero") {
    CHECK(detail::rounding_divide_by_pot(5, 1) == 3);    // 2.5 -> 3
    CHECK(detail::rounding_divide_by_pot(-5, 1) == -3);  // -2.5 -> -3
    CHECK(detail::rounding_divide_by_pot(6, 2) == 2);    // 1.5 -> 2
    CHECK(detail::rounding_divide_by_pot(-6, 2) == -2);  // -1.5 -> -2
    CHECK(detail::rounding_divide_by_pot(5, 2) == 1);    // 1.25 -> 1
    CHECK(detail::rounding_divide_by_pot(-7, 2) == -2);  // -1.75 -> -2
    CHECK(detail::rounding_divide_by_pot(7, 0) == 7);
    CHECK(detail::rounding_divide_by_pot(kInt32Min, 31) == -1);
    CHECK(detail::rounding_divide_by_pot(kInt32Min, 32) == -1);  // -0.5 -> -1
    CHECK(detail::rounding_divide_by_pot(kInt32Max, 40) == 0);
  }
  SUBCASE("the ties-to-even bug rounds ties to even, and only ties") {
    CHECK(detail::rounding_divide_by_pot(5, 1, true) == 2);    // 2.5 -> 2
    CHECK(detail::rounding_divide_by_pot(7, 1, true) == 4);    // 3.5 -> 4
    CHECK(detail::rounding_divide_by_pot(-5, 1, true) == -2);  // -2.5 -> -2
    CHECK(detail::rounding_divide_by_pot(6, 2, true) == 2);    // 1.5 -> 2
    CHECK(detail::rounding_divide_by_pot(5, 2, true) == 1);
    CHECK(detail::rounding_divide_by_pot(7, 2, true) == 2);
    CHECK(detail::rounding_divide_by_pot(7, 0, true) == 7);
  }
  SUBCASE("MultiplyByQuantizedMultiplier") {
    // 10 x 0.25 = 2.5: SRDHM halves exactly (5), the shift rounds the tie.
    CHECK(detail::multiply_by_quantized_multiplier(10, detail::quantize_multiplier(0.25)) == 3);
    CHECK(detail::multiply_by_quantized_multiplier(10, detail::quantize_multiplier(0.25), true) == 2);
    CHECK(detail::multiply_by_quantized_multiplier(12, detail::quantize_multiplier(1.0)) == 12);  // left shift
    CHECK(detail::multiply_by_quantized_multiplier(7, detail::quantize_multiplier(3.0)) == 21);
    // 4.0 = 2^30 x 2^(3 - 31): acc x 8 saturates first, then x 0.5.
    CHECK(detail::multiply_by_quantized_multiplier(1 << 30, detail::quantize_multiplier(4.0)) == 1 << 30);
    CHECK(detail::multiply_by_quantized_multiplier(-(1 << 30), detail::quantize_multiplier(4.0)) == -(1 << 30));
  }
}

namespace {

// input [1,1,2,2] -> Q/DQ (scale 1) -> Conv 1x1 (weight 1, bias 0) -> Q (scale 4) -> DQ -> output:
// each output is input / 4.
EngineModel one_by_one_conv(ElementType act) {
  Builder b;
  b.input("x");
  const std::string x = b.qdq("x", 1.0, act, 0);
  const std::string w = b.constant("w", ElementType::Int8, {1, 1, 1, 1}, {1}, {1.0}, {0});
  const std::string bias = b.constant("b", ElementType::Int32, {1}, {0}, {1.0}, {0});
  b.node("Conv", "conv", {x, w, bias}, {"y"}, {ints_attr("kernel_shape", {1, 1})});
  b.qparams("y", {4.0}, act, {0});
  b.node("QuantizeLinear", "y_quantize", {"y", "y_scale", "y_zp"}, {"y_q"});
  b.node("DequantizeLinear", "y_dequantize", {"y_q", "y_scale", "y_zp"}, {"out"});
  b.output("out");
  return b.m;
}

}  // namespace

TEST_CASE("a 1x1 conv whose outputs land on .5 rounds them away from zero") {
  SUBCASE("uint8: 0.5 -> 1 and 2.5 -> 3") {
    const EngineModel m = one_by_one_conv(ElementType::UInt8);
    const std::vector<EngineTensor> in{float_input("x", {1, 1, 2, 2}, {2, 10, 4, 3})};
    const EngineResult r = my_npu::run(m, in);
    REQUIRE(r.outputs.size() == 1);
    CHECK(r.outputs[0].name == "out");
    CHECK(r.outputs[0].type == ElementType::Float32);
    CHECK(r.outputs[0].shape == Shape{1, 1, 2, 2});
    // 2/4 = 0.5 -> 1; 10/4 = 2.5 -> 3; 4/4 = 1; 3/4 = 0.75 -> 1.
    CHECK(r.outputs[0].values<double>() == Reals{4, 12, 4, 4});
    REQUIRE(r.intermediates.size() == 2);
    CHECK(intermediate(r, "x_q").type == ElementType::UInt8);
    CHECK(intermediate(r, "x_q").values<std::int64_t>() == Ints{2, 10, 4, 3});
    const EngineTensor& y = intermediate(r, "y_q");
    CHECK(y.type == ElementType::UInt8);
    CHECK(y.shape == Shape{1, 1, 2, 2});
    CHECK(y.values<std::int64_t>() == Ints{1, 3, 1, 1});

    const EngineResult wrong = my_npu::run(m, in, /*ties_to_even_bug=*/true);
    const Ints bugged = intermediate(wrong, "y_q").values<std::int64_t>();
    CHECK(bugged == Ints{0, 2, 1, 1});  // the ties, one lower; the rest as before
    CHECK(wrong.outputs[0].values<double>() == Reals{0, 8, 4, 4});
  }
  SUBCASE("int8: -0.5 -> -1 and -2.5 -> -3") {
    const EngineModel m = one_by_one_conv(ElementType::Int8);
    const std::vector<EngineTensor> in{float_input("x", {1, 1, 2, 2}, {-2, -10, 2, 10})};
    const EngineResult r = my_npu::run(m, in);
    CHECK(intermediate(r, "x_q").type == ElementType::Int8);
    CHECK(intermediate(r, "y_q").type == ElementType::Int8);
    CHECK(intermediate(r, "y_q").values<std::int64_t>() == Ints{-1, -3, 1, 3});
    CHECK(r.outputs[0].values<double>() == Reals{-4, -12, 4, 12});
    const EngineResult wrong = my_npu::run(m, in, true);
    CHECK(intermediate(wrong, "y_q").values<std::int64_t>() == Ints{0, -2, 0, 2});
  }
}

TEST_CASE("a padded, strided conv with per-channel weight scales") {
  // x 1x1x3x3 = 1..9 (scale 1); weights 2x1x3x3: channel 0 all 1 (scale 1),
  // channel 1 all -1 (scale 0.5); pads 1, stride 2: four windows of 2x2
  // valid inputs, sums 12, 16, 24, 28. Output int8, scale 1, zero point 0.
  Builder b;
  b.input("x");
  const std::string x = b.qdq("x", 1.0, ElementType::UInt8, 0);
  Ints weights(9, 1);
  weights.insert(weights.end(), 9, -1);
  const std::string w = b.constant("w", ElementType::Int8, {2, 1, 3, 3}, weights, {1.0, 0.5}, {0, 0});
  const std::string bias = b.constant("b", ElementType::Int32, {2}, {0, 0}, {1.0, 0.5}, {0, 0});
  b.node("Conv", "conv", {x, w, bias}, {"y"}, {ints_attr("pads", {1, 1, 1, 1}), ints_attr("strides", {2, 2})});
  b.qparams("y", {1.0}, ElementType::Int8, {0});
  b.node("QuantizeLinear", "y_quantize", {"y", "y_scale", "y_zp"}, {"y_q"});
  b.node("DequantizeLinear", "y_dequantize", {"y_q", "y_scale", "y_zp"}, {"out"});
  b.output("out");
  const EngineResult r = my_npu::run(b.m, {float_input("x", {1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})});
  const EngineTensor& y = intermediate(r, "y_q");
  CHECK(y.shape == Shape{1, 2, 2, 2});
  // Channel 1: -sum x 0.5 = -6, -8, -12, -14 (exact).
  CHECK(y.values<std::int64_t>() == Ints{12, 16, 24, 28, -6, -8, -12, -14});
}

namespace {

// input [2,2] -> Q/DQ (scale 0.5, int8 zero point -3) -> Gemm (transB) with
// weights [[1, 10], [-3, 1]] (scales 0.5, 0.25) and bias [4, -8] -> [Relu] ->
// Q (scale 0.5, uint8 zero point 10) -> DQ -> output.
EngineModel gemm_model(bool relu) {
  Builder b;
  b.input("a");
  const std::string a = b.qdq("a", 0.5, ElementType::Int8, -3);
  const std::string w = b.constant("w", ElementType::Int8, {2, 2}, {1, 10, -3, 1}, {0.5, 0.25}, {0, 0});
  const std::string bias = b.constant("b", ElementType::Int32, {2}, {4, -8}, {0.25, 0.125}, {0, 0});
  b.node("Gemm", "fc", {a, w, bias}, {"y"}, {int_attr("transB", 1)});
  std::string y = "y";
  if (relu) {
    b.node("Relu", "relu", {"y"}, {"y_relu"});
    y = "y_relu";
  }
  b.qparams("y", {0.5}, ElementType::UInt8, {10});
  b.node("QuantizeLinear", "y_quantize", {y, "y_scale", "y_zp"}, {"y_q"});
  b.node("DequantizeLinear", "y_dequantize", {"y_q", "y_scale", "y_zp"}, {"out"});
  b.output("out");
  return b.m;
}

}  // namespace

TEST_CASE("a gemm with a negative zero point, per-channel weights, a bias, saturation and relu") {
  // qa = round(a / 0.5) - 3 = [-1, 1, -5, 57]; qa - za = [2, 4, -2, 60].
  // acc = [4 + 2 + 40, -8 - 6 + 4, 4 - 2 + 600, -8 + 6 + 60] = [46, -10, 602, 58].
  // Multipliers 0.5 x 0.5 / 0.5 = 0.5 and 0.5 x 0.25 / 0.5 = 0.25:
  // [23, -2.5 -> -3, 301, 14.5 -> 15] + 10 = [33, 7, 311 -> 255, 25].
  const std::vector<EngineTensor> in{float_input("a", {2, 2}, {1.0, 2.0, -1.0, 30.0})};
  SUBCASE("without relu") {
    const EngineResult r = my_npu::run(gemm_model(false), in);
    CHECK(intermediate(r, "a_q").type == ElementType::Int8);
    CHECK(intermediate(r, "a_q").values<std::int64_t>() == Ints{-1, 1, -5, 57});
    CHECK(intermediate(r, "y_q").shape == Shape{2, 2});
    CHECK(intermediate(r, "y_q").values<std::int64_t>() == Ints{33, 7, 255, 25});
    CHECK(r.outputs[0].values<double>() == Reals{11.5, -1.5, 122.5, 7.5});
  }
  SUBCASE("with relu the negative one stops at the zero point") {
    const EngineResult r = my_npu::run(gemm_model(true), in);
    CHECK(intermediate(r, "y_q").values<std::int64_t>() == Ints{33, 10, 255, 25});
    CHECK(r.outputs[0].values<double>() == Reals{11.5, 0, 122.5, 7.5});
  }
  SUBCASE("the bug rounds both ties to even") {
    // -2.5 -> -2 and 14.5 -> 14.
    const EngineResult r = my_npu::run(gemm_model(false), in, true);
    CHECK(intermediate(r, "y_q").values<std::int64_t>() == Ints{33, 8, 255, 24});
  }
}

namespace {

// x1 (scale 0.5, zp 10) + x2 (scale 0.25, zp 128) [-> Relu] -> Q (scale 0.5, zp 5).
EngineModel add_model(bool relu, bool constant_rhs) {
  Builder b;
  b.input("x1");
  const std::string x1 = b.qdq("x1", 0.5, ElementType::UInt8, 10);
  std::string x2;
  if (constant_rhs) {
    x2 = b.constant("c", ElementType::UInt8, {1}, {140}, {0.25}, {128});  // 3.0
  } else {
    b.input("x2");
    x2 = b.qdq("x2", 0.25, ElementType::UInt8, 128);
  }
  b.node("Add", "add", {x1, x2}, {"s"});
  std::string s = "s";
  if (relu) {
    b.node("Relu", "relu", {"s"}, {"s_relu"});
    s = "s_relu";
  }
  b.qparams("s", {0.5}, ElementType::UInt8, {5});
  b.node("QuantizeLinear", "s_quantize", {s, "s_scale", "s_zp"}, {"s_q"});
  b.node("DequantizeLinear", "s_dequantize", {"s_q", "s_scale", "s_zp"}, {"out"});
  b.output("out");
  return b.m;
}

}  // namespace

TEST_CASE("an add of inputs with different scales rounds half to even") {
  // q1 = [12, 15, 10, 16], q2 = [129, 126, 124, 131]; sums 1.25, 2.0, -1.0,
  // 3.75; / 0.5 = 2.5 -> 2, 4, -2, 7.5 -> 8; + 5.
  const std::vector<EngineTensor> in{float_input("x1", {1, 4}, {1.0, 2.5, 0.0, 3.0}),
                                     float_input("x2", {1, 4}, {0.25, -0.5, -1.0, 0.75})};
  SUBCASE("without relu") {
    const EngineResult r = my_npu::run(add_model(false, false), in);
    CHECK(intermediate(r, "x1_q").values<std::int64_t>() == Ints{12, 15, 10, 16});
    CHECK(intermediate(r, "x2_q").values<std::int64_t>() == Ints{129, 126, 124, 131});
    CHECK(intermediate(r, "s_q").values<std::int64_t>() == Ints{7, 9, 3, 13});
    CHECK(r.outputs[0].values<double>() == Reals{1.0, 2.0, -1.0, 4.0});
    // The bug is in the rounding shift: the add does not use it.
    CHECK(intermediate(my_npu::run(add_model(false, false), in, true), "s_q").values<std::int64_t>() ==
          Ints{7, 9, 3, 13});
  }
  SUBCASE("with relu") {
    const EngineResult r = my_npu::run(add_model(true, false), in);
    CHECK(intermediate(r, "s_q").values<std::int64_t>() == Ints{7, 9, 5, 13});
  }
  SUBCASE("a broadcast constant") {
    // x1 + 3.0 = 4, 5.5, 3, 6; / 0.5 = 8, 11, 6, 12; + 5.
    const EngineResult r = my_npu::run(add_model(false, true), {in[0]});
    CHECK(intermediate(r, "s_q").shape == Shape{1, 4});
    CHECK(intermediate(r, "s_q").values<std::int64_t>() == Ints{13, 16, 11, 17});
  }
}

TEST_CASE("flatten between a DequantizeLinear and a QuantizeLinear with the same qparams keeps the integers") {
  auto model = [](double out_scale) {
    Builder b;
    b.input("x");
    const std::string x = b.qdq("x", 0.5, ElementType::UInt8, 3);
    b.node("Flatten", "flatten", {x}, {"f"});
    b.qparams("f", {out_scale}, ElementType::UInt8, {3});
    b.node("QuantizeLinear", "f_quantize", {"f", "f_scale", "f_zp"}, {"f_q"});
    b.node("DequantizeLinear", "f_dequantize", {"f_q", "f_scale", "f_zp"}, {"out"});
    b.output("out");
    return b.m;
  };
  const std::vector<EngineTensor> in{float_input("x", {1, 2, 1, 2}, {0.0, 0.5, 1.0, -1.5})};
  const EngineResult r = my_npu::run(model(0.5), in);
  CHECK(intermediate(r, "f_q").shape == Shape{1, 4});
  CHECK(intermediate(r, "f_q").values<std::int64_t>() == Ints{3, 4, 5, 0});
  CHECK(r.outputs[0].shape == Shape{1, 4});
  CHECK(r.outputs[0].values<double>() == Reals{0.0, 0.5, 1.0, -1.5});
  CHECK(starts_with(error_of(model(0.25), in), "unsupported: QuantizeLinear node 'f_quantize'"));
}

TEST_CASE("what the NPU does not run is reported as unsupported") {
  SUBCASE("an unknown op") {
    Builder b;
    b.input("x");
    const std::string x = b.qdq("x", 0.5, ElementType::UInt8, 0);
    b.node("Softmax", "softmax", {x}, {"y"});
    b.output("y");
    const std::string e = error_of(b.m, {float_input("x", {1, 4}, {0, 1, 2, 3})});
    CHECK(starts_with(e, "unsupported: Softmax node 'softmax'"));
  }
  SUBCASE("a float conv") {
    Builder b;
    b.input("x");
    b.initializer<double>("w", ElementType::Float32, {1, 1, 1, 1}, {1.0});
    b.node("Conv", "conv", {"x", "w"}, {"y"});
    b.output("y");
    CHECK(starts_with(error_of(b.m, {float_input("x", {1, 1, 1, 1}, {1})}), "unsupported: Conv node 'conv'"));
  }
  auto conv_with_bias = [](const std::string& bias_kind) {
    Builder b;
    b.input("x");
    const std::string x = b.qdq("x", 1.0, ElementType::UInt8, 0);
    const std::string w = b.constant("w", ElementType::Int8, {1, 1, 1, 1}, {1}, {1.0}, {0});
    std::vector<std::string> inputs{x, w};
    if (bias_kind == "float") {
      b.initializer<double>("b", ElementType::Float32, {1}, {0.5});
      inputs.push_back("b");
    } else if (bias_kind == "empty") {
      inputs.push_back("");
    }
    b.node("Conv", "conv", inputs, {"y"});
    b.qparams("y", {1.0}, ElementType::UInt8, {0});
    b.node("QuantizeLinear", "y_quantize", {"y", "y_scale", "y_zp"}, {"y_q"});
    b.node("DequantizeLinear", "y_dequantize", {"y_q", "y_scale", "y_zp"}, {"out"});
    b.output("out");
    return error_of(b.m, {float_input("x", {1, 1, 1, 1}, {1})});
  };
  SUBCASE("a conv with a float bias, or none") {
    CHECK(starts_with(conv_with_bias("float"), "unsupported: Conv node 'conv': has a float bias"));
    CHECK(starts_with(conv_with_bias("empty"), "unsupported: Conv node 'conv': has no bias"));
    CHECK(starts_with(conv_with_bias("absent"), "unsupported: Conv node 'conv': has no bias"));
  }
  SUBCASE("a relu on a dequantized tensor") {
    Builder b;
    b.input("x");
    const std::string x = b.qdq("x", 0.5, ElementType::UInt8, 0);
    b.node("Relu", "relu", {x}, {"y"});
    b.output("y");
    CHECK(starts_with(error_of(b.m, {float_input("x", {1, 1}, {1})}), "unsupported: Relu node 'relu'"));
  }
  SUBCASE("per-channel activations") {
    Builder b;
    b.input("x");
    b.qparams("x", {0.5, 0.25}, ElementType::UInt8, {0, 0});
    b.node("QuantizeLinear", "x_quantize", {"x", "x_scale", "x_zp"}, {"x_q"}, {int_attr("axis", 1)});
    b.node("DequantizeLinear", "x_dequantize", {"x_q", "x_scale", "x_zp"}, {"out"}, {int_attr("axis", 1)});
    b.output("out");
    CHECK(starts_with(error_of(b.m, {float_input("x", {1, 2}, {1, 1})}),
                      "unsupported: QuantizeLinear node 'x_quantize'"));
  }
  SUBCASE("a conv output that is not requantized") {
    Builder b;
    b.input("x");
    const std::string x = b.qdq("x", 1.0, ElementType::UInt8, 0);
    const std::string w = b.constant("w", ElementType::Int8, {1, 1, 1, 1}, {1}, {1.0}, {0});
    const std::string bias = b.constant("b", ElementType::Int32, {1}, {0}, {1.0}, {0});
    b.node("Conv", "conv", {x, w, bias}, {"y"});
    b.output("y");
    CHECK(starts_with(error_of(b.m, {float_input("x", {1, 1, 1, 1}, {1})}), "unsupported: Conv node 'conv'"));
  }
}

TEST_CASE("malformed models are errors, not unsupported") {
  SUBCASE("a missing initializer") {
    Builder b;
    b.input("x");
    b.node("QuantizeLinear", "x_quantize", {"x", "nowhere_scale"}, {"x_q"});
    b.output("x_q");
    const std::string e = error_of(b.m, {float_input("x", {1}, {1})});
    CHECK(e.find("nowhere_scale") != std::string::npos);
    CHECK_FALSE(starts_with(e, "unsupported"));
  }
  SUBCASE("the wrong number of inputs") {
    const std::string e = error_of(one_by_one_conv(ElementType::UInt8), {});
    CHECK(!e.empty());
    CHECK_FALSE(starts_with(e, "unsupported"));
  }
  SUBCASE("weights of the wrong size") {
    EngineModel m = one_by_one_conv(ElementType::UInt8);
    m.initializers["w"].shape = {1, 1, 1, 2};  // one value for two
    const std::string e = error_of(m, {float_input("x", {1, 1, 2, 2}, {1, 2, 3, 4})});
    CHECK(!e.empty());
    CHECK_FALSE(starts_with(e, "unsupported"));
  }
}
