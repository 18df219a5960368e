// What one pipeline run measured and what it ran with, as plain structs.
// The pipeline fills them; `qsdk run`'s summary, the manifest, layers.json
// and the conformance checks read them; pipeline/measurements_json.h is
// the one place they become JSON and back. Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "algorithms/algorithms.h"
#include "convert/convert_results.h"
#include "engine/engine_measurements.h"
#include "export/onnx_measurements.h"
#include "qat/qat.h"
#include "qsdk/backend.h"

namespace qsdk {

// A second implementation (lowered kernels, ONNX Runtime) whose output
// differs from the reference by at least this much less than quantization
// does agrees, however many steps: its difference then costs at most 0.97 dB
// of SQNR (10 log10(1 + 10^-0.6)), where drift costs 3 dB or more.
inline constexpr double kDefaultNoiseMarginDb = 6.0;
// Deep models: each kernel agrees (within kernel_max_steps, and < 0.01% of
// its outputs differ), but every differing rounding perturbs the next
// layers' roundings, so the lowered and reference outputs become two
// independent roundings of the float model (resnet18, x86-int8: 0.002% of
// the first conv's outputs differ, 76% of the last one's). The lowered
// model then still agrees when it is as close to float as the reference:
// its SQNR against float at most this much below the reference's. (Over
// bench/robustness.sh's 48 lowered runs the loss was at most 0.41 dB; a
// wrong scale, zero point or bias costs 3 dB or more and fails the kernels.)
inline constexpr double kMaxLoweredSqnrLossDb = 1.0;

// One node of a converted graph, for structure checks and reports.
struct NodeRecord {
  int id = -1;
  std::string op;      // "aten::conv2d"
  std::string module;  // module path, or empty
  std::string near;    // a quantize/dequantize's (which have none): the module it serves
};

// What annotation decided for one op: quantized by a rule, skipped, or float and why.
struct NodeDecision {
  int id = -1;
  std::string op, module;
  std::string status;  // "quantized" | "skipped" | "float"
  int match = -1;      // index of the rule match, -1 for none
  std::string reason;  // the rule, or why no rule took it
  // A float op whose outputs are all scalars or 0-dim tensors: shape and
  // scalar arithmetic (aten::size, aten::Int, floor_divide on sizes), counted
  // apart from the tensor ops left in float.
  bool bookkeeping = false;
};

// One observer slot after calibration (or QAT): what qparams.json lists.
struct QParamsRecord {
  int slot = 0;
  std::string kind;   // activation | weight | fixed | dynamic | ...
  std::string label;  // "%3 (aten::conv2d, conv1) input 0", "+N" when it serves N more edges
  std::string dtype;
  std::int64_t quant_min = 0, quant_max = 0;
  std::vector<double> scale;  // empty: no data (dynamic, or unobserved)
  std::vector<std::int64_t> zero_point;
  std::optional<int> axis;  // per-channel
};

// A conv/linear bias of the reference graph against input scale x weight scale.
struct BiasRecord {
  int node = -1;
  std::string op, module;
  bool per_channel = false;
  double max_error_steps = 0;  // |bias / step - round(bias / step)|, worst channel
};

// Lowered vs reference, when the model was lowered to int8 kernels.
struct LoweringMeasurements {
  int lowered_ops = 0;               // nodes running on quantized tensors
  double output_scale = 0;           // of the reference output's quantization (0: unknown)
  double max_difference_steps = 0;   // at the output, in output steps
  double mean_difference_steps = 0;  // mean |difference| at the output: drift shows here, rounding does not
  double noise_margin_db = 0;        // noise_margin_db(reference, lowered, float) at the output
  double sqnr_db_lowered = 0;        // lowered output vs float
  std::size_t kernels_checked = 0;   // op by op, on the reference's inputs
  int kernels_skipped = 0;
  double worst_kernel_steps = 0;
  std::string worst_kernel;            // "%4 quantized::conv2d (conv1): 1.0 steps", empty if none checked
  double most_differing_fraction = 0;  // of the kernel whose outputs differ most often
  std::string most_differing_kernel;   // "%9 quantized::conv2d (features.3): 4.1% of outputs differ"
  std::string first_over_limit;        // first kernel over kernel_max_steps, empty if none
};

// On a labelled held-out split. For a language model (labels [B, seq])
// every position is a sample: top-1 is next-token accuracy, and perplexity
// is exp(mean cross-entropy) over the positions.
struct Accuracy {
  double float_top1 = 0;      // fraction correct, float model
  double quantized_top1 = 0;  // fraction correct, quantized (lowered when lowered) model
  double agreement = 0;       // fraction where the two predict the same class
  std::size_t samples = 0;
  std::optional<double> float_perplexity, quantized_perplexity;  // sequence labels only
};

// What the accuracy-aware mixed-precision search (accuracy/mixed_precision.h)
// decided, as recorded in the manifest. Values are top-1 fractions (metric
// top1) or dB (sqnr), measured on the reference Q/DQ model.
struct MixedPrecision {
  struct Fallback {
    std::string unit;        // "%7 aten::linear+aten::relu (fc1)"
    std::vector<int> nodes;  // the node ids the overrides select
    std::string to;          // a width the rule offers ("w8a8"), or "float"
  };
  std::string metric;      // top1 | sqnr
  std::string order;       // sensitivity | graph
  double target = 0;       // top1: lowest accepted top-1; sqnr: lowest accepted dB
  double float_value = 0;  // top1: the float model's; sqnr: inf
  double start_value = 0;  // the backend's rules as given
  double final_value = 0;  // with the fallbacks
  bool met = false;
  int units = 0;  // units (sensitivity.h) the search could move
  int runs = 0;   // pipeline runs the search spent
  std::vector<Fallback> fallbacks;
  std::string stopped;  // why the search ended without meeting the target
};

struct Latency {
  double float_ms = 0;  // median per batch-1 inference
  double int8_ms = 0;
};

// A backend the run used, as loaded.
struct BackendRecord {
  std::string name, version, vendor, rule_hash;
  std::uint32_t plugin_abi_version = 0;
  std::string plugin_file;
  BackendOptions options;  // as made (target option resolved)
};

// What the model assumed of the machine.
struct TargetRecord {
  std::vector<std::string> cpu_features;
  std::string onednn_isa, onednn_max_cpu_isa, int8_isa;
  struct Choice {
    std::string requested, chosen;
  };
  std::map<std::string, Choice> choices;  // target option -> requested vs chosen
};

// What the run was given: enough to say what produced a model and to redo it.
struct RunRecord {
  std::vector<BackendRecord> backends;  // in composition order
  TargetRecord target;
  std::string model_source;  // "zoo:NAME" or a file
  std::vector<std::vector<std::int64_t>> input_shapes;
  std::string model_fingerprint;
  std::string calibration_source;  // or "stats:FILE"
  int calibration_batches = 0, calibration_batch_size = 0;
  std::uint64_t calibration_seed = 0;
  std::string calibration_fingerprint;
  std::optional<QatOptions> qat;  // present: QAT
  std::string qsdk_version, libtorch_version;
  std::uint32_t sdk_abi_version = 0;
};

struct Measurements {
  std::string backend;  // "x86-int8", or "my-npu+x86-int8" when composed
  RunRecord run;
  std::string lowering_target = "reference";  // what the deployed model runs on
  double sqnr_db = 0;                         // reference Q/DQ output vs float
  std::optional<LoweringMeasurements> lowered;
  std::uintmax_t float_size = 0, quantized_size = 0;  // exported bytes
  std::optional<Accuracy> accuracy;
  std::optional<Latency> latency;
  std::optional<MixedPrecision> mixed_precision;  // when the run searched for an accuracy target
  // The PTQ algorithms the run applied (algorithms/algorithms.h) and what
  // each decided, layer by layer; empty when none was asked for.
  std::vector<std::string> algorithms;
  std::vector<AlgorithmDecision> algorithm_decisions;
  std::optional<OnnxMeasurements> onnx;  // when the run exported ONNX
  std::vector<EngineAgreement> engines;  // engines under test against the integer reference (when asked)
  ConversionSummary conversion;          // its notes: standalone BatchNorms left in float
  std::vector<QParamsRecord> qparams;
  // Labels of the edges one observer serves, for each group of more than one.
  std::vector<std::vector<std::string>> shared_tensors;
  std::vector<NodeDecision> decisions;
  std::vector<NodeRecord> reference_nodes;
  std::optional<std::vector<NodeRecord>> lowered_nodes;
  std::vector<BiasRecord> biases;
  std::vector<LayerSqnr> layers;   // when per-layer SQNR was measured
  std::vector<double> qat_losses;  // one per QAT step
  std::vector<std::string> notes;  // conversion and lowering notes
  // Set when the float model's output hardly depends on its input (a
  // random-init model whose activations vanish): SQNR, steps and agreement
  // then measure rounding of a constant, not the quantization's quality.
  std::string output_warning;
  double seconds = 0;  // wall time of the pipeline
  // Wall time of each stage, and the process's peak resident memory when it
  // ended (a running maximum: the stage that raised it is the one that held
  // the memory). Not in the manifest: it differs run to run.
  struct Stage {
    std::string name;
    double seconds = 0;
    double peak_rss_mb = 0;
  };
  std::vector<Stage> stages;

