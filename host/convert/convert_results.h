// What convert and the numeric debugger report, as plain data: the pipeline
// keeps them in its Measurements as they are. Torch-free.
#pragma once

#include <string>
#include <vector>

namespace qsdk {

struct ConversionSummary {
  int folded_batch_norms = 0;
  int quantized_activations = 0;  // observe nodes replaced
  int quantized_weights = 0;
  int quantized_biases = 0;
  int dynamic_inputs = 0;
  std::vector<std::string> notes;  // e.g. a standalone BatchNorm left in float, and why
};

// Float vs quantized output of one quantized op.
struct LayerSqnr {
  int node = 0;             // id of the producing node in the float graph
  std::string module_path;  // "layer1.0.conv1"
  std::string op;           // "aten::conv2d"
  double sqnr_db = 0;       // +inf when identical
};

}  // namespace qsdk
