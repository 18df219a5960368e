// Export of convert's reference graph as an ONNX model in QDQ form, the
// form NPU toolchains and ONNX Runtime take: activations as QuantizeLinear ->
// DequantizeLinear with the reference's scales and zero points, weights as
// int8/uint8 initializers behind DequantizeLinear (with `axis` when
// per-channel), conv/linear biases as int32 initializers with scale = input
// scale x weight scale, float ops as the standard ONNX ops. Ranges narrower
// than the storage type (4-bit, reduce_range) are a QuantizeLinear, a Clip to
// the declared range on the integers, and a DequantizeLinear; the range is
// recorded in OnnxQuantizedTensor. Opset 17, IR version 8 (onnx 1.12).
//
// Every file is built with Debian's libonnx and passed through its checker
// and strict shape inference before it is returned; an aten op without a
// mapping is an InputError naming the op and the node. Torch-free header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convert/convert_results.h"

namespace qsdk {

class Graph;

inline constexpr std::int64_t kOnnxOpset = 17;

// One QuantizeLinear/DequantizeLinear pair (activation) or one quantized
// initializer behind a DequantizeLinear (weight, bias): what encodings.json lists.
struct OnnxQuantizedTensor {
  std::string tensor;  // the float tensor quantized (activations) or the integer initializer (weights, biases)
  std::string quantized_tensor;               // QuantizeLinear's output, or the initializer itself
  std::string kind;                           // activation | weight | bias | fixed | dynamic
  std::string dtype;                          // ONNX storage type: uint8 | int8 | int32
  std::int64_t quant_min = 0, quant_max = 0;  // the range the spec declares (within dtype)
  int bitwidth = 8;                           // bits the range needs
  bool symmetric = false;
  std::vector<double> scale;  // as written (float32 values)
  std::vector<std::int64_t> zero_point;
  std::optional<int> axis;  // per-channel
  std::string source;       // the slot's label, or "bias of <node>"
  int reference_node = -1;  // the quantizing node of the reference graph (-1: bias)
};

// One ONNX node that came from an aten op of the reference graph.
struct OnnxOpRecord {
  std::string node;     // ONNX node name (the first, when the op became several)
  std::string op_type;  // "Conv", "Gemm", ...; "Erf+..." when decomposed
  int reference_node = -1;
  std::string aten_op, module;
};

struct OnnxModel {
  std::string bytes;  // serialized ModelProto
  std::vector<std::string> input_names, output_names;
  int nodes = 0, quantize_linear = 0, dequantize_linear = 0;
  // The graph computes shapes with aten::size (traced nn.MultiheadAttention):
  // folded from the captured shapes, so the file holds for the captured
  // batch size only, and says so in its input and output dims.
  bool fixed_batch = false;
  std::vector<OnnxQuantizedTensor> quantized;
  std::vector<OnnxOpRecord> ops;
};

// The reference graph (after convert) as an ONNX QDQ model; `quantized` is
// convert's record of what it quantized (ConversionSummary). `batch_symbolic`
// makes the first dimension of every input and output a named dimension
// ("batch"), so the file runs at any batch size the graph allows.
OnnxModel export_onnx(const Graph& reference, const std::vector<QuantizedTensor>& quantized,
                      bool batch_symbolic = true);

// The model with these intermediate tensors (names from OnnxModel) added as
// graph outputs, after the model's own: what ONNX Runtime can fetch. (It
// keeps them unfused, so use it only for looking inside.)
std::string with_outputs(const std::string& bytes, const std::vector<std::string>& names);

// Checks a serialized model with the onnx checker and strict shape
// inference; throws InputError("where", cause) when it is not valid.
void check_onnx_model(const std::string& bytes, const std::string& where);

}  // namespace qsdk
