#include "plugins/backend_yaml.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/fingerprint.h"
#include "common/yaml_input.h"
#include "qsdk/abi.h"

namespace qsdk {
namespace {

void emit_edge_list(YAML::Emitter& out, const std::vector<EdgeRef>& edges) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const auto& e : edges) out << to_string(e);
  out << YAML::EndSeq;
}

void emit_spec(YAML::Emitter& out, const QuantSpec& s) {
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "kind" << YAML::Value << to_string(s.kind);
  switch (s.kind) {
    case SpecKind::Float: break;
    case SpecKind::Shared: out << YAML::Key << "shared_with" << YAML::Value << to_string(s.shared_with); break;
    default:
      out << YAML::Key << "dtype" << YAML::Value << to_string(s.dtype);
      out << YAML::Key << "quant_min" << YAML::Value << s.quant_min;
      out << YAML::Key << "quant_max" << YAML::Value << s.quant_max;
      out << YAML::Key << "scheme" << YAML::Value << to_string(s.scheme);
  }
  if (s.kind == SpecKind::Observed || s.kind == SpecKind::Dynamic) {
    out << YAML::Key << "granularity" << YAML::Value << to_string(s.granularity);
    if (s.granularity == Granularity::PerChannel) out << YAML::Key << "axis" << YAML::Value << s.axis;
    out << YAML::Key << "observer" << YAML::Value << to_string(s.observer);
    if (s.reduce_range) out << YAML::Key << "reduce_range" << YAML::Value << true;
    out << YAML::Key << "eps" << YAML::Value << s.eps;
  }
  if (s.kind == SpecKind::Fixed) {
    out << YAML::Key << "scale" << YAML::Value << s.scale;
    out << YAML::Key << "zero_point" << YAML::Value << s.zero_point;
  }
  if (s.kind == SpecKind::Derived) {
    out << YAML::Key << "derived_from" << YAML::Value;
    emit_edge_list(out, s.derived_from);
  }
  out << YAML::EndMap;
}

