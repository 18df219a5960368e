// encodings.json checked against the ONNX file it describes: every
// QuantizeLinear's input and every DequantizeLinear's integer initializer is
// listed with the scale and zero point the file uses, and nothing else is.
// (The schema is in README.md, "Encodings file".)
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace qsdk {

inline constexpr int kEncodingsVersion = 1;

// One line per problem ("activation_encodings: conv1/conv2d_3: scale 0.1 in
// the encodings, 0.2 in the model"); empty when they match.
std::vector<std::string> check_encodings(const std::string& onnx_bytes, const nlohmann::json& encodings);

}  // namespace qsdk
