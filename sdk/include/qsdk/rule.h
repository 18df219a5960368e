// Rules: an op pattern and what each edge of a match gets. One rule per op
// pattern, like one annotator per pattern in PyTorch's quantizers, but as
// data the host matches itself.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qsdk/condition.h"
#include "qsdk/spec.h"

namespace qsdk {

// Read-only view of one matched graph node, for code constraints.
// Implemented by the host (across the C ABI's qsdk_match_view for a plugin);
// the plugin never sees LibTorch types. Methods return nullopt when
// the fact is unknown (an argument that is not a constant, say).
class NodeView {
 public:
  virtual ~NodeView() = default;
  virtual std::string_view kind() const = 0;         // "aten::conv2d"
  virtual std::string_view module_path() const = 0;  // "layer1.0.conv1", may be empty
  virtual std::size_t num_inputs() const = 0;
  virtual std::optional<std::vector<std::int64_t>> input_shape(std::size_t i) const = 0;
  virtual std::optional<std::vector<std::int64_t>> output_shape() const = 0;
  virtual std::optional<std::int64_t> int_arg(std::size_t i) const = 0;
  virtual std::optional<double> float_arg(std::size_t i) const = 0;
  virtual std::optional<std::vector<std::int64_t>> int_list_arg(std::size_t i) const = 0;
};

// The nodes of one match, in pattern order.
class MatchView {
 public:
  virtual ~MatchView() = default;
  virtual std::size_t size() const = 0;
  virtual const NodeView& node(std::size_t i) const = 0;
};

// A code constraint: a named predicate the host cannot see into. Prefer a
// Condition (qsdk/condition.h), which is data: a rule with a code constraint
// is marked "code" in every report, its rule hash covers only the name, and
// it is not fully portable.
struct Constraint {
  std::string name;
  std::function<bool(const MatchView&)> check;
};

struct EdgeAnnotation {
  EdgeRef edge;
  QuantSpec spec;
  friend bool operator==(const EdgeAnnotation& a, const EdgeAnnotation& b) {
    return a.edge == b.edge && a.spec == b.spec;
  }
  friend bool operator!=(const EdgeAnnotation& a, const EdgeAnnotation& b) { return !(a == b); }
};

// A wider width a rule offers besides its own annotations (ABI 2.3), for
// accuracy-aware mixed precision: the search (or a user's override
// `{node: N, width: NAME}`) may give a sensitive match these annotations
// instead, e.g. 8-bit weights and activations where the rule quantizes to
// 4. The same pattern, conditions and edges; only the specs differ, and
// they are validated as the rule's are.
struct RuleWidth {
  std::string name;  // "w8a8", what overrides and reports name
  std::vector<EdgeAnnotation> annotations;
};

struct Rule {
  std::string name;
  // Op chain, e.g. {"aten::conv2d", "aten::batch_norm", "aten::relu"}: each
  // op's first input is the previous op's output.
  std::vector<std::string> pattern;
  // Higher priority wins over lower; at equal priority the longer pattern
  // wins, then the rule declared first.
  int priority = 0;
  std::vector<EdgeAnnotation> annotations;
  // All must hold for the rule to apply: the conditions (data) first, then
  // the code constraints.
  std::vector<Condition> conditions;
  std::vector<Constraint> constraints;
  // Wider alternatives, narrowest first (see RuleWidth).
  std::vector<RuleWidth> widths;

  // --- fluent builder -----------------------------------------------------
  Rule() = default;
  explicit Rule(std::string rule_name) : name(std::move(rule_name)) {}

  Rule& match(std::vector<std::string> ops) {
    pattern = std::move(ops);
    return *this;
  }
  Rule& with_priority(int p) {
    priority = p;
    return *this;
  }
  Rule& annotate(EdgeRef edge, QuantSpec s) {
    annotations.push_back({edge, std::move(s)});
    return *this;
  }
  // Shorthands for the first op's activation input, weight and bias, and the
  // last op's output.
  Rule& input(QuantSpec s) { return annotate(in(0, 0), std::move(s)); }
  Rule& weight(QuantSpec s) { return annotate(in(0, 1), std::move(s)); }
  Rule& bias(QuantSpec s) { return annotate(in(0, 2), std::move(s)); }
  Rule& output(QuantSpec s) {
    return annotate(out(static_cast<int>(pattern.empty() ? 0 : pattern.size() - 1)), std::move(s));
  }
  Rule& when(Condition c) {
    conditions.push_back(std::move(c));
    return *this;
  }
  // Offers `alternative`'s annotations as the wider width `width_name`; the
  // alternative is the same rule built at the wider width (its pattern,
  // conditions and constraints are not read).
  Rule& offer_width(std::string width_name, const Rule& alternative) {
    widths.push_back({std::move(width_name), alternative.annotations});
    return *this;
  }
  // A code constraint (see Constraint): only for what conditions cannot say.
  Rule& require(std::string constraint_name, std::function<bool(const MatchView&)> check) {
    constraints.push_back({std::move(constraint_name), std::move(check)});
    return *this;
  }
};

}  // namespace qsdk
