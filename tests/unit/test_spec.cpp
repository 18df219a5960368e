// The SDK's spec constructors and names: what plugins declare through.
#include <doctest/doctest.h>

#include "qsdk/sdk.h"

using namespace qsdk;

TEST_CASE("spec constructors give PT2E's ranges") {
  SUBCASE("uint8 affine activations") {
    auto s = spec::uint8_affine();
    CHECK(s.kind == SpecKind::Observed);
    CHECK(s.dtype == DType::UInt8);
    CHECK(s.quant_min == 0);
    CHECK(s.quant_max == 255);
    CHECK(s.scheme == Scheme::Affine);
  }
  SUBCASE("narrow widths keep their storage type") {
    auto a4 = spec::uint8_affine(4);
    CHECK(a4.quant_max == 15);
    auto w4 = spec::int8_symmetric_per_channel(0, 4);
    CHECK(w4.dtype == DType::Int8);
    CHECK(w4.quant_min == -7);
    CHECK(w4.quant_max == 7);
    CHECK(w4.granularity == Granularity::PerChannel);
    CHECK(w4.axis == 0);
  }
  SUBCASE("16-bit activations use int16") {
    auto a16 = spec::int_affine(16);
    CHECK(a16.dtype == DType::Int16);
    CHECK(a16.quant_min == -32768);
    CHECK(a16.quant_max == 32767);
  }
  SUBCASE("derived bias is int32 from input and weight") {
    auto b = spec::derived_bias();
    CHECK(b.kind == SpecKind::Derived);
    CHECK(b.dtype == DType::Int32);
    REQUIRE(b.derived_from.size() == 2);
    CHECK(b.derived_from[0] == in(0, 0));
    CHECK(b.derived_from[1] == in(0, 1));
  }
  SUBCASE("fixed qparams") {
    auto f = spec::fixed(1.0 / 256, 0);
    CHECK(f.kind == SpecKind::Fixed);
    CHECK(f.scale == doctest::Approx(0.00390625));
  }
}

TEST_CASE("every enum name parses back to its value") {
  for (auto v : {DType::UInt8, DType::Int8, DType::Int16, DType::Int32}) {
    DType back{};
    REQUIRE(parse(to_string(v), back));
    CHECK(back == v);
  }
  for (auto v : {ObserverKind::MinMax, ObserverKind::MovingAverageMinMax, ObserverKind::HistogramPercentile,
                 ObserverKind::HistogramEntropy, ObserverKind::MSE}) {
    ObserverKind back{};
    REQUIRE(parse(to_string(v), back));
    CHECK(back == v);
  }
  for (auto v :
       {SpecKind::Float, SpecKind::Observed, SpecKind::Fixed, SpecKind::Shared, SpecKind::Derived, SpecKind::Dynamic}) {
    SpecKind back{};
    REQUIRE(parse(to_string(v), back));
    CHECK(back == v);
  }
  for (auto v : {Lowering::Reference, Lowering::OneDNN, Lowering::QNNPACK}) {
    Lowering back{};
    REQUIRE(parse(to_string(v), back));
    CHECK(back == v);
  }
  DType d{};
  CHECK_FALSE(parse("uint9", d));
}

TEST_CASE("edge references print and parse") {
  EdgeRef e{};
  REQUIRE(parse("in(2,1)", e));
  CHECK(e == in(2, 1));
  REQUIRE(parse("out(3)", e));
  CHECK(e == out(3));
  CHECK(to_string(in(0, 2)) == "in(0,2)");
  CHECK_FALSE(parse("in(1)", e));
  CHECK_FALSE(parse("out(-1)", e));
  CHECK_FALSE(parse("out(1)x", e));
}

TEST_CASE("rule builder shorthands address the first op's operands and the last op's output") {
  Rule r("conv_relu");
  r.match({"aten::conv2d", "aten::relu"})
      .input(spec::uint8_affine())
      .weight(spec::int8_symmetric())
      .output(spec::uint8_affine());
  REQUIRE(r.annotations.size() == 3);
  CHECK(r.annotations[0].edge == in(0, 0));
  CHECK(r.annotations[1].edge == in(0, 1));
  CHECK(r.annotations[2].edge == out(1));
}
