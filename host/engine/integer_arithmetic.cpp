#include "engine/integer_arithmetic.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

namespace qsdk::integer {
namespace {

at::Tensor power_of_two(const at::Tensor& n) { return at::pow(at::full({}, 2, at::kLong), n.to(at::kLong)); }

constexpr std::int64_t kInt32Min = -(std::int64_t{1} << 31);
constexpr std::int64_t kInt32Max = (std::int64_t{1} << 31) - 1;

}  // namespace

at::Tensor round(const at::Tensor& x, Rounding mode) {
  const at::Tensor v = x.to(at::kDouble);
  switch (mode) {
    case Rounding::HalfToEven: return at::round(v).to(at::kLong);  // torch rounds half to even
    case Rounding::HalfAwayFromZero: {
      // From the exact fraction: floor(|x| + 0.5) would round the sum first.
      const at::Tensor whole = at::trunc(v);
      const at::Tensor fraction = v - whole;
      return (whole + at::where(fraction.abs() >= 0.5, at::sign(v), at::zeros_like(v))).to(at::kLong);
    }
    case Rounding::HalfUp: {
      const at::Tensor whole = at::floor(v);
      return (whole + (v - whole >= 0.5).to(at::kDouble)).to(at::kLong);
    }
  }
  return at::round(v).to(at::kLong);
}

at::Tensor rounding_shift(const at::Tensor& x, const at::Tensor& n, Rounding mode) {
  const at::Tensor p = power_of_two(n);
  const at::Tensor q = at::div(x, p, "floor");
  const at::Tensor rem = x - q * p;
  const at::Tensor half = at::div(p, 2, "floor");
  const at::Tensor tie = (rem == half) & (n > 0);
  at::Tensor up = rem > half;
  switch (mode) {
    case Rounding::HalfToEven: up = up | (tie & (at::remainder(q, 2) == 1)); break;
    case Rounding::HalfAwayFromZero: up = up | (tie & (x > 0)); break;  // below zero, floor is away from zero
    case Rounding::HalfUp: up = up | tie; break;
  }
  return q + up.to(at::kLong);
}

FixedPointMultiplier quantize_multiplier(double multiplier) {
  if (multiplier == 0) return {};
  int exponent = 0;
  const double fraction = std::frexp(multiplier, &exponent);
  std::int64_t m0 = std::llround(fraction * 2147483648.0);
  if (m0 == (std::int64_t{1} << 31)) {
    m0 /= 2;
    ++exponent;
  }
  return {m0, exponent};
}

at::Tensor doubling_high_multiply(const at::Tensor& a, const at::Tensor& m0) {
  const at::Tensor ab = a * m0;  // |a|, |m0| < 2^31: exact in int64
  const at::Tensor nudge = at::where(ab >= 0, at::full({}, std::int64_t{1} << 30, at::kLong),
                                     at::full({}, 1 - (std::int64_t{1} << 30), at::kLong));
  at::Tensor out = at::div(ab + nudge, std::int64_t{1} << 31, "trunc");
  // The one overflow: INT32_MIN x INT32_MIN.
  return at::where((a == kInt32Min) & (m0 == kInt32Min), at::full({}, kInt32Max, at::kLong), out);
}

at::Tensor rounding_divide_by_power_of_two(const at::Tensor& x, const at::Tensor& exponent) {
  const at::Tensor p = power_of_two(exponent);
  const at::Tensor mask = p - 1;
  const at::Tensor rem = at::bitwise_and(x, mask);
  const at::Tensor threshold = at::div(mask, 2, "floor") + (x < 0).to(at::kLong);
  return at::div(x, p, "floor") + (rem > threshold).to(at::kLong);
}

at::Tensor limit_accumulator(const at::Tensor& acc, const Arithmetic& a) {
  if (a.accumulator_bits >= 64) return acc;
  const std::int64_t lo = -(std::int64_t{1} << (a.accumulator_bits - 1));
  const std::int64_t hi = (std::int64_t{1} << (a.accumulator_bits - 1)) - 1;
  if (a.accumulator_overflow == Overflow::Saturate) return at::clamp(acc, lo, hi);
  return at::remainder(acc - lo, std::int64_t{1} << a.accumulator_bits) + lo;
}

at::Tensor requantize(const at::Tensor& acc, const at::Tensor& multiplier, const Arithmetic& a) {
  const at::Tensor m = multiplier.to(at::kDouble).contiguous();
  switch (a.multiplier) {
    case Multiplier::Float32: {
      // float(acc) x float(M), rounded to float32 as a float engine does.
      const at::Tensor product = acc.to(at::kFloat) * m.to(at::kFloat);
      return round(product, a.rounding);
    }
    case Multiplier::Float64: return round(acc.to(at::kDouble) * m, a.rounding);
    case Multiplier::Int32Shift:
    case Multiplier::Gemmlowp: break;
  }
  // M0 and shift per element of the multiplier (per channel: a few).
  std::vector<std::int64_t> m0s, lefts, rights;
  const double* values = m.data_ptr<double>();
  for (std::int64_t i = 0; i < m.numel(); ++i) {
    const FixedPointMultiplier f = quantize_multiplier(values[i]);
    m0s.push_back(f.m0);
    lefts.push_back(f.shift > 0 ? f.shift : 0);
    rights.push_back(f.shift > 0 ? 0 : -f.shift);
  }
  const auto shape = m.sizes();
  const at::Tensor m0 = at::tensor(m0s, at::kLong).reshape(shape);
  const at::Tensor left = at::tensor(lefts, at::kLong).reshape(shape);
  const at::Tensor right = at::tensor(rights, at::kLong).reshape(shape);
  const at::Tensor x = at::clamp(acc * power_of_two(left), kInt32Min, kInt32Max);
  if (a.multiplier == Multiplier::Gemmlowp)
    return rounding_divide_by_power_of_two(doubling_high_multiply(x, m0), right);
  return rounding_shift(x * m0, right + 31, a.rounding);  // the exact product, rounded once
}

}  // namespace qsdk::integer
