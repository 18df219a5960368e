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

// Ops whose output keeps its input's qparams (pooling, reshapes, cat).
std::vector<Rule> shared_qparams_rules(const FamilySpecs& s, const std::vector<std::string>& ops);

// Single-input ops with their own observed output (hardswish, gelu, ...).
std::vector<Rule> unary_rules(const FamilySpecs& s, const std::vector<std::string>& ops);

// Ops with a known output range: uint8 output with scale 1/256, zero point 0
// (sigmoid, hardsigmoid, softmax); tanh gets 2/256 around 128.
std::vector<Rule> fixed_output_rules(const FamilySpecs& s, const std::vector<std::string>& ops);

}  // namespace qsdk::bundled
