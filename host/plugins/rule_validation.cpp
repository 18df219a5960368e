#include "plugins/rule_validation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/yaml_input.h"

namespace qsdk {
namespace {

bool has_storage(SpecKind k) { return k != SpecKind::Float && k != SpecKind::Shared; }

// " (did you mean 'groups'?)" for a typo of a known name, else the list of
// known names.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& known) {
  if (name.size() > 200) return "";
  if (const std::string best = yaml::closest(name, known); !best.empty()) return " (did you mean '" + best + "'?)";
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  return " (known: " + list + ")";
}

// A name the plugin chose, cut short for messages: a 50 MB rule name must not
// be copied into every problem that mentions the rule.
std::string shown(const std::string& text) {
  constexpr std::size_t kMaxShown = 80;
  return text.size() <= kMaxShown ? text : text.substr(0, kMaxShown) + "...";
}

// Every problem is counted; only the first kMaxListedProblems are kept as
// text, so a plugin with 100,000 bad rules gives a short message, not 100 MB.
class ProblemList {
 public:
  void add(std::string text) {
    ++total_;
    if (kept_.size() < kMaxListedProblems) kept_.push_back(std::move(text));
  }
  std::vector<std::string> finish() && {
    if (total_ > kept_.size())
      kept_.push_back("and " + std::to_string(total_ - kept_.size()) + " more problems (" + std::to_string(total_) +
                      " in all)");
    return std::move(kept_);
  }

 private:
  std::vector<std::string> kept_;
  std::size_t total_ = 0;
};

// Lower-case letters, digits, '-', '_', '.', starting with a letter or digit
// (a loop, not std::regex: libstdc++'s regex recurses per character and
// overflows the stack on long input).
bool is_valid_backend_name(const std::string& name) {
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty() || !lower_or_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_or_digit(c) || c == '_' || c == '.' || c == '-'; });
}

// What makes two rules interchangeable for matching: pattern, priority,
// conditions and code constraint names, as one string (each part length-prefixed, so different
// rules never give the same key).
std::string matching_key(const Rule& r) {
  std::string key = std::to_string(r.priority) + "|" + std::to_string(r.pattern.size());
  for (const auto& op : r.pattern) key += "|" + std::to_string(op.size()) + ":" + op;
  for (const auto& c : r.conditions) {
    const std::string text = to_string(c);
    key += "|c" + std::to_string(text.size()) + ":" + text;
  }
  for (const auto& c : r.constraints) key += "|" + std::to_string(c.name.size()) + ":" + c.name;
  return key;
}

class RuleChecker {
 public:
  RuleChecker(const Rule& rule, std::size_t index, const OpSchemaLookup& op_schema, ProblemList& problems)
      : rule_(rule), op_schema_(op_schema), problems_(problems) {
    label_ = "rule " + std::to_string(index) + (rule.name.empty() ? "" : " '" + shown(rule.name) + "'");
  }

  void run() {
    if (rule_.name.empty()) fail("has no name");
    if (rule_.pattern.empty()) {
      fail("has an empty pattern");
      return;
    }
    for (const auto& op : rule_.pattern) {
      auto schema = op_schema_(op);
      if (!schema)
        fail("pattern names unknown op '" + shown(op) + "' (expected a qualified LibTorch op such as aten::conv2d)");
      schemas_.push_back(schema.value_or(OpSchema{}));
    }
    // The first annotation of each edge, looked up by shared and derived specs.
    for (const auto& a : rule_.annotations) annotations_.emplace(std::make_pair(a.edge.node, a.edge.input), &a);
    for (const auto& a : rule_.annotations) {
      check_edge(a.edge, "annotates");
      if (annotation_of(a.edge) != &a) fail("annotates " + to_string(a.edge) + " twice");
      check_spec(a);
    }
    for (std::size_t i = 0; i < rule_.conditions.size(); ++i) check_condition(rule_.conditions[i], i);
    for (const auto& c : rule_.constraints) {
      if (c.name.empty()) fail("has a code constraint without a name");
      if (!c.check) fail("code constraint '" + shown(c.name) + "' has no predicate");
    }
  }

 private:
  void fail(const std::string& what) { problems_.add(label_ + " " + what); }

