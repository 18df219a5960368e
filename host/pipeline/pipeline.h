// The whole pipeline for one model and one backend, as a library call:
// capture, annotate, prepare, calibrate (or QAT), convert to the reference
// Q/DQ form, lower to the backend's int8 kernels, and measure. `qsdk run`,
// `qsdk convert` and `qsdk conformance` are thin layers over it, so every
// command measures the same things the same way.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "annotate/annotation.h"
#include "annotate/overrides.h"
#include "data/data_source.h"
#include "convert/agreement.h"
#include "convert/convert.h"
#include "convert/numeric_debugger.h"
#include "qat/qat.h"
#include "qsdk/backend.h"

namespace qsdk {

class Graph;
class PluginRegistry;

struct PipelineOptions {
  std::string model;                                    // "zoo:NAME" or a TorchScript file
  std::vector<std::vector<std::int64_t>> input_shapes;  // required for files
  std::uint64_t model_seed = 0;                         // zoo weights and example inputs
  std::string backend;                                  // one backend name
  BackendOptions backend_options;                       // options the backend declares
  // Further backends composed after the first (PT2E's ComposableQuantizer),
  // with their default options; they annotate what the first leaves float.
  std::vector<std::string> composed_after;
  std::vector<Override> overrides;
  CalibrationConfig calibration;    // PTQ: the batches observers see; QAT: training data
  std::string activation_observer;  // replaces the backend's activation observers when set
  std::string load_stats;           // PTQ: observer statistics from this file instead of calibrating
  std::optional<QatOptions> qat;    // present: QAT instead of PTQ
  bool lower = true;                // lower to the backend's kernels when it has them
  double max_steps = 1.0;           // lowered vs reference limit, in output quantization steps
  bool measure_accuracy = false;    // top-1 on the source's held-out split (needs labels)
  bool measure_latency = false;     // float vs int8 latency at batch 1
  bool per_layer_sqnr = false;      // float vs quantized output of every quantized op
  bool progress = true;             // progress bars on stderr
};

struct Accuracy {
  double float_top1 = 0;      // fraction correct, float model
  double quantized_top1 = 0;  // fraction correct, quantized (lowered when lowered) model
  double agreement = 0;       // fraction where the two predict the same class
  std::size_t samples = 0;
};

struct Latency {
  double float_ms = 0;  // median per batch-1 inference
  double int8_ms = 0;
};

struct PipelineResult {
  std::string backend;
  // The options the first backend was made with: the given ones, with its
  // target option resolved for this machine (e.g. isa: avx2).
  BackendOptions backend_options;
  Lowering target = Lowering::Reference;  // what the model was lowered to
  std::unique_ptr<Graph> float_graph;     // captured, before prepare
  std::unique_ptr<Graph> reference;       // converted Q/DQ model
  std::unique_ptr<Graph> lowered;         // int8 kernels; null when target is Reference
  Annotation annotation;
  ConversionSummary conversion;
  nlohmann::json qparams;  // qparams_json(prepared), parsed
  nlohmann::json annotation_report;
  double sqnr_db = 0;                                 // reference Q/DQ output vs float, on the first calibration batch
  double sqnr_db_lowered = 0;                         // lowered output vs float (when lowered)
  double max_difference_steps = 0;                    // lowered vs reference output, in output steps
  AgreementReport op_by_op;                           // when lowered
  int lowered_ops = 0;                                // nodes running on quantized tensors after lowering
  double output_scale = 0;                            // of the reference output's quantization (0: unknown)
  std::string first_bad_kernel;                       // op-by-op: first kernel over max_steps, empty if none
  std::uintmax_t float_size = 0, quantized_size = 0;  // exported bytes
  std::optional<Accuracy> accuracy;
  std::optional<Latency> latency;
  std::vector<LayerSqnr> layers;
  std::vector<double> qat_losses;  // one per QAT step
  std::vector<std::string> notes;  // conversion and lowering notes
  std::string calibration_fingerprint;
  double seconds = 0;       // wall time of the whole pipeline
  nlohmann::json manifest;  // what manifest.json holds
  // Each backend's rules as `qsdk plugins describe` prints them (options
  // applied), written next to the model as rules-<backend>.yaml so that
  // `qsdk verify` can say rule by rule what changed since.
  std::map<std::string, std::string> rules_yaml;

  // The model users deploy: lowered when lowered, else the reference.
  const Graph& deployed() const { return lowered ? *lowered : *reference; }
  // Lowered output within max_steps of the reference, and no kernel over it.
  bool lowering_agrees(double max_steps) const;
};

// Runs the pipeline. Throws InputError for bad input (unknown backend or
// option, model, data), naming the place and cause.
PipelineResult run_pipeline(const PluginRegistry& plugins, const PipelineOptions& options);

// Writes dir/{model.pt, model_reference.pt (when lowered), manifest.json,
// qparams.json, annotation.json, rules-<backend>.yaml}, each atomically.
void write_pipeline_outputs(const PipelineResult& result, const std::filesystem::path& dir);

// Counts of op kinds in a graph ("aten::quantize_per_tensor" -> 3), for
// structure checks.
std::map<std::string, int> op_counts(const Graph& graph);

}  // namespace qsdk
