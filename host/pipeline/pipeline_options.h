// What one pipeline run is asked to do: the model, the backends (composed in
// order), calibration or QAT, overrides, checks and measurements. Run
// configs, conformance specs and `qsdk convert` all produce this struct; the
// YAML sections are read in one place (pipeline/pipeline_config.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "algorithms/algorithms.h"
#include "annotate/overrides.h"
#include "data/data_source.h"
#include "pipeline/measurements.h"
#include "qat/qat.h"
#include "qsdk/backend.h"

namespace qsdk {

// One backend of a pipeline, with the options it is made with.
struct BackendChoice {
  std::string name;
  BackendOptions options;
  std::string where;  // file:line:column (or the flag) that chose it, for errors
};

inline const std::vector<std::string> kOutputFormats{"torchscript", "onnx", "encodings"};

// Checks a formats list: known names, no repeats, encodings only with onnx
// (it names the ONNX file's tensors). Returns the problem, or empty.
std::string formats_problem(const std::vector<std::string>& formats);

// Accuracy-aware mixed precision (the run config's `accuracy:` section;
// accuracy/mixed_precision.h): the pipeline moves the most sensitive units
// to a wider width their rule offers, or to float, until the target holds.
struct AccuracyTarget {
  std::string metric = "top1";                          // top1 (held-out, needs labels) or sqnr (output against float)
  double max_drop = 0.5;                                // top1: percentage points below float
  double min_sqnr_db = 30;                              // sqnr: the output's SQNR against float
  std::vector<std::string> fallback{"wider", "float"};  // what a unit may move to, in order
  int budget = 0;                                       // most pipeline runs the search spends (0: 4 x units + 4)
  std::string order = "sensitivity";                    // sensitivity (ranked), or graph (the by-layer-order baseline)
  std::string where;                                    // file:line:column of the section, for messages
};

struct PipelineOptions {
  std::string model;              // "zoo:NAME" or a TorchScript file
  std::vector<InputSpec> inputs;  // shapes, dtypes, ranges; required for files
  std::uint64_t model_seed = 0;   // zoo weights and example inputs
  // The first backend decides the lowering; each later one (PT2E's
  // ComposableQuantizer) annotates only what the earlier ones left float.
  std::vector<BackendChoice> backends;
  std::vector<Override> overrides;
  CalibrationConfig calibration;           // PTQ: the batches observers see; QAT: training data
  std::string activation_observer;         // replaces the backend's activation observers when set
  std::string load_stats;                  // PTQ: observer statistics from this file instead of calibrating
  std::optional<QatOptions> qat;           // present: QAT instead of PTQ
  std::optional<AccuracyTarget> accuracy;  // present: search mixed precision for this target
  AlgorithmOptions algorithms;             // PTQ algorithms (cle, smoothquant, adaround, bias_correction)
  bool lower = true;                       // lower to the backend's kernels when it has them
  // Lowered vs reference. Each kernel, run on the reference's own inputs, is
  // exact to within one step (rounding): a kernel beyond kernel_max_steps is
  // wrong. At the model's output one-step differences of earlier kernels
  // add up and grow with depth (zoo:tiny_lm: 2 steps in ~3e-5 of the
  // elements, mean 4e-4 steps), so the output passes when it is within
  // max_steps OR its difference lies min_noise_margin_db below the
  // quantization noise (noise_margin_db; CONTRIBUTING.md, "Decisions
  // recorded"). The same holds for ONNX Runtime with onnx_max_steps.
  double max_steps = 1.0;
  double kernel_max_steps = 1.0;
  double min_noise_margin_db = kDefaultNoiseMarginDb;
  // ONNX Runtime vs reference limit, in output steps. Its float kernels (and
  // its QLinear ones) round in other places than LibTorch's: a one-step
  // difference in an early tensor can reach the output as two.
  double onnx_max_steps = 2.0;
  bool measure_accuracy = false;  // top-1 on the source's held-out split (needs labels)
  bool measure_latency = false;   // float vs int8 latency at batch 1
  bool per_layer_sqnr = false;    // float vs quantized output of every quantized op
  bool progress = true;           // progress bars on stderr
  // What write_pipeline_outputs writes (kOutputFormats): torchscript
  // (model.pt), onnx (model.onnx, QDQ), encodings (encodings.json, with onnx).
  std::vector<std::string> formats{"torchscript"};
  bool export_onnx = false;  // export ONNX even when no format asks (a spec checks it)
  bool onnx_runtime = true;  // with an ONNX export: run it in ONNX Runtime and measure agreement
  // Engines run on the ONNX export and compared with the integer-exact
  // reference under the first backend's declared arithmetic (implies the
  // export): "backend" (the backend's own engine, ABI 2.2), "onnxruntime"
  // (optimizations disabled: every quantized tensor) and "onnxruntime-fused"
  // (optimizations all: the output).
  std::vector<std::string> engines;

  bool wants(const std::string& format) const;
  bool exports_onnx() const { return export_onnx || wants("onnx") || wants("encodings") || !engines.empty(); }

  // "x86-int8", or "my-npu+x86-int8" when composed: the output folder's name.
  std::string backend_label() const;
};

}  // namespace qsdk