  bool check_edge(const EdgeRef& e, const std::string& verb) {
    const int last = static_cast<int>(rule_.pattern.size()) - 1;
    if (e.node < 0 || e.node > last) {
      fail(verb + " " + to_string(e) + ": node " + std::to_string(e.node) + " is outside the pattern (0.." +
           std::to_string(last) + ")");
      return false;
    }
    if (e.is_output()) {
      if (e.node != last) {
        fail(verb + " " + to_string(e) + ": only the last op's output leaves a pattern");
        return false;
      }
      return true;
    }
    if (e.input < 0) {
      fail(verb + " " + to_string(e) + ": negative input index");
      return false;
    }
    if (e.node > 0 && e.input == 0) {
      fail(verb + " " + to_string(e) + ": that is the previous op's output, inside the pattern");
      return false;
    }
    const std::size_t arity = schemas_[static_cast<std::size_t>(e.node)].arity;
    if (arity && static_cast<std::size_t>(e.input) >= arity) {
      fail(verb + " " + to_string(e) + ": " + rule_.pattern[static_cast<std::size_t>(e.node)] + " has only " +
           std::to_string(arity) + " inputs");
      return false;
    }
    return true;
  }

  const EdgeAnnotation* annotation_of(const EdgeRef& e) const {
    auto it = annotations_.find({e.node, e.input});
    return it == annotations_.end() ? nullptr : it->second;
  }

  void check_spec(const EdgeAnnotation& a) {
    const QuantSpec& s = a.spec;
    const std::string where = "spec for " + to_string(a.edge);
    for (const auto& p : spec_problems(s)) fail(where + ": " + p);
    if (s.kind == SpecKind::Shared) {
      if (s.shared_with == a.edge)
        fail(where + ": shares qparams with itself");
      else if (!check_edge(s.shared_with, "shares with")) {
      } else if (auto* target = annotation_of(s.shared_with); !target)
        fail(where + ": shares with " + to_string(s.shared_with) + ", which the rule does not annotate");
      else if (target->spec.kind == SpecKind::Float)
        fail(where + ": shares with " + to_string(s.shared_with) + ", which is left in float");
    }
    if (s.kind == SpecKind::Derived) {
      if (s.derived_from.empty()) fail(where + ": derived spec lists no source edges");
      for (const auto& src : s.derived_from) {
        if (!check_edge(src, "derives from")) continue;
        auto* source = annotation_of(src);
        if (!source || source->spec.kind == SpecKind::Float || source->spec.kind == SpecKind::Derived)
          fail(where + ": derives from " + to_string(src) + ", which the rule does not quantize");
      }
    }
  }

  void check_condition(const Condition& c, std::size_t index) {
    const std::string where = "condition " + std::to_string(index) + " (" + shown(to_string(c)) + ")";
    const int last = static_cast<int>(rule_.pattern.size()) - 1;
    if (c.node < 0 || c.node > last) {
      fail(where + ": node " + std::to_string(c.node) + " is outside the pattern (0.." + std::to_string(last) + ")");
      return;
    }
    const std::string& op = rule_.pattern[static_cast<std::size_t>(c.node)];
    const OpSchema& schema = schemas_[static_cast<std::size_t>(c.node)];
    if (c.subject == ConditionSubject::Arg) {
      if (!schema.argument_names.empty() &&
          std::find(schema.argument_names.begin(), schema.argument_names.end(), c.arg) == schema.argument_names.end())
        fail(where + ": " + shown(op) + " has no argument '" + shown(c.arg) + "'" +
             did_you_mean(c.arg, schema.argument_names));
    } else if (c.input < 0 || (schema.arity && static_cast<std::size_t>(c.input) >= schema.arity)) {
      fail(where + ": " + shown(op) + " has no input " + std::to_string(c.input) +
           (schema.arity ? " (it takes " + std::to_string(schema.arity) + ")" : ""));
    }
    for (double v : c.values)
      if (!std::isfinite(v)) fail(where + ": values must be finite numbers");
    const bool by_name = c.subject == ConditionSubject::InputDtype;
    const bool numeric = c.subject != ConditionSubject::Arg && !by_name;
    if (by_name && !c.values.empty()) fail(where + ": a dtype is compared by name (\"float32\"), not by number");
    if (numeric && !c.names.empty()) fail(where + ": " + to_string(c.subject) + " is compared with numbers");
    if (!c.values.empty() && !c.names.empty()) fail(where + ": gives both numbers and names");
    if (by_name)
      for (const auto& n : c.names)
        if (std::find(condition_dtype_names().begin(), condition_dtype_names().end(), n) ==
            condition_dtype_names().end())
          fail(where + ": unknown dtype '" + shown(n) + "'" + did_you_mean(n, condition_dtype_names()));
    if (c.subject == ConditionSubject::InputIsConstant)
      for (double v : c.values)
        if (v != 0 && v != 1) fail(where + ": constant is 0 or 1 (false or true)");
    const std::size_t count = c.values.size() + c.names.size();
    switch (c.op) {
      case ConditionOp::Eq:
      case ConditionOp::Ne:
      case ConditionOp::In:
        if (count == 0) fail(where + ": " + to_string(c.op) + " needs a value");
        break;
      case ConditionOp::Range:
        if (c.values.size() != 2 || !c.names.empty())
          fail(where + ": range needs two numbers, [low, high]");
        else if (c.values[0] > c.values[1])
          fail(where + ": range [" + number_text(c.values[0]) + ", " + number_text(c.values[1]) + "] is empty");
        break;
    }
  }

