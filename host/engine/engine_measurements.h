// What checking an engine against the integer-exact reference measured, as
// plain data for Measurements, the checks and the reports. Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qsdk {

// One quantized tensor (a QuantizeLinear output of the export), or the
// model's output: the engine's values against the integer reference's.
struct EngineTensorAgreement {
  std::string tensor;     // ONNX name
  std::string source;     // the float tensor it quantizes, or the output's name
  std::string op;         // the ONNX node computing it (its first node when the op became several)
  std::string op_type;    // "Conv", "Gemm", ...
  std::string reference;  // how the integer reference computed it: "conv2d (integer accumulator)"
  bool returned = true;   // false: the engine did not return this tensor
  std::size_t elements = 0, mismatched = 0;
  // Largest |engine - reference| in integer steps, the reference computing
  // this op from the engine's own inputs (op by op: what the checks bound);
  // for a float output, in steps of the output's quantization, rounded (-1:
  // the output is not quantized, so only abs, rel and sqnr apply).
  std::int64_t max_lsb = 0;
  // The same against the reference's own chain from the model's input:
  // what differences upstream add up to by here.
  std::int64_t chain_max_lsb = 0;
  double max_abs = 0;  // dequantized values
  double max_rel = 0;  // max_abs / max |reference|
  double sqnr_db = 0;  // engine vs reference, dequantized (+inf when equal)
};

struct EngineAgreement {
  std::string engine;       // "my-npu (the backend's engine)", "onnxruntime (optimizations disabled)"
  std::string arithmetic;   // the declaration the reference followed, as describe prints it
  std::string unsupported;  // the engine does not run this model: its reason
  std::string error;        // the engine failed: its message
  std::size_t samples = 0;  // batch size of the inputs run
  std::vector<EngineTensorAgreement> tensors;  // in graph order
  EngineTensorAgreement output;
  std::string first_divergent;  // the first tensor in graph order that differs at all (empty: none)
  // The divergent op's replay (JSON text, schema in CONTRIBUTING.md,
  // "Checking your engine"): its subgraph, integer inputs, the reference's
  // and the engine's results. The conformance runner moves it to a file of
  // the report and sets replay_file.
  std::string replay;
  std::string replay_file;

  bool ran() const { return unsupported.empty() && error.empty(); }
};

}  // namespace qsdk
