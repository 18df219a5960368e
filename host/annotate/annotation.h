// The annotate stage's result: for every node of a captured graph, which
// backend rule matched it and what each of its edges gets; for every node
// left in float, why. Torch-free: nodes are opaque pointers here, so the CLI
// and reports can include this header cheaply.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "qsdk/spec.h"

namespace torch::jit {
struct Node;
struct Value;
}  // namespace torch::jit

namespace qsdk {

// One place a tensor enters or leaves an op: operand `operand` of `node`
// (element `element` of a list operand, such as cat's tensors), or the
// node's output when operand == kOutput.
struct EdgeKey {
  static constexpr int kOutput = -1;
  const torch::jit::Node* node = nullptr;
  int operand = kOutput;
  int element = -1;

  bool is_output() const { return operand == kOutput; }
  friend bool operator==(const EdgeKey& a, const EdgeKey& b) {
    return a.node == b.node && a.operand == b.operand && a.element == b.element;
  }
  friend bool operator!=(const EdgeKey& a, const EdgeKey& b) { return !(a == b); }
  friend bool operator<(const EdgeKey& a, const EdgeKey& b) {
    return std::tie(a.node, a.operand, a.element) < std::tie(b.node, b.operand, b.element);
  }
};

struct EdgeKeyHash {
  std::size_t operator()(const EdgeKey& e) const {
    return std::hash<const void*>()(e.node) ^ (std::hash<int>()(e.operand) * 31u) ^
           (std::hash<int>()(e.element) * 131u);
  }
};

// A graph edge with its spec. For Shared specs `sources` holds the edge
// whose qparams it reuses; for Derived specs, the edges its scale is the
// product of. Both are resolved from the rule's pattern-relative EdgeRefs.
struct AnnotatedEdge {
  EdgeKey edge;
  QuantSpec spec;
  std::vector<EdgeKey> sources;
  std::string overridden_by;  // non-empty when a user override set this spec
};

// One application of one rule to a chain of nodes.
struct MatchRecord {
  int id = 0;
  std::string backend;
  std::string rule;
  std::string width;  // the rule's wider width an override chose; empty: its own annotations
  int rule_index = 0;
  std::vector<const torch::jit::Node*> nodes;  // pattern order
  std::vector<AnnotatedEdge> edges;
};

enum class NodeStatus {
  Quantized,  // part of a match
  Float,      // left in float; `reason` says why
  Skipped     // a user override excluded it
};

const char* to_string(NodeStatus);

struct NodeReport {
  const torch::jit::Node* node = nullptr;
  int id = -1;
  std::string kind;
  std::string module_path;
  NodeStatus status = NodeStatus::Float;
  int match = -1;      // index into Annotation::matches when Quantized
  std::string reason;  // rule name when Quantized; why not otherwise
};

struct OverrideReport {
  std::string description;  // "module 'layer4.*': quantize false"
  std::string where;        // config file:line:column, when known
  std::vector<int> node_ids;
  int edges_changed = 0;
};

struct Annotation {
  std::string backends;  // "x86-int8", or "a+b" for a composition
  std::vector<MatchRecord> matches;
  std::vector<NodeReport> nodes;  // every op node, graph order
  std::vector<OverrideReport> overrides;
  std::vector<std::string> warnings;
  // Post-training: conv/linear -> batch_norm pairs folded before annotation
  // (BatchNormFold::text()), which rules therefore never saw.
  std::vector<std::string> folded_batch_norms;
  // Edges that must share one set of qparams (one observer at prepare):
  // explicit Shared specs, plus output/input edges of one value that carry
  // equal specs, as PT2E groups them. Only edges with a spec appear.
  std::vector<std::vector<EdgeKey>> shared_groups;

  const MatchRecord* match_of(const torch::jit::Node* n) const;
  const AnnotatedEdge* edge(const EdgeKey& e) const;
  int group_of(const EdgeKey& e) const;  // index into shared_groups, or -1
};

class Graph;

// The value an edge carries (a list operand's element for cat's tensors).
const torch::jit::Value* edge_value(const EdgeKey& e);
// "%3 (aten::conv2d, layer1.0.conv1) input 1", for messages and reports.
std::string edge_label(const Graph& g, const EdgeKey& e);

}  // namespace qsdk