  const Rule& rule_;
  const OpSchemaLookup& op_schema_;
  ProblemList& problems_;
  std::string label_;
  std::vector<OpSchema> schemas_;
  std::map<std::pair<int, int>, const EdgeAnnotation*> annotations_;
};

// A rule's wider widths (RuleWidth): named, once each, annotating exactly
// the rule's edges, each set of specs valid as the rule's own would be.
void check_widths(const Rule& r, std::size_t index, const OpSchemaLookup& op_schema, ProblemList& problems) {
  const std::string label = "rule " + std::to_string(index) + " '" + shown(r.name) + "'";
  std::set<std::pair<int, int>> edges;
  for (const auto& a : r.annotations) edges.insert({a.edge.node, a.edge.input});
  std::unordered_set<std::string_view> names;
  for (const auto& w : r.widths) {
    if (w.name.empty() || !names.insert(w.name).second)
      problems.add(label + ": width '" + shown(w.name) + "' is unnamed or declared twice");
    std::set<std::pair<int, int>> width_edges;
    for (const auto& a : w.annotations) width_edges.insert({a.edge.node, a.edge.input});
    if (width_edges != edges)
      problems.add(label + ": width '" + shown(w.name) + "' annotates other edges than the rule (" +
                   std::to_string(width_edges.size()) + " against " + std::to_string(edges.size()) +
                   "); a width changes specs only");
    Rule alternative = r;
    alternative.name = r.name + "' width '" + w.name;
    alternative.annotations = w.annotations;
    alternative.widths.clear();
    RuleChecker(alternative, index, op_schema, problems).run();
  }
}

}  // namespace

