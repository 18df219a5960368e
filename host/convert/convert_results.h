// What convert and the numeric debugger report, as plain data: the pipeline
// keeps them in its Measurements as they are. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qsdk {

// One quantization convert inserted, keyed by the reference graph's node id
// of the node that quantizes: aten::quantize_per_tensor or a fake_quantize op
// (activations), the dequantize of a quantized weight constant (weights).
// Exporters read the spec's intent here (symmetric, range) that the graph's
// numbers alone do not say: a uint8 zero point of 0 may be affine.
struct QuantizedTensor {
  int node = -1;
  int slot = -1;
  std::string kind;   // activation | weight | fixed | dynamic
  std::string dtype;  // of the spec: uint8, int8, int16, int32
  std::int64_t quant_min = 0, quant_max = 0;
  bool symmetric = false;
  std::string label;  // the slot's label: "%3 (aten::conv2d, conv1) output"
};

struct ConversionSummary {
  int folded_batch_norms = 0;
  int quantized_activations = 0;  // observe nodes replaced
  int quantized_weights = 0;
  int quantized_biases = 0;
  int dynamic_inputs = 0;
  std::vector<QuantizedTensor> quantized_tensors;
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
