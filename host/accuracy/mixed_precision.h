// Accuracy-aware mixed precision: the run config's `accuracy:` section.
//
//   accuracy: {metric: top1, max_drop: 0.5, fallback: [wider, float], budget: 40}
//
// Starting from the backend's rules, the search moves units (sensitivity.h)
// to a wider width their rule offers (qsdk/rule.h, RuleWidth) or to float
// until the target holds: top-1 on the held-out split at most `max_drop`
// points below float, or the output's SQNR against float at least
// `min_sqnr_db`. Steps, each one calibrated pipeline run on the reference
// model:
//   1. all quantized as the rules say; done if the target holds;
//   2. rank (order: sensitivity): each unit left float alone, most
//      recovering first (N runs);
//   3. raise: in rank order, each unit to its first fallback (the widest
//      width its rule offers, or float), measured after each, until the
//      target holds; then, if float comes after wider, to float likewise;
//   4. prune: from the least sensitive moved unit, step it back down its
//      ladder (float, then the width, then its rule's own) while the target
//      still holds.
// "wider" is the widest width the unit's rule offers; a rule that offers
// none goes to float (when fallback lists it) or stays.
// order: graph is the by-layer-order baseline: no ranking, no pruning.
// The run then proceeds as usual (lowering, checks, outputs) with the
// decisions as overrides, which are written beside the model as
// overrides.yaml (config's overrides first) and recorded in the manifest
// (`mixed_precision`). A search that spends `budget` runs, or runs out of
// units, stops and says so; the model is what it reached.
#pragma once

#include <iosfwd>
#include <memory>
#include <vector>

#include "pipeline/pipeline.h"

namespace qsdk {

class Backend;
class PluginRegistry;

// run_pipeline, after the search when options.accuracy is set. `progress`:
// one line per search run, or null.
PipelineResult run_pipeline_for_target(const PluginRegistry& plugins, const PipelineOptions& options,
                                       std::vector<std::shared_ptr<const Backend>> backends, std::ostream* progress);

}  // namespace qsdk
