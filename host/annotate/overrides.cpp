#include "annotate/overrides.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/yaml_input.h"

namespace qsdk {
namespace {

using yaml::scalar;
using yaml::unknown_key;

std::string where_of(const std::string& source, const YAML::Node& n) { return yaml::where(source, n); }

template <typename E>
E named(const std::string& source, const YAML::Node& n, const std::string& what) {
  E value{};
  const auto text = scalar<std::string>(source, n, what);
  if (!parse(text, value)) throw InputError(where_of(source, n), "unknown " + what + " '" + text + "'");
  return value;
}

SpecPatch parse_patch(const std::string& source, const YAML::Node& n) {
  if (!n.IsMap()) throw InputError(where_of(source, n), "expected a mapping of spec fields");
  static const std::vector<std::string> kKeys{"dtype",       "quant_min", "quant_max", "scheme",
                                              "granularity", "axis",      "observer"};
  SpecPatch p;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "dtype")
      p.dtype = named<DType>(source, v, "dtype");
    else if (key == "quant_min")
      p.quant_min = scalar<std::int64_t>(source, v, "quant_min");
    else if (key == "quant_max")
      p.quant_max = scalar<std::int64_t>(source, v, "quant_max");
    else if (key == "scheme")
      p.scheme = named<Scheme>(source, v, "scheme");
    else if (key == "granularity")
      p.granularity = named<Granularity>(source, v, "granularity");
    else if (key == "axis")
      p.axis = scalar<int>(source, v, "axis");
    else if (key == "observer")
      p.observer = named<ObserverKind>(source, v, "observer");
    else
      unknown_key(source, kv.first, kKeys);
  }
  if (p.empty()) throw InputError(where_of(source, n), "empty spec override");
  return p;
}

}  // namespace

QuantSpec SpecPatch::apply(QuantSpec s) const {
  if (dtype) s.dtype = *dtype;
  if (quant_min) s.quant_min = *quant_min;
  if (quant_max) s.quant_max = *quant_max;
  if (scheme) s.scheme = *scheme;
  if (granularity) s.granularity = *granularity;
  if (axis) s.axis = *axis;
  if (observer) s.observer = *observer;
  return s;
}

std::string SpecPatch::describe() const {
  std::ostringstream o;
  auto sep = [&, first = true]() mutable -> std::ostream& {
    if (!first) o << ", ";
    first = false;
    return o;
  };
  if (dtype) sep() << "dtype=" << to_string(*dtype);
  if (quant_min) sep() << "quant_min=" << *quant_min;
  if (quant_max) sep() << "quant_max=" << *quant_max;
  if (scheme) sep() << "scheme=" << to_string(*scheme);
  if (granularity) sep() << "granularity=" << to_string(*granularity);
  if (axis) sep() << "axis=" << *axis;
  if (observer) sep() << "observer=" << to_string(*observer);
  return o.str();
}

std::string Override::describe() const {
  std::string sel;
  auto add = [&](const std::string& s) { sel += (sel.empty() ? "" : " ") + s; };
  if (!module_glob.empty()) add("module '" + module_glob + "'");
  if (!op.empty()) add("op " + op);
  if (node_id >= 0) add("node %" + std::to_string(node_id));
  std::string action = quantize ? "" : "quantize: false";
  if (activation) action += (action.empty() ? "" : ", ") + std::string("activation {") + activation->describe() + "}";
  if (weight) action += (action.empty() ? "" : ", ") + std::string("weight {") + weight->describe() + "}";
  if (!width.empty()) action += (action.empty() ? "" : ", ") + std::string("width ") + width;
  return sel + ": " + action;
}

std::vector<Override> parse_overrides(const YAML::Node& list, const std::string& source) {
  if (!list.IsSequence()) throw InputError(where_of(source, list), "overrides must be a list");
  static const std::vector<std::string> kKeys{"module", "op", "node", "quantize", "activation", "weight", "width"};
  std::vector<Override> out;
  for (const auto& item : list) {
    if (!item.IsMap()) throw InputError(where_of(source, item), "an override must be a mapping");
    Override o;
    o.where = where_of(source, item);
    bool has_quantize = false;
    for (const auto& kv : item) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "module")
        o.module_glob = scalar<std::string>(source, v, "module");
      else if (key == "op") {
        o.op = scalar<std::string>(source, v, "op");
        if (o.op.find("::") == std::string::npos)
          throw InputError(where_of(source, v), "op must be qualified, e.g. aten::" + o.op);
      } else if (key == "node") {
        o.node_id = scalar<int>(source, v, "node");
        if (o.node_id < 0) throw InputError(where_of(source, v), "node id must be >= 0");
      } else if (key == "quantize") {
        o.quantize = scalar<bool>(source, v, "quantize");
        has_quantize = true;
      } else if (key == "activation")
        o.activation = parse_patch(source, v);
      else if (key == "weight")
        o.weight = parse_patch(source, v);
      else if (key == "width") {
        o.width = scalar<std::string>(source, v, "width");
        if (o.width.empty()) throw InputError(where_of(source, v), "width must name a width the rule offers");
      } else
        unknown_key(source, kv.first, kKeys);
    }
    if (o.module_glob.empty() && o.op.empty() && o.node_id < 0)
      throw InputError(o.where, "override selects nothing: give module, op or node");
    const bool respec = o.activation || o.weight || !o.width.empty();
    if (!has_quantize && !respec)
      throw InputError(o.where, "override does nothing: give quantize: false, activation, weight or width");
    if (!o.quantize && respec)
      throw InputError(o.where, "conflicting override: quantize: false together with a spec change");
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<Override> load_overrides_file(const std::string& path) {
  const YAML::Node root = yaml::load_file(path);
  if (root.IsMap()) {
    if (!root["overrides"]) throw InputError(path, "no 'overrides' key");
    return parse_overrides(root["overrides"], path);
  }
  return parse_overrides(root, path);
}

}  // namespace qsdk
