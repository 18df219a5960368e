// Sensitivity analysis: which quantized ops cost the most accuracy.
//
// A unit is one match of a backend rule that computes its own qparams (an
// observed, fixed or dynamic edge: conv-bn-relu, linear, add), together with
// the ops after it that only share its qparams (pooling, flatten), which
// follow its decision. For every unit the pipeline runs twice more, each
// with overrides that the annotator applies as a user's would:
//   only      this unit quantized, every other unit float: the loss it causes
//             on its own;
//   all-but   every unit quantized except this one: what leaving it float
//             buys back in the quantized model.
// Each variant is calibrated on the same data as the full run (observers
// placed by a different annotation see other edges, so statistics are not
// reused). Measured: SQNR of the output against float on the run's
// evaluation batch and, where the source has labels, top-1 on the held-out
// split. The cost is 2 x units + 1 pipeline runs (reference model, not
// lowered).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "annotate/overrides.h"
#include "pipeline/pipeline_options.h"

namespace qsdk {

class Backend;
class PluginRegistry;
struct Annotation;
struct PipelineResult;

// What one variant of the model measured.
struct VariantScore {
  double sqnr_db = 0;
  std::optional<double> top1;  // held-out, when the source has labels
};

// The score of one variant's run: its output SQNR and held-out top-1.
VariantScore score_of(const PipelineResult& result);

struct SensitivityUnit {
  int match = -1;             // index into the full run's Annotation::matches
  std::string rule;           // the backend rule that matched
  std::string label;          // "%12 aten::conv2d (features.0) + 1 sharing"
  std::vector<int> node_ids;  // its own match's nodes (the followers are not listed)
  VariantScore only, all_but;
};

struct SensitivityReport {
  std::string backend, model;
  VariantScore full;                   // every unit quantized (the backend's rules as given)
  std::optional<double> float_top1;    // held-out, when the source has labels
  std::vector<SensitivityUnit> units;  // ranked: most sensitive first
  double seconds = 0;
};

// The units of an annotation, in graph order.
std::vector<SensitivityUnit> sensitivity_units(const Annotation& annotation);

// The options a variant is measured with: `options` on the reference model
// only (no lowering, ONNX, latency, per-layer SQNR or progress bars), with
// held-out accuracy when `accuracy`.
PipelineOptions variant_options(const PipelineOptions& options, bool accuracy);

// `skip`'s units float (overrides by node id), on top of the config's own
// overrides.
std::vector<Override> float_overrides(const std::vector<SensitivityUnit>& skip);

// Runs the analysis. `options` is one backend selection's pipeline (its
// `lower`, ONNX and latency settings are ignored: variants are measured on
// the reference model). Accuracy is measured when the calibration source has
// a held-out split with labels. `progress`: one line per variant, or null.
SensitivityReport analyse_sensitivity(const PluginRegistry& plugins, const PipelineOptions& options,
                                      const std::vector<std::shared_ptr<const Backend>>& backends,
                                      std::ostream* progress);

nlohmann::json sensitivity_json(const SensitivityReport& report);
// The ranked table, as text for a terminal or as Markdown.
std::string sensitivity_table(const SensitivityReport& report, bool markdown);
// A standalone page: the table and a bar chart (inline SVG) of each unit's
// SQNR alone and the SQNR without it.
std::string sensitivity_html(const SensitivityReport& report);

}  // namespace qsdk