void emit_annotations(YAML::Emitter& out, const std::vector<EdgeAnnotation>& list) {
  out << YAML::BeginSeq;
  for (const auto& a : list) {
    out << YAML::BeginMap << YAML::Key << "edge" << YAML::Value << to_string(a.edge);
    out << YAML::Key << "spec" << YAML::Value;
    emit_spec(out, a.spec);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

// {node: 0, arg: groups, op: eq, values: [1]}
// {node: 0, input: 0, fact: dim, dim: 1, op: range, values: [1, 4096], unknown_passes: true}
void emit_condition(YAML::Emitter& out, const Condition& c) {
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "node" << YAML::Value << c.node;
  if (c.subject == ConditionSubject::Arg) {
    out << YAML::Key << "arg" << YAML::Value << c.arg;
  } else {
    out << YAML::Key << "input" << YAML::Value << c.input;
    out << YAML::Key << "fact" << YAML::Value << to_string(c.subject);
    if (c.subject == ConditionSubject::InputDim) out << YAML::Key << "dim" << YAML::Value << c.dim;
  }
  out << YAML::Key << "op" << YAML::Value << to_string(c.op);
  if (!c.values.empty()) out << YAML::Key << "values" << YAML::Value << YAML::Flow << c.values;
  if (!c.names.empty()) out << YAML::Key << "names" << YAML::Value << YAML::Flow << c.names;
  if (c.unknown_passes) out << YAML::Key << "unknown_passes" << YAML::Value << true;
  out << YAML::EndMap;
}

// --- parsing -----------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& cause) const {
    const auto mark = at.Mark();
    std::string where = source_;
    if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    throw InputError(where, cause);
  }

  YAML::Node required(const YAML::Node& map, const char* key) const {
    if (!map.IsMap()) fail(map, "expected a mapping");
    YAML::Node v = map[key];
    if (!v) fail(map, std::string("missing key '") + key + "'");
    return v;
  }

  template <typename T>
  T scalar(const YAML::Node& n, const char* what) const {
    if (!n.IsScalar()) fail(n, std::string(what) + " must be a scalar");
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      fail(n, std::string(what) + " has the wrong type: '" + n.Scalar() + "'");
    }
  }

  template <typename E>
  E named(const YAML::Node& n, const char* what) const {
    E value{};
    const auto text = scalar<std::string>(n, what);
    if (!parse(text, value)) fail(n, std::string("unknown ") + what + " '" + text + "'");
    return value;
  }

  EdgeRef edge(const YAML::Node& n) const { return named<EdgeRef>(n, "edge"); }

  QuantSpec spec(const YAML::Node& n) const {
    QuantSpec s;
    s.kind = named<SpecKind>(required(n, "kind"), "spec kind");
    if (auto v = n["dtype"]) s.dtype = named<DType>(v, "dtype");
    if (auto v = n["quant_min"]) s.quant_min = scalar<std::int64_t>(v, "quant_min");
    if (auto v = n["quant_max"]) s.quant_max = scalar<std::int64_t>(v, "quant_max");
    if (auto v = n["scheme"]) s.scheme = named<Scheme>(v, "scheme");
    if (auto v = n["granularity"]) s.granularity = named<Granularity>(v, "granularity");
    if (auto v = n["axis"]) s.axis = scalar<int>(v, "axis");
    if (auto v = n["observer"]) s.observer = named<ObserverKind>(v, "observer");
    if (auto v = n["reduce_range"]) s.reduce_range = scalar<bool>(v, "reduce_range");
    if (auto v = n["eps"]) s.eps = scalar<double>(v, "eps");
    if (auto v = n["scale"]) s.scale = scalar<double>(v, "scale");
    if (auto v = n["zero_point"]) s.zero_point = scalar<std::int64_t>(v, "zero_point");
    if (auto v = n["shared_with"]) s.shared_with = edge(v);
    if (auto v = n["derived_from"]) {
      if (!v.IsSequence()) fail(v, "derived_from must be a list of edges");
      for (const auto& e : v) s.derived_from.push_back(edge(e));
    }
    return s;
  }

  std::vector<EdgeAnnotation> annotations(const YAML::Node& list) const {
    if (!list.IsSequence()) fail(list, "annotations must be a list");
    std::vector<EdgeAnnotation> out;
    for (const auto& a : list) out.push_back({edge(required(a, "edge")), spec(required(a, "spec"))});
    return out;
  }

  Rule rule(const YAML::Node& n) const {
    Rule r(scalar<std::string>(required(n, "name"), "rule name"));
    const auto pattern = required(n, "pattern");
    if (!pattern.IsSequence()) fail(pattern, "pattern must be a list of op names");
    for (const auto& op : pattern) r.pattern.push_back(scalar<std::string>(op, "op name"));
    if (auto v = n["priority"]) r.priority = scalar<int>(v, "priority");
    if (auto list = n["annotations"]) r.annotations = annotations(list);
    if (auto list = n["widths"]) {
      if (!list.IsSequence()) fail(list, "widths must be a list");
      for (const auto& w : list)
        r.widths.push_back(
            {scalar<std::string>(required(w, "name"), "width name"), annotations(required(w, "annotations"))});
    }
    if (auto list = n["conditions"]) {
      if (!list.IsSequence()) fail(list, "conditions must be a list");
      for (const auto& c : list) r.conditions.push_back(condition(c));
    }
    if (auto list = n["code_constraints"]) {
      if (!list.IsSequence()) fail(list, "code_constraints must be a list of names");
      for (const auto& c : list) r.constraints.push_back({scalar<std::string>(c, "code constraint"), nullptr});
    }
    return r;
  }

  Condition condition(const YAML::Node& n) const {
    Condition c;
    c.node = scalar<int>(required(n, "node"), "node");
    if (auto a = n["arg"]) {
      c.subject = ConditionSubject::Arg;
      c.arg = scalar<std::string>(a, "arg");
    } else {
      c.input = scalar<int>(required(n, "input"), "input");
      const auto fact = required(n, "fact");
      c.subject = named<ConditionSubject>(fact, "fact");
      if (c.subject == ConditionSubject::Arg) fail(fact, "fact 'arg' is written as arg: <name>");
      if (c.subject == ConditionSubject::InputDim) c.dim = scalar<int>(required(n, "dim"), "dim");
    }
    c.op = named<ConditionOp>(required(n, "op"), "condition op");
    if (auto v = n["values"]) {
      if (!v.IsSequence()) fail(v, "values must be a list of numbers");
      for (const auto& x : v) c.values.push_back(scalar<double>(x, "value"));
    }
    if (auto v = n["names"]) {
      if (!v.IsSequence()) fail(v, "names must be a list");
      for (const auto& x : v) c.names.push_back(scalar<std::string>(x, "name"));
    }
    if (auto v = n["unknown_passes"]) c.unknown_passes = scalar<bool>(v, "unknown_passes");
    return c;
  }

 private:
  std::string source_;
};

