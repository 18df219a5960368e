// The whole pipeline for one model and one backend, as a library call:
// capture, annotate, prepare, calibrate (or QAT), convert to the reference
// Q/DQ form, lower to the backend's int8 kernels, and measure. `qsdk run`,
// `qsdk convert` and `qsdk conformance` are thin layers over it, so every
// command measures the same things the same way.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "annotate/annotation.h"
#include "export/onnx_export.h"
#include "pipeline/measurements.h"
#include "pipeline/pipeline_options.h"
#include "qsdk/backend.h"

namespace qsdk {

class Graph;
class PluginRegistry;

struct PipelineResult {
  Measurements measurements;           // everything measured, and what the run was given
  std::unique_ptr<Graph> float_graph;  // captured, before prepare
  std::unique_ptr<Graph> reference;    // converted Q/DQ model
  std::unique_ptr<Graph> lowered;      // int8 kernels; null when not lowered
  Annotation annotation;
  nlohmann::json annotation_document;  // annotation.json (rendered before prepare rewrites the graph)
  // Each backend's rules as `qsdk plugins describe` prints them (options
  // applied), written next to the model as rules-<backend>.yaml so that
  // `qsdk verify` can say rule by rule what changed since.
  std::map<std::string, std::string> rules_yaml;
  // overrides.yaml: what the mixed-precision search decided, as an
  // overrides list that reproduces the model without the search; empty
  // when the run did not search.
  std::string overrides_yaml;
  // The ONNX QDQ export and its encodings, when the options asked for it.
  std::optional<OnnxModel> onnx;
  nlohmann::json encodings;

  // The model users deploy: lowered when lowered, else the reference.
  const Graph& deployed() const { return lowered ? *lowered : *reference; }
};

// Makes each backend with its options, validating them (unknown backend or
// option, a value not allowed, rules the options make invalid): InputError
// at the choice's `where`. Done once per run; run_pipeline takes the result.
std::vector<std::shared_ptr<const Backend>> instantiate_backends(const PluginRegistry& plugins,
                                                                 const std::vector<BackendChoice>& backends);

// Runs the pipeline. Throws InputError for bad input (unknown backend or
// option, model, data), naming the place and cause. `backends`: from
// instantiate_backends(options.backends), or made here when empty.
PipelineResult run_pipeline(const PluginRegistry& plugins, const PipelineOptions& options,
                            std::vector<std::shared_ptr<const Backend>> backends = {});

// Writes dir/{manifest.json, qparams.json, annotation.json,
// rules-<backend>.yaml} and, by `formats`: model.pt and model_reference.pt
// (when lowered) for torchscript, model.onnx, encodings.json; each
// atomically; with `with_layers`, layers.json too.
void write_pipeline_outputs(const PipelineResult& result, const std::filesystem::path& dir, bool with_layers = false,
                            const std::vector<std::string>& formats = {"torchscript"});

// Counts of op kinds in a graph ("aten::quantize_per_tensor" -> 3), for
// structure checks.
std::map<std::string, int> op_counts(const Graph& graph);

}  // namespace qsdk
