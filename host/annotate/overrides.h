// User overrides of a backend's rules, from the YAML config's `overrides:`
// list. Overrides beat rules:
//   overrides:
//     - {module: "layer4.*", quantize: false}        # skip by module path glob
//     - {op: aten::add, quantize: false}             # skip by op kind
//     - {node: 17, quantize: false}                  # skip by node id
//     - {module: "fc", activation: {dtype: uint8, quant_min: 0, quant_max: 15}}  # re-spec
//     - {op: aten::conv2d, weight: {granularity: per_tensor}}
//     - {node: 7, width: w8a8}                       # a wider width the rule offers

// A selector may combine module, op and node (all must hold). A re-spec
// entry gives fields that replace those of the rule's observed specs on the
// selected nodes: `activation` for input/output edges, `weight` for operand 1
// of conv/linear. A `width` entry gives the selected nodes' matches the
// annotations of a wider width their rule declares (qsdk/rule.h, RuleWidth),
// as accuracy-aware mixed precision writes them to overrides.yaml.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qsdk/spec.h"

namespace YAML {
class Node;
}

namespace qsdk {

// Fields of a spec an override replaces; unset fields keep the rule's.
struct SpecPatch {
  std::optional<DType> dtype;
  std::optional<std::int64_t> quant_min, quant_max;
  std::optional<Scheme> scheme;
  std::optional<Granularity> granularity;
  std::optional<int> axis;
  std::optional<ObserverKind> observer;

  bool empty() const { return !dtype && !quant_min && !quant_max && !scheme && !granularity && !axis && !observer; }
  QuantSpec apply(QuantSpec s) const;
  std::string describe() const;  // "dtype=uint8, quant_max=15"
};

struct Override {
  std::string module_glob;  // fnmatch glob over module paths; empty: any
  std::string op;           // "aten::add"; empty: any
  int node_id = -1;         // -1: any
  bool quantize = true;     // false: skip the selected nodes
  std::optional<SpecPatch> activation;
  std::optional<SpecPatch> weight;
  std::string width;  // a RuleWidth name; empty: the rule's own annotations
  std::string where;  // "config.yaml:12:5", for reports and errors

  std::string describe() const;
};

// Parses the `overrides:` list. Errors (unknown keys, wrong types, entries
// that neither skip nor re-spec, or that skip and re-spec at once) throw
// InputError at `source`:line:column.
std::vector<Override> parse_overrides(const YAML::Node& list, const std::string& source);

// Parses an overrides YAML file: either a list, or a map with an
// `overrides:` key (so a full config file works too).
std::vector<Override> load_overrides_file(const std::string& path);

}  // namespace qsdk