template <typename T>
void diff_field(std::vector<std::string>& out, const std::string& what, const T& a, const T& b) {
  if (!(a == b)) out.push_back(what + " differs");
}

}  // namespace

std::string backend_to_yaml(const Backend& b) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << b.name;
  out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << b.version;
  out << YAML::Key << "vendor" << YAML::Value << b.vendor;
  out << YAML::Key << "description" << YAML::Value << b.description;
  if (!b.homepage.empty()) out << YAML::Key << "homepage" << YAML::Value << b.homepage;
  out << YAML::Key << "abi_version" << YAML::Value << kAbiVersion;
  out << YAML::Key << "lowering" << YAML::Value << to_string(b.lowering);
  const Arithmetic& a = b.arithmetic;
  out << YAML::Key << "arithmetic" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "rounding" << YAML::Value << to_string(a.rounding);
  out << YAML::Key << "multiplier" << YAML::Value << to_string(a.multiplier);
  out << YAML::Key << "accumulator_bits" << YAML::Value << a.accumulator_bits;
  out << YAML::Key << "accumulator_overflow" << YAML::Value << to_string(a.accumulator_overflow);
  out << YAML::Key << "pooling_rounding" << YAML::Value << to_string(a.pooling_rounding);
  out << YAML::Key << "elementwise_rounding" << YAML::Value << to_string(a.elementwise_rounding);
  out << YAML::EndMap;
  out << YAML::Key << "engine" << YAML::Value << static_cast<bool>(b.engine);
  out << YAML::Key << "options" << YAML::Value << YAML::BeginSeq;
  for (const auto& o : b.options) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << o.name;
    out << YAML::Key << "description" << YAML::Value << o.description;
    out << YAML::Key << "default" << YAML::Value << YAML::DoubleQuoted << o.default_value;
    out << YAML::Key << "allowed" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& a : o.allowed) out << YAML::DoubleQuoted << a;
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (const auto& r : b.rules) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << r.name;
    out << YAML::Key << "pattern" << YAML::Value << YAML::Flow << r.pattern;
    out << YAML::Key << "priority" << YAML::Value << r.priority;
    out << YAML::Key << "annotations" << YAML::Value;
    emit_annotations(out, r.annotations);
    if (!r.widths.empty()) {
      out << YAML::Key << "widths" << YAML::Value << YAML::BeginSeq;
      for (const auto& w : r.widths) {
        out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << w.name << YAML::Key << "annotations"
            << YAML::Value;
        emit_annotations(out, w.annotations);
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    if (!r.conditions.empty()) {
      out << YAML::Key << "conditions" << YAML::Value << YAML::BeginSeq;
      for (const auto& c : r.conditions) emit_condition(out, c);
      out << YAML::EndSeq;
    }
    if (!r.constraints.empty()) {
      out << YAML::Key << "code_constraints" << YAML::Value;
      out << YAML::Comment("code: opaque to the host, covered by name only; not portable");
      out << YAML::BeginSeq;
      for (const auto& c : r.constraints) out << c.name;
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Backend backend_from_yaml(const std::string& text, const std::string& source) {
  // Syntax errors, duplicate keys, non-UTF-8 text and alias bombs are
  // refused as in configs and specs.
  const YAML::Node root = yaml::load_text(text, source);
  Reader rd(source);
  if (!root.IsMap()) rd.fail(root, "expected a backend description (a mapping)");
  Backend b;
  b.name = rd.scalar<std::string>(rd.required(root, "name"), "name");
  b.version = rd.scalar<std::string>(rd.required(root, "version"), "version");
  if (auto v = root["vendor"]) b.vendor = rd.scalar<std::string>(v, "vendor");
  if (auto v = root["description"]) b.description = rd.scalar<std::string>(v, "description");
  if (auto v = root["homepage"]) b.homepage = rd.scalar<std::string>(v, "homepage");
  b.lowering = rd.named<Lowering>(rd.required(root, "lowering"), "lowering");
  if (auto m = root["arithmetic"]) {
    if (!m.IsMap()) rd.fail(m, "arithmetic must be a mapping");
    Arithmetic& a = b.arithmetic;
    if (auto v = m["rounding"]) a.rounding = rd.named<Rounding>(v, "rounding");
    if (auto v = m["multiplier"]) a.multiplier = rd.named<Multiplier>(v, "multiplier");
    if (auto v = m["accumulator_bits"]) a.accumulator_bits = rd.scalar<int>(v, "accumulator_bits");
    if (auto v = m["accumulator_overflow"]) a.accumulator_overflow = rd.named<Overflow>(v, "accumulator_overflow");
    if (auto v = m["pooling_rounding"]) a.pooling_rounding = rd.named<Rounding>(v, "pooling_rounding");
    if (auto v = m["elementwise_rounding"]) a.elementwise_rounding = rd.named<Rounding>(v, "elementwise_rounding");
  }
  // `engine` says whether the plugin had one; a description cannot carry it.
  if (auto list = root["options"]) {
    if (!list.IsSequence()) rd.fail(list, "options must be a list");
    for (const auto& o : list) {
      BackendOption opt;
      opt.name = rd.scalar<std::string>(rd.required(o, "name"), "option name");
      if (auto v = o["description"]) opt.description = rd.scalar<std::string>(v, "description");
      if (auto v = o["default"]) opt.default_value = rd.scalar<std::string>(v, "default");
      if (auto v = o["allowed"]) {
        if (!v.IsSequence()) rd.fail(v, "allowed must be a list of values");
        for (const auto& a : v) opt.allowed.push_back(rd.scalar<std::string>(a, "allowed value"));
      }
      b.options.push_back(std::move(opt));
    }
  }
  const auto rules = rd.required(root, "rules");
  if (!rules.IsSequence()) rd.fail(rules, "rules must be a list");
  for (const auto& r : rules) b.rules.push_back(rd.rule(r));
  return b;
}

namespace {

// "uint8 [0, 255] affine per_tensor minmax" and the like: every field that
// matters for the kind, for diffs.
std::string spec_text(const QuantSpec& q) {
  std::ostringstream o;
  o << to_string(q.kind);
  switch (q.kind) {
    case SpecKind::Float: break;
    case SpecKind::Shared: o << " with " << to_string(q.shared_with); break;
    case SpecKind::Derived:
      o << " " << to_string(q.dtype) << " [" << q.quant_min << ", " << q.quant_max << "] from";
      for (const auto& e : q.derived_from) o << " " << to_string(e);
      break;
    case SpecKind::Fixed:
      o << " " << to_string(q.dtype) << " [" << q.quant_min << ", " << q.quant_max << "] scale " << q.scale
        << " zero_point " << q.zero_point;
      break;
    default:
      o << " " << to_string(q.dtype) << " [" << q.quant_min << ", " << q.quant_max << "] " << to_string(q.scheme) << " "
        << to_string(q.granularity);
      if (q.granularity == Granularity::PerChannel) o << " axis " << q.axis;
      o << " " << to_string(q.observer);
      if (q.reduce_range) o << " reduce_range";
      if (q.eps != QuantSpec{}.eps) o << " eps " << q.eps;
  }
  return o.str();
}

std::string list_text(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

template <typename T>
void changed(std::vector<std::string>& out, const std::string& what, const T& a, const T& b,
             const std::function<std::string(const T&)>& text) {
  if (!(a == b)) out.push_back("~ " + what + ": " + text(a) + " -> " + text(b));
}

// Annotations by edge: an edge may gain, lose or change its spec.
void compare_annotations(std::vector<std::string>& out, const std::string& label, const std::vector<EdgeAnnotation>& x,
                         const std::vector<EdgeAnnotation>& y) {
  std::map<std::string, std::string> ax, ay;
  for (const auto& a : x) ax[to_string(a.edge)] = spec_text(a.spec);
  for (const auto& a : y) ay[to_string(a.edge)] = spec_text(a.spec);
  for (const auto& [edge, spec] : ax) {
    auto it = ay.find(edge);
    if (it == ay.end())
      out.push_back("~ " + label + edge + ": " + spec + " -> (not annotated)");
    else if (it->second != spec)
      out.push_back("~ " + label + edge + ": " + spec + " -> " + it->second);
  }
  for (const auto& [edge, spec] : ay)
    if (!ax.count(edge)) out.push_back("~ " + label + edge + ": (not annotated) -> " + spec);
}

void compare_rules(std::vector<std::string>& out, const Rule& x, const Rule& y) {
  const std::string label = "rule '" + x.name + "' ";
  const std::function<std::string(const std::vector<std::string>&)> as_list = list_text;
  const std::function<std::string(const int&)> as_int = [](const int& v) { return std::to_string(v); };
  changed(out, label + "pattern", x.pattern, y.pattern, as_list);
  changed(out, label + "priority", x.priority, y.priority, as_int);
  compare_annotations(out, label, x.annotations, y.annotations);
  // Widths by name: one may appear, disappear or change its specs.
  std::map<std::string, const RuleWidth*> wx, wy;
  for (const auto& w : x.widths) wx[w.name] = &w;
  for (const auto& w : y.widths) wy[w.name] = &w;
  for (const auto& [name, w] : wx) {
    auto it = wy.find(name);
    if (it == wy.end())
      out.push_back("- " + label + "width '" + name + "'");
    else
      compare_annotations(out, label + "width '" + name + "' ", w->annotations, it->second->annotations);
  }
  for (const auto& [name, w] : wy)
    if (!wx.count(name)) out.push_back("+ " + label + "width '" + name + "'");
  std::vector<std::string> kx, ky, cx, cy;
  for (const auto& c : x.conditions) kx.push_back(to_string(c));
  for (const auto& c : y.conditions) ky.push_back(to_string(c));
  changed(out, label + "conditions", kx, ky, as_list);
  for (const auto& c : x.constraints) cx.push_back(c.name);
  for (const auto& c : y.constraints) cy.push_back(c.name);
  changed(out, label + "code constraints (by name only)", cx, cy, as_list);
}

}  // namespace

std::vector<std::string> compare_backends(const Backend& a, const Backend& b) {
  std::vector<std::string> out;
  const std::function<std::string(const std::string&)> quoted = [](const std::string& v) { return "'" + v + "'"; };
  changed(out, "name", a.name, b.name, quoted);
  changed(out, "version", a.version, b.version, quoted);
  changed(out, "vendor", a.vendor, b.vendor, quoted);
  changed(out, "description", a.description, b.description, quoted);
  changed(out, "homepage", a.homepage, b.homepage, quoted);
  const std::function<std::string(const Lowering&)> lowering = [](const Lowering& l) { return to_string(l); };
  changed(out, "lowering", a.lowering, b.lowering, lowering);
  const Arithmetic &xa = a.arithmetic, &ya = b.arithmetic;
  const std::function<std::string(const Rounding&)> rounding = [](const Rounding& r) { return to_string(r); };
  changed(out, "arithmetic rounding", xa.rounding, ya.rounding, rounding);
  const std::function<std::string(const Multiplier&)> multiplier = [](const Multiplier& m) { return to_string(m); };
  changed(out, "arithmetic multiplier", xa.multiplier, ya.multiplier, multiplier);
  const std::function<std::string(const int&)> bits = [](const int& v) { return std::to_string(v); };
  changed(out, "arithmetic accumulator_bits", xa.accumulator_bits, ya.accumulator_bits, bits);
  const std::function<std::string(const Overflow&)> overflow = [](const Overflow& o) { return to_string(o); };
  changed(out, "arithmetic accumulator_overflow", xa.accumulator_overflow, ya.accumulator_overflow, overflow);
  changed(out, "arithmetic pooling_rounding", xa.pooling_rounding, ya.pooling_rounding, rounding);
  changed(out, "arithmetic elementwise_rounding", xa.elementwise_rounding, ya.elementwise_rounding, rounding);
  std::map<std::string, const BackendOption*> ox, oy;
  for (const auto& o : a.options) ox[o.name] = &o;
  for (const auto& o : b.options) oy[o.name] = &o;
  for (const auto& [name, o] : ox) {
    auto it = oy.find(name);
    if (it == oy.end()) {
      out.push_back("- option '" + name + "'");
      continue;
    }
    changed(out, "option '" + name + "' default", o->default_value, it->second->default_value, quoted);
    const std::function<std::string(const std::vector<std::string>&)> as_list = list_text;
    changed(out, "option '" + name + "' allowed", o->allowed, it->second->allowed, as_list);
  }
  for (const auto& [name, o] : oy)
    if (!ox.count(name)) out.push_back("+ option '" + name + "' (default '" + o->default_value + "')");

  // Rules by name, in the first backend's order, then the second's new ones.
  std::map<std::string, const Rule*> ry;
  for (const auto& r : b.rules) ry[r.name] = &r;
  std::set<std::string> in_a;
  for (const auto& r : a.rules) {
    in_a.insert(r.name);
    auto it = ry.find(r.name);
    if (it == ry.end())
      out.push_back("- rule '" + r.name + "' " + list_text(r.pattern));
    else
      compare_rules(out, r, *it->second);
  }
  for (const auto& r : b.rules)
    if (!in_a.count(r.name)) out.push_back("+ rule '" + r.name + "' " + list_text(r.pattern));
  // Same rules in another order change precedence at equal priority.
  if (out.empty()) {
    std::vector<std::string> na, nb;
    for (const auto& r : a.rules) na.push_back(r.name);
    for (const auto& r : b.rules) nb.push_back(r.name);
    if (na != nb) out.push_back("~ rule order: " + list_text(na) + " -> " + list_text(nb));
  }
  return out;
}

std::string rule_hash(const Backend& backend) {
  // Everything but the identity fields: the rules, options and lowering
  // decide what a model becomes.
  Backend rules_only = backend;
  rules_only.name.clear();
  rules_only.version.clear();
  rules_only.vendor.clear();
  rules_only.description.clear();
  rules_only.homepage.clear();
  rules_only.engine = nullptr;  // runs models; does not decide what they become
  Fingerprint f;
  f.add(backend_to_yaml(rules_only));
  return f.hex();
}

}  // namespace qsdk
