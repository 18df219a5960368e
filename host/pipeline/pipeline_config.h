// The one reader of a pipeline's YAML sections. A run config has them at its
// top level, a conformance spec under `pipeline:` (and `model:` at its top
// level); both come here, so the same text means the same PipelineOptions
// with the same errors in either file:
//
//   model:        zoo:NAME | FILE.pt | {source|zoo|file: ..., search: models_dir, seed: 0,
//                  input_shapes: [[...]]  (float inputs) | inputs: [{shape: [...], dtype: int64, range: [0, 256]}]}
//   mode:         ptq | qat                       (optional; a qat: section means qat)
//   calibration:  {source: mnist|random|PATH, batches, batch_size, seed, observer: KIND}
//   qat:          {steps | epochs, optimizer: sgd|adam, lr, lr_schedule: cosine|constant, momentum,
//                  weight_decay, batch_size, freeze_bn_after, freeze_observers_after}
//   overrides:    [{module|op|node: ..., quantize: false | activation: {...} | weight: {...}}, ...]
//   checks:       {max_steps: 1.0}
//   measure:      {accuracy: bool, latency: bool, layers: bool}
//   lower:        bool
//   accuracy:     {metric: top1|sqnr, max_drop: 0.5, min_sqnr_db: 30, fallback: [wider, float], budget: N,
//                  order: sensitivity|graph}   (accuracy/mixed_precision.h)
//   algorithms:   [cle, smoothquant, adaround, bias_correction | {adaround: {iterations, batch_size,
//                  regularization, samples}} | {smoothquant: {alpha, samples}}]   (algorithms/algorithms.h)
//
// Relative paths resolve against `base_dir` (the file's directory). Errors
// are InputErrors at file:line:column; unknown keys get a "did you mean".
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/pipeline_options.h"

namespace YAML {
class Node;
class Emitter;
}  // namespace YAML

namespace qsdk {

struct PipelineConfigContext {
  std::string source;                // file name, for messages
  std::filesystem::path base_dir;    // relative paths resolve here
  std::filesystem::path models_dir;  // `model: {file: F, search: models_dir}`
  bool check_files = true;           // a missing model or data file is an error
};

// The keys read_pipeline_sections accepts (besides `model`).
const std::vector<std::string>& pipeline_section_keys();

// `model:` into options.model (a zoo model as "zoo:NAME", a file resolved
// to an absolute path), inputs (a zoo model's own when not given) and
// model_seed.
void read_model_section(const YAML::Node& node, const PipelineConfigContext& context, PipelineOptions& options);

// Every key of `map` that is a pipeline section, into `options` (which holds
// the embedder's defaults). Keys that are not pipeline sections are left to
// the caller, which checks its own keys.
void read_pipeline_sections(const YAML::Node& map, const PipelineConfigContext& context, PipelineOptions& options);

// The sections as YAML, every value explicit (`qsdk run --print-config`);
// `read_pipeline_sections` reads the result back to the same options.
void emit_pipeline_sections(YAML::Emitter& out, const PipelineOptions& options);

// An `overrides:` list as YAML (a flow map per entry); parse_overrides reads it back.
void emit_overrides(YAML::Emitter& out, const std::vector<Override>& overrides);

}  // namespace qsdk
