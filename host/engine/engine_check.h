// An engine under test against the integer-exact reference: the exported
// ONNX model run by the engine (a backend's own, through the plugin ABI, or
// ONNX Runtime), every quantized tensor it returns compared with the
// reference's integers, the first op that diverges named, and its inputs
// kept for replay.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "engine/engine_measurements.h"
#include "qsdk/engine.h"

namespace qsdk {

class Graph;
struct OnnxModel;

// An engine's reason for not running a model starts with this (abi.h): the
// case reports it, it is not a failure of the engine.
inline constexpr const char* kEngineUnsupportedPrefix = "unsupported:";

// Runs `engine` (named `name` in reports) on `onnx`, the export of
// `reference`, with `inputs`, and compares with the integer reference under
// `arithmetic`. An engine that throws is recorded (unsupported or error),
// not rethrown.
EngineAgreement check_engine(const std::string& name, const Engine& engine, const Graph& reference,
                             const OnnxModel& onnx, const Arithmetic& arithmetic,
                             const std::vector<at::Tensor>& inputs);

// ONNX Runtime as an engine: optimizations all (its fused QLinear kernels;
// the outputs only, since fetching an intermediate unfuses it) or disabled
// (QDQ run op by op; every QuantizeLinear output fetched).
Engine onnx_runtime_engine(bool optimized);

// "rounding half_to_even, multiplier float32, accumulator 32-bit saturate, ..."
std::string arithmetic_text(const Arithmetic& arithmetic);

}  // namespace qsdk
