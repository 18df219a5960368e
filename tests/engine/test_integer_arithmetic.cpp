// The declared integer arithmetic on hand-computed cases: ties in every
// rounding mode, gemmlowp's fixed-point steps, saturation and wrapping.
#include <ATen/ATen.h>

#include <vector>

#include "engine/integer_arithmetic.h"
#include "support/torch_doctest.h"  // first: see there

using namespace qsdk;

namespace {

std::vector<std::int64_t> values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}
at::Tensor doubles(std::vector<double> v) { return at::tensor(v, at::kDouble); }
at::Tensor longs(std::vector<std::int64_t> v) { return at::tensor(v, at::kLong); }

Arithmetic with(Multiplier m, Rounding r) {
  Arithmetic a;
  a.multiplier = m;
  a.rounding = r;
  return a;
}

}  // namespace

TEST_CASE("rounding real values: ties go where each mode says, near-ties do not move") {
  const at::Tensor x = doubles({2.5, -2.5, 0.5, -0.5, 1.4999999999999998, -1.5000000000000002, 3.0});
  CHECK(values(integer::round(x, Rounding::HalfToEven)) == std::vector<std::int64_t>{2, -2, 0, 0, 1, -2, 3});
  CHECK(values(integer::round(x, Rounding::HalfAwayFromZero)) == std::vector<std::int64_t>{3, -3, 1, -1, 1, -2, 3});
  CHECK(values(integer::round(x, Rounding::HalfUp)) == std::vector<std::int64_t>{3, -2, 1, 0, 1, -2, 3});
  // floor(x + 0.5) would round 0.49999999999999994 + 0.5 up to 1.
  CHECK(values(integer::round(doubles({0.49999999999999994}), Rounding::HalfUp)) == std::vector<std::int64_t>{0});
}

TEST_CASE("rounding right shifts: x / 2^n on exact integers") {
  const at::Tensor x = longs({5, -5, 6, -6, 7, -7, 4});
  const at::Tensor one = longs({1});
  CHECK(values(integer::rounding_shift(x, one, Rounding::HalfToEven)) ==
        std::vector<std::int64_t>{2, -2, 3, -3, 4, -4, 2});
  CHECK(values(integer::rounding_shift(x, one, Rounding::HalfAwayFromZero)) ==
        std::vector<std::int64_t>{3, -3, 3, -3, 4, -4, 2});
  CHECK(values(integer::rounding_shift(x, one, Rounding::HalfUp)) == std::vector<std::int64_t>{3, -2, 3, -3, 4, -3, 2});
  // n = 0 leaves the values; per-element shifts broadcast.
  CHECK(values(integer::rounding_shift(x, longs({0}), Rounding::HalfUp)) == values(x));
  CHECK(values(integer::rounding_shift(longs({6, 6}), longs({1, 2}), Rounding::HalfToEven)) ==
        std::vector<std::int64_t>{3, 2});  // 6/4 = 1.5 -> 2
}

TEST_CASE("QuantizeMultiplier as TFLite computes it") {
  CHECK(integer::quantize_multiplier(0.5).m0 == (std::int64_t{1} << 30));
  CHECK(integer::quantize_multiplier(0.5).shift == 0);
  CHECK(integer::quantize_multiplier(0.25).shift == -1);
  CHECK(integer::quantize_multiplier(0.75).m0 == 1610612736);  // 0.75 x 2^31
  CHECK(integer::quantize_multiplier(3.0).shift == 2);
  CHECK(integer::quantize_multiplier(0).m0 == 0);
  // A fraction that rounds up to 2^31 moves to the next exponent.
  const auto f = integer::quantize_multiplier(0.99999999999);
  CHECK(f.m0 == (std::int64_t{1} << 30));
  CHECK(f.shift == 1);
}

