// The exported ONNX model in ONNX Runtime against qsdk's reference, on the
// same inputs: at the output in output quantization steps (and SQNR against
// float), and per quantized tensor (every QuantizeLinear output, with graph
// optimizations off so that ONNX Runtime keeps them) in that tensor's steps.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "export/onnx_measurements.h"

namespace qsdk {

class Graph;
struct OnnxModel;

// Runs `model` in ONNX Runtime once with graph optimizations on and once off.
// Throws InputError when ONNX Runtime is missing or refuses the model.
std::vector<OnnxRuntimeAgreement> measure_onnx_agreement(const Graph& reference, const OnnxModel& model,
                                                         const std::vector<at::Tensor>& inputs,
                                                         const at::Tensor& float_output);

}  // namespace qsdk
