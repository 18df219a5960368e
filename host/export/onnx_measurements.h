// What the ONNX export reports, as plain data for Measurements. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qsdk {

// One ONNX Runtime run of the export against the reference.
struct OnnxRuntimeAgreement {
  bool optimized = true;            // graph optimizations "all" (QLinear kernels) or "disabled"
  double output_scale = 0;          // of the reference output's quantization (0: output not quantized)
  double max_steps = 0;             // at the output, in output steps (absolute difference when output_scale is 0)
  double sqnr_db = 0;               // ONNX Runtime's output vs float
  double noise_margin_db = 0;       // its difference from the reference against the quantization noise (convert.h)
  std::size_t tensors_checked = 0;  // quantized tensors compared (disabled run only)
  double worst_tensor_steps = 0;
  std::string worst_tensor;  // ONNX name of the worst tensor
  // False for the fused run on a CPU without VNNI: ONNX Runtime's u8 x s8
  // kernels there sum pairs in saturating 16-bit intermediates (as onednn's
  // do, the reason for x86-int8's 7-bit weights), so its steps and SQNR are
  // reported, not bounded; the unfused run's still are.
  bool steps_bound = true;
};

struct OnnxMeasurements {
  std::uintmax_t size_bytes = 0;
  int nodes = 0, quantize_linear = 0, dequantize_linear = 0;
  std::vector<std::string> encodings_problems;  // encodings.json against the file (empty: they match)
  std::string runtime_skipped;                  // why ONNX Runtime did not run (not installed), else empty
  std::vector<OnnxRuntimeAgreement> runtime;
};

}  // namespace qsdk
