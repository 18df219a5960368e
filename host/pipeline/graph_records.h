// The records Measurements holds, read off the pipeline's objects: graph
// nodes, biases, annotation decisions, shared groups and observer qparams.
#pragma once

#include <string>
#include <vector>

#include "annotate/annotation.h"
#include "pipeline/measurements.h"

namespace qsdk {

class Graph;
class PreparedModel;

// Every node, in order; a quantize/dequantize (no module) gets the module it serves as `near`.
std::vector<NodeRecord> node_records(const Graph& graph);
// Conv/linear biases of a reference graph against input scale x weight scale.
std::vector<BiasRecord> bias_records(const Graph& reference);
std::vector<NodeDecision> node_decisions(const Annotation& annotation);
// Each shared group's edges, labelled as edge_label does. Call before prepare.
std::vector<std::vector<std::string>> shared_tensor_labels(const Graph& graph, const Annotation& annotation);
std::vector<QParamsRecord> qparams_records(const PreparedModel& prepared);

}  // namespace qsdk