  // No kernel over kernel_max_steps (first_over_limit, decided when
  // measured), and the output within max_steps of the reference, or its
  // difference min_noise_margin_db below the quantization noise, or its
  // SQNR against float within kMaxLoweredSqnrLossDb of the reference's.
  bool lowering_agrees(double max_steps, double min_noise_margin_db = kDefaultNoiseMarginDb) const;
  int quantized_ops() const;  // decisions with status "quantized"
  // Decisions with status "float": tensor ops, and shape/scalar bookkeeping.
  int float_tensor_ops() const;
  int bookkeeping_ops() const;
  // What is wrong with the ONNX export: encodings that do not match the
  // file, or ONNX Runtime's output beyond max_steps of the reference. Empty
  // when nothing is (or nothing was exported).
  std::string onnx_problem(double max_steps, double min_noise_margin_db = kDefaultNoiseMarginDb) const;
};

// The ONNX export's lines for a command's summary ("onnx: ...").
std::string onnx_summary(const OnnxMeasurements& o);
// "capture 3.1 s (1.2 GB), calibrate ..." for a command's summary.
std::string stages_summary(const std::vector<Measurements::Stage>& stages);
// An engine check's line for a command's summary ("engine: ...").
std::string engine_summary(const EngineAgreement& e);

}  // namespace qsdk
