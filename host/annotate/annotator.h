// Annotate: match a backend's declared rules against a captured graph
// (PT2E's Quantizer.annotate + validate, driven by data).
//
// Matching: rules are tried in precedence order (priority, then pattern
// length, then declaration order); each rule scans the graph in order. A
// chain matches where each op's result is used only by the next op of the
// chain (as its first operand; for add and mul either operand), none of its
// nodes is taken yet, and every constraint of the rule holds. A node belongs
// to at most one match.
//
// After matching: overrides skip or re-spec nodes; a shared-qparams op
// (output Shared with its input) whose input comes from a float op is left
// in float; list operands (cat's tensors) share one set of qparams; shared
// groups and derived sources are validated.
#pragma once

#include <vector>

#include "annotate/annotation.h"
#include "annotate/overrides.h"
#include "qsdk/backend.h"

namespace qsdk {

class Graph;

struct AnnotateOptions {
  std::vector<Override> overrides;
};

// Annotates `graph` with `backend`. With `earlier` (composition, like PT2E's
// ComposableQuantizer), starts from that annotation: its matches are kept
// unchanged and its nodes are not available to this backend. Throws
// InputError when annotations cannot be made consistent (a shared group
// whose members disagree, a derived spec without quantized sources, a
// constraint that throws); messages name node ids, module paths and rules.
Annotation annotate(const Graph& graph, const Backend& backend, const AnnotateOptions& options = {},
                    const Annotation* earlier = nullptr);

}  // namespace qsdk
