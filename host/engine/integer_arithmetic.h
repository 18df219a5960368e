// The integer arithmetic a backend declares (qsdk/engine.h, Arithmetic), on
// whole tensors: rounding of real values and of right shifts in each
// rounding mode, the fixed-point multiplier of gemmlowp / TFLite / TOSA, and
// requantization of accumulators. Integers are int64 tensors; every function
// is exact (no float step where the declared form has none).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "qsdk/engine.h"

namespace qsdk::integer {

// Each double of `x` rounded to an integer with `mode` (an int64 tensor).
at::Tensor round(const at::Tensor& x, Rounding mode);

// x / 2^n rounded with `mode`: x int64, n int64 >= 0 broadcastable to x.
at::Tensor rounding_shift(const at::Tensor& x, const at::Tensor& n, Rounding mode);

// A real multiplier as M0 x 2^(shift - 31), M0 in [2^30, 2^31) (0 for 0),
// computed as TFLite's QuantizeMultiplier does (frexp, then round half away
// from zero of the fraction x 2^31).
struct FixedPointMultiplier {
  std::int64_t m0 = 0;
  int shift = 0;
};
FixedPointMultiplier quantize_multiplier(double multiplier);

// gemmlowp's SaturatingRoundingDoublingHighMul(a, m0) and
// RoundingDivideByPOT(x, exponent), elementwise: the first rounds ties up
// (its nudge), the second away from zero.
at::Tensor doubling_high_multiply(const at::Tensor& a, const at::Tensor& m0);
at::Tensor rounding_divide_by_power_of_two(const at::Tensor& x, const at::Tensor& exponent);

// The accumulator after `bits` bits: saturated or wrapped as declared.
at::Tensor limit_accumulator(const at::Tensor& acc, const Arithmetic& arithmetic);

// acc (int64) x multiplier (double, broadcastable to acc: per tensor or per
// channel) in the declared form and rounding: the requantized integers
// before the output zero point is added.
at::Tensor requantize(const at::Tensor& acc, const at::Tensor& multiplier, const Arithmetic& arithmetic);

}  // namespace qsdk::integer