std::vector<std::string> spec_problems(const QuantSpec& s) {
  std::vector<std::string> out;
  if (has_storage(s.kind)) {
    if (s.quant_min >= s.quant_max)
      out.push_back("quant_min (" + std::to_string(s.quant_min) + ") must be below quant_max (" +
                    std::to_string(s.quant_max) + ")");
    auto [lo, hi] = dtype_limits(s.dtype);
    if (s.quant_min < lo || s.quant_max > hi)
      out.push_back("range [" + std::to_string(s.quant_min) + ", " + std::to_string(s.quant_max) + "] does not fit " +
                    to_string(s.dtype) + " [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  if ((s.kind == SpecKind::Observed || s.kind == SpecKind::Dynamic) && !(s.eps > 0))
    out.push_back("eps must be positive");
  if (s.kind == SpecKind::Observed && s.granularity == Granularity::PerChannel && s.axis < 0)
    out.push_back("per-channel spec needs a channel axis (axis >= 0)");
  // Qparams no observer can produce (prepare/observers.h would refuse them
  // at prepare; refuse them at load instead, naming the rule).
  if (s.kind == SpecKind::Observed || s.kind == SpecKind::Dynamic) {
    const bool histogram = s.observer == ObserverKind::MSE || s.observer == ObserverKind::HistogramPercentile ||
                           s.observer == ObserverKind::HistogramEntropy;
    if (histogram && s.granularity == Granularity::PerChannel)
      out.push_back(std::string("observer ") + to_string(s.observer) + " is per-tensor only; no observer computes " +
                    "per-channel qparams from a histogram");
    if (s.quant_min < s.quant_max && (s.quant_min > 0 || s.quant_max < 0))
      out.push_back("range [" + std::to_string(s.quant_min) + ", " + std::to_string(s.quant_max) +
                    "] does not contain 0, so no zero point represents 0.0 exactly");
    if (s.reduce_range && s.scheme == Scheme::Symmetric && s.dtype == DType::UInt8)
      out.push_back("reduce_range is not supported for symmetric uint8");
  }
  if (s.kind == SpecKind::Dynamic && s.granularity == Granularity::PerChannel)
    out.push_back("dynamic specs are per-tensor");
  if (s.kind == SpecKind::Fixed) {
    if (!(s.scale > 0)) out.push_back("fixed scale must be positive");
    if (s.zero_point < s.quant_min || s.zero_point > s.quant_max)
      out.push_back("fixed zero point " + std::to_string(s.zero_point) + " lies outside [" +
                    std::to_string(s.quant_min) + ", " + std::to_string(s.quant_max) + "]");
  }
  return out;
}

std::vector<std::string> validate_backend(const Backend& backend, const OpSchemaLookup& op_schema) {
  ProblemList problems;
  if (!is_valid_backend_name(backend.name))
    problems.add("backend name '" + shown(backend.name) +
                 "' must be lower-case letters, digits, '-', '_' or '.', starting with a letter or digit");
  if (backend.version.empty()) problems.add("backend has no version");

  std::unordered_set<std::string_view> option_names;
  for (const auto& o : backend.options) {
    if (o.name.empty() || !option_names.insert(o.name).second)
      problems.add("option '" + shown(o.name) + "' is unnamed or declared twice");
    if (!o.allowed.empty() && std::find(o.allowed.begin(), o.allowed.end(), o.default_value) == o.allowed.end())
      problems.add("option '" + shown(o.name) + "': default '" + shown(o.default_value) + "' is not an allowed value");
  }

  // Rules repeat the same few ops; ask the op registry once per name.
  std::unordered_map<std::string, std::optional<OpSchema>> schema_of;
  const OpSchemaLookup cached_schema = [&](const std::string& op) {
    auto it = schema_of.find(op);
    if (it == schema_of.end()) it = schema_of.emplace(op, op_schema(op)).first;
    return it->second;
  };

  // Every check below is a hash lookup against earlier rules, so validation
  // stays linear in the number of rules.
  std::unordered_set<std::string_view> rule_names;
  std::unordered_map<std::string, std::size_t> first_rule_with_key;
  for (std::size_t i = 0; i < backend.rules.size(); ++i) {
    const Rule& r = backend.rules[i];
    if (!r.name.empty() && !rule_names.insert(r.name).second)
      problems.add("rule " + std::to_string(i) + " '" + shown(r.name) + "': name used by an earlier rule");
    RuleChecker(r, i, cached_schema, problems).run();
    check_widths(r, i, cached_schema, problems);
    // Same pattern, priority and constraints as an earlier rule: matching
    // would always pick the earlier one, so this rule's annotations could
    // never apply. Almost always a copy-paste mistake; refuse it.
    const auto [first, inserted] = first_rule_with_key.emplace(matching_key(r), i);
    if (!inserted) {
      const Rule& e = backend.rules[first->second];
      problems.add("rule " + std::to_string(i) + " '" + shown(r.name) + "' conflicts with rule " +
                   std::to_string(first->second) + " '" + shown(e.name) +
                   "': same pattern, priority and conditions, so it can never apply; give one a "
                   "priority or a condition");
    }
  }
  return std::move(problems).finish();
}

QuantSpec normalized(QuantSpec s) {
  QuantSpec d;  // defaults
  d.kind = s.kind;
  switch (s.kind) {
    case SpecKind::Float: return d;
    case SpecKind::Shared: d.shared_with = s.shared_with; return d;
    case SpecKind::Fixed:
      d.scale = s.scale;
      d.zero_point = s.zero_point;
      break;
    case SpecKind::Derived: d.derived_from = s.derived_from; break;
    case SpecKind::Observed:
    case SpecKind::Dynamic:
      d.granularity = s.granularity;
      d.axis = s.granularity == Granularity::PerChannel ? s.axis : -1;
      d.observer = s.observer;
      d.reduce_range = s.reduce_range;
      d.eps = s.eps;
      break;
  }
  d.dtype = s.dtype;
  d.quant_min = s.quant_min;
  d.quant_max = s.quant_max;
  d.scheme = s.scheme;
  return d;
}

}  // namespace qsdk
