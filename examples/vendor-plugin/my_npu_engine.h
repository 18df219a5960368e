// my-npu's engine: a small bit-accurate executor of the quantized (ONNX QDQ)
// model, the shape of the C model a vendor keeps of its hardware. It runs
// what the NPU runs (int8 conv(+relu) and linear layers with gemmlowp-style
// requantization, residual adds, flatten/reshape) on integers, and reports
// anything else as unsupported. Standard C++17 and the SDK headers only.
#pragma once

#include <qsdk/engine.h>

#include <cstdint>
#include <vector>

namespace my_npu {

// The arithmetic the engine implements (declared by the backend).
qsdk::Arithmetic declared_arithmetic();

// Runs the model on float32 `inputs` (the model's input order): graph
// outputs as float32, every QuantizeLinear output as integers. Throws
// std::runtime_error; the message starts with "unsupported:" when the model
// has what the NPU does not run. `ties_to_even_bug`: a deliberately wrong
// engine (tests only) whose rounding right shift rounds ties to even instead
// of away from zero.
qsdk::EngineResult run(const qsdk::EngineModel& model, const std::vector<qsdk::EngineTensor>& inputs,
                       bool ties_to_even_bug = false);

// The fixed-point steps of requantization, exposed for tests.
namespace detail {

// A real multiplier as multiplier x 2^(shift - 31), multiplier in
// [2^30, 2^31) (0 for 0): TFLite's QuantizeMultiplier.
struct QuantizedMultiplier {
  std::int32_t multiplier = 0;
  int shift = 0;
};
QuantizedMultiplier quantize_multiplier(double real_multiplier);

// gemmlowp's SaturatingRoundingDoublingHighMul: a x b / 2^31 rounded to
// nearest, ties up (its nudge: 1.5 -> 2, -1.5 -> -1), saturated at
// INT32_MIN x INT32_MIN.
std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b);

// gemmlowp's RoundingDivideByPOT: round(x / 2^exponent), ties away from zero
// (ties to even with `ties_to_even_bug`). exponent >= 0.
std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent, bool ties_to_even_bug = false);

// TFLite's MultiplyByQuantizedMultiplier: acc x the real multiplier, rounded
// (before the output zero point is added).
std::int32_t multiply_by_quantized_multiplier(std::int32_t acc, QuantizedMultiplier m, bool ties_to_even_bug = false);

}  // namespace detail
}  // namespace my_npu
