// Rule families shared by the bundled backends. Each backend picks the
// families its kernels support and the specs its hardware wants; a vendor
// plugin is free to spell its rules out one by one instead (see
// examples/ and CONTRIBUTING.md).
#pragma once

#include <string>
#include <vector>

#include "qsdk/sdk.h"

namespace qsdk::bundled {

// Specs used for the activations, weights and bias of one backend.
struct FamilySpecs {
  QuantSpec activation;
  QuantSpec weight;
  QuantSpec bias = spec::derived_bias();
};

// conv2d and linear, optionally followed by batch_norm (conv only) and a
// fused activation (`fused_activations`, e.g. {"aten::relu"}). Longer chains
// get higher priority so the fused form wins.
std::vector<Rule> weighted_op_rules(const FamilySpecs& s, const std::vector<std::string>& fused_activations);

// conv2d -> add [-> relu]: the residual-block tail that onednn fuses.
std::vector<Rule> conv_add_rules(const FamilySpecs& s);

// Element-wise binary ops (add, mul), each optionally followed by relu.
std::vector<Rule> binary_rules(const FamilySpecs& s, const std::vector<std::string>& ops, bool with_relu);

// Views that keep their input's qparams and run on quantized tensors:
// channel shuffles and attention head splits (permute, transpose,
// contiguous), and the elements of chunk/split/unbind, which capture turns
// into slice/select (host/capture/capture.cpp, split_list_outputs).
inline const std::vector<std::string> kViewOps = {"aten::permute", "aten::transpose", "aten::contiguous",
                                                  "aten::slice",   "aten::select",    "aten::unsqueeze"};

// Ops whose output keeps its input's qparams (pooling, reshapes, cat).
std::vector<Rule> shared_qparams_rules(const FamilySpecs& s, const std::vector<std::string>& ops);

// Single-input ops with their own observed output (hardswish, gelu, ...).
std::vector<Rule> unary_rules(const FamilySpecs& s, const std::vector<std::string>& ops);

// The `linear` option of the bundled backends: "static" (calibrated input
// and output qparams) or "dynamic" (PyTorch's dynamic quantization: weights
// ahead of time, input qparams per batch at run time, float output).
BackendOption linear_option();
// With linear=dynamic in `options`, replaces the linear rules of `rules`
// (from weighted_op_rules) by one dynamic linear rule with `weight`.
void apply_linear_option(const Backend& b, const BackendOptions& options, const QuantSpec& weight,
                         std::vector<Rule>& rules);

// A BatchNorm with no conv/linear before it to fold into (DenseNet's
// pre-activation norm -> relu), optionally with the relu fused: LibTorch's
// quantized::batch_norm2d(_relu) kernels.
std::vector<Rule> batch_norm_rules(const FamilySpecs& s);

// Everything besides conv/linear that LibTorch 1.13 runs on quantized
// tensors, engine-independent (x86-int8 and arm): add/mul (+ relu);
// hardswish and layer_norm with their own output qparams; sigmoid and
// hardsigmoid (squeeze-excite gates) with fixed ones; standalone
// batch_norm (+ relu); pooling, flatten, reshapes, cat, gelu, mean and the
// view ops with their input's (LibTorch's quantized gelu and mean keep
// them). silu has no quantized kernel and is left out.
std::vector<Rule> libtorch_quantized_op_rules(const FamilySpecs& s);

// Ops with a known output range: uint8 output with scale 1/256, zero point 0
// (sigmoid, hardsigmoid, softmax); tanh gets 2/256 around 128.
std::vector<Rule> fixed_output_rules(const FamilySpecs& s, const std::vector<std::string>& ops);

}  // namespace qsdk::bundled