TEST_CASE("gemmlowp's doubling high multiply rounds ties up, its rounding shift away from zero") {
  // 3 x 2^30 / 2^31 = 1.5 -> 2 ; -3 x 2^30 / 2^31 = -1.5 -> -1 (the nudge rounds up)
  CHECK(values(integer::doubling_high_multiply(longs({3, -3, 1, -1}), longs({std::int64_t{1} << 30}))) ==
        std::vector<std::int64_t>{2, -1, 1, 0});
  CHECK(values(integer::rounding_divide_by_power_of_two(longs({5, -5, 6, -6, 3}), longs({1}))) ==
        std::vector<std::int64_t>{3, -3, 3, -3, 2});
  CHECK(values(integer::rounding_divide_by_power_of_two(longs({6, -6}), longs({2}))) ==
        std::vector<std::int64_t>{2, -2});
  CHECK(values(integer::rounding_divide_by_power_of_two(longs({-7}), longs({0}))) == std::vector<std::int64_t>{-7});
}

TEST_CASE("requantize: a tie at M = 0.5 in every multiplier form") {
  const at::Tensor acc = longs({5, -5, 7, -7});  // x 0.5: 2.5, -2.5, 3.5, -3.5
  const at::Tensor m = doubles({0.5});
  CHECK(values(integer::requantize(acc, m, with(Multiplier::Float32, Rounding::HalfToEven))) ==
        std::vector<std::int64_t>{2, -2, 4, -4});
  CHECK(values(integer::requantize(acc, m, with(Multiplier::Float64, Rounding::HalfAwayFromZero))) ==
        std::vector<std::int64_t>{3, -3, 4, -4});
  CHECK(values(integer::requantize(acc, m, with(Multiplier::Int32Shift, Rounding::HalfUp))) ==
        std::vector<std::int64_t>{3, -2, 4, -3});
  CHECK(values(integer::requantize(acc, m, with(Multiplier::Int32Shift, Rounding::HalfToEven))) ==
        std::vector<std::int64_t>{2, -2, 4, -4});
  // gemmlowp: M0 = 2^30, shift 0: the high multiply alone rounds (ties up).
  CHECK(values(integer::requantize(acc, m, with(Multiplier::Gemmlowp, Rounding::HalfToEven))) ==
        std::vector<std::int64_t>{3, -2, 4, -3});
  // M = 0.25: M0 = 2^30, right shift 1: acc 6 -> high multiply 3 -> 3 / 2 = 1.5 -> 2; -6 -> -3 -> -2.
  CHECK(values(integer::requantize(longs({6, -6}), doubles({0.25}), with(Multiplier::Gemmlowp, Rounding::HalfUp))) ==
        std::vector<std::int64_t>{2, -2});
}

TEST_CASE("requantize per channel: each channel its own multiplier and shift") {
  // acc [2 channels x 2], multipliers 0.5 and 0.125 along dim 0.
  const at::Tensor acc = longs({4, 12, 4, 12}).reshape({2, 2});
  const at::Tensor m = doubles({0.5, 0.125}).reshape({2, 1});
  for (Multiplier form : {Multiplier::Float32, Multiplier::Float64, Multiplier::Int32Shift, Multiplier::Gemmlowp})
    CHECK(values(integer::requantize(acc, m, with(form, Rounding::HalfAwayFromZero))) ==
          std::vector<std::int64_t>{2, 6, 1, 2});  // 12 x 0.125 = 1.5 -> 2 (every form: away or up)
}

TEST_CASE("the accumulator saturates or wraps past its declared width") {
  Arithmetic a;
  a.accumulator_bits = 16;
  const at::Tensor acc = longs({40000, -40000, 100});
  CHECK(values(integer::limit_accumulator(acc, a)) == std::vector<std::int64_t>{32767, -32768, 100});
  a.accumulator_overflow = Overflow::Wrap;
  CHECK(values(integer::limit_accumulator(acc, a)) == std::vector<std::int64_t>{40000 - 65536, -40000 + 65536, 100});
  a.accumulator_bits = 64;
  CHECK(values(integer::limit_accumulator(acc, a)) == values(acc));
}
