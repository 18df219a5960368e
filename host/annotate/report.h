// The annotation report: for every op, the rule that matched or why none did.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "annotate/annotation.h"

namespace qsdk {

class Graph;

// Human-readable table (`qsdk annotate` prints it) with a summary line,
// override effects and warnings.
// True for an op that computes only scalars, shapes or 0-dim tensors
// (aten::size, aten::Int, a traced model's floor_divide of sizes): no
// tensor data a backend could quantize. Reports count them apart.
bool is_bookkeeping(const torch::jit::Node* n);

std::string annotation_table(const Graph& graph, const Annotation& a);

// Machine-readable form of the same (annotation.json), with every edge's
// spec and the shared groups; node ids and module paths name things.
nlohmann::json annotation_document(const Graph& graph, const Annotation& a);
std::string annotation_json(const Graph& graph, const Annotation& a);  // the document, as text

// DOT source with quantized ops green, skipped grey, float ops orange, each
// labelled with its rule or reason.
std::string annotation_dot(const Graph& graph, const Annotation& a);

}  // namespace qsdk
