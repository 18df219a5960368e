#include "annotate/annotator.h"

#include <fnmatch.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "annotate/conditions.h"
#include "common/error.h"
#include "graph/graph.h"
#include "plugins/rule_validation.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// --- read-only views for code constraints -----------------------------------------

class TorchNodeView final : public NodeView {
 public:
  TorchNodeView(const Node* n, const std::string& path) : node_(const_cast<Node*>(n)), path_(path) {}
  std::string_view kind() const override { return node_->kind().toQualString(); }
  std::string_view module_path() const override { return path_; }
  std::size_t num_inputs() const override { return node_->inputs().size(); }
  std::optional<std::vector<std::int64_t>> input_shape(std::size_t i) const override {
    return i < num_inputs() ? concrete_shape(node_->input(i)) : std::nullopt;
  }
  std::optional<std::vector<std::int64_t>> output_shape() const override {
    return node_->outputs().empty() ? std::nullopt : concrete_shape(node_->output(0));
  }
  std::optional<std::int64_t> int_arg(std::size_t i) const override {
    auto v = constant(i);
    if (v && v->isInt()) return v->toInt();
    return std::nullopt;
  }
  std::optional<double> float_arg(std::size_t i) const override {
    auto v = constant(i);
    if (v && (v->isDouble() || v->isInt())) return v->isDouble() ? v->toDouble() : double(v->toInt());
    return std::nullopt;
  }
  std::optional<std::vector<std::int64_t>> int_list_arg(std::size_t i) const override {
    auto v = constant(i);
    if (v && v->isIntList()) return v->toIntVector();
    return std::nullopt;
  }

 private:
  std::optional<c10::IValue> constant(std::size_t i) const {
    if (i >= num_inputs()) return std::nullopt;
    auto v = torch::jit::toIValue(node_->input(i));
    if (!v) return std::nullopt;
    return *v;
  }
  Node* node_;
  const std::string& path_;
};

class TorchMatchView final : public MatchView {
 public:
  TorchMatchView(const Graph& g, const std::vector<const Node*>& nodes) {
    for (const Node* n : nodes) views_.emplace_back(n, g.module_path(n));
  }
  std::size_t size() const override { return views_.size(); }
  const NodeView& node(std::size_t i) const override { return views_.at(i); }

 private:
  std::vector<TorchNodeView> views_;
};

// --- helpers -------------------------------------------------------------------

bool is_commutative(const Node* n) { return n->kind() == c10::aten::add || n->kind() == c10::aten::mul; }

bool is_prim(const Node* n) { return n->kind().is_prim(); }

std::string node_label(const Graph& g, const Node* n) {
  const std::string& path = g.module_path(n);
  return "%" + std::to_string(g.id(n)) + " (" + n->kind().toQualString() + (path.empty() ? "" : ", " + path) + ")";
}

const Value* value_of(const EdgeKey& e) { return edge_value(e); }

bool is_tensor(const Value* v) { return v->type()->cast<c10::TensorType>() != nullptr; }

bool is_tensor_list(const Value* v) {
  return v->node()->kind() == c10::prim::ListConstruct && v->type()->cast<c10::ListType>() &&
         v->type()->cast<c10::ListType>()->getElementType()->cast<c10::TensorType>();
}

// Do two specs give an edge the same quantized representation (so one
// observer can serve both)?
bool same_representation(const QuantSpec& a, const QuantSpec& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == SpecKind::Float || a.kind == SpecKind::Shared) return false;
  return a.dtype == b.dtype && a.quant_min == b.quant_min && a.quant_max == b.quant_max && a.scheme == b.scheme &&
         a.granularity == b.granularity && a.axis == b.axis && a.observer == b.observer &&
         a.reduce_range == b.reduce_range && a.scale == b.scale && a.zero_point == b.zero_point;
}

std::string describe_storage(const QuantSpec& s) {
  std::string out = std::string(to_string(s.kind)) + " " + to_string(s.dtype) + " [" + std::to_string(s.quant_min) +
                    ", " + std::to_string(s.quant_max) + "] " + to_string(s.scheme);
  if (s.kind == SpecKind::Fixed) out += " scale " + std::to_string(s.scale) + " zp " + std::to_string(s.zero_point);
  return out;
}

struct UnionFind {
  std::vector<int> parent;
  int add() {
    parent.push_back(static_cast<int>(parent.size()));
    return parent.back();
  }
  int find(int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(int a, int b) { parent[find(a)] = find(b); }
};

// --- the annotator -----------------------------------------------------------------

class Annotator {
 public:
  Annotator(const Graph& g, const Backend& b, const AnnotateOptions& o, const Annotation* earlier)
      : g_(g), backend_(b), options_(o) {
    if (earlier) {
      result_ = *earlier;
      result_.backends += "+" + b.name;
      for (std::size_t i = 0; i < result_.matches.size(); ++i)
        for (const Node* n : result_.matches[i].nodes) taken_[n] = static_cast<int>(i);
      for (const auto& r : result_.nodes)
        if (r.status == NodeStatus::Skipped) skipped_[r.node] = r.reason;
      first_new_match_ = result_.matches.size();
      result_.shared_groups.clear();
      result_.nodes.clear();
    } else {
      result_.backends = b.name;
    }
  }

  Annotation run() {
    apply_skips();
    match_rules();
    drop_shared_ops_after_float();
    apply_respecs();
    check_derived_sources();
    build_shared_groups();
    report_nodes();
    return std::move(result_);
  }

 private:
  bool selects(const Override& o, const Node* n) const {
    if (!o.op.empty() && o.op != n->kind().toQualString()) return false;
    if (o.node_id >= 0 && o.node_id != g_.id(n)) return false;
    if (!o.module_glob.empty() && fnmatch(o.module_glob.c_str(), g_.module_path(n).c_str(), 0) != 0) return false;
    return true;
  }

  void apply_skips() {
    for (const auto& o : options_.overrides) {
      OverrideReport rep{o.describe(), o.where, {}, 0};
      for (const Node* n : g_.nodes()) {
        if (is_prim(n) || !selects(o, n)) continue;
        rep.node_ids.push_back(g_.id(n));
        if (!o.quantize && !taken_.count(n))
          skipped_.emplace(
              n, "skipped by override" + (o.where.empty() ? "" : " at " + o.where) + " (" + o.describe() + ")");
      }
      if (rep.node_ids.empty())
        result_.warnings.push_back("override" + (o.where.empty() ? "" : " at " + o.where) + " (" + o.describe() +
                                   ") matched no node");
      result_.overrides.push_back(std::move(rep));
    }
  }

  bool available(const Node* n) const { return !taken_.count(n) && !skipped_.count(n); }

  // Tries rule `r` from `start`; fills the chain and operand permutations.
  bool match_chain(const Rule& r, Node* start, std::vector<const Node*>& chain, std::vector<bool>& swapped) {
    chain = {start};
    swapped = {false};
    for (std::size_t k = 1; k < r.pattern.size(); ++k) {
      Node* prev = const_cast<Node*>(chain.back());
      if (prev->outputs().size() != 1 || prev->output(0)->uses().size() != 1) return false;
      const auto& use = prev->output(0)->uses()[0];
      Node* next = use.user;
      if (next->kind().toQualString() != r.pattern[k] || !available(next)) return false;
      bool swap = false;
      if (use.offset == 1 && is_commutative(next))
        swap = true;
      else if (use.offset != 0)
        return false;
      chain.push_back(next);
      swapped.push_back(swap);
    }
    return true;
  }

  // The rule's conditions (data), then its code constraints; the first that
  // fails is the reason every node of the chain records.
  bool constraints_hold(const Rule& r, const std::vector<const Node*>& chain) {
    auto reject = [&](const std::string& why) {
      for (const Node* n : chain) constraint_failures_.emplace(n, "rule '" + r.name + "': " + why);
      return false;
    };
    for (const auto& c : r.conditions)
      if (const auto outcome = evaluate_condition(c, chain); !outcome.holds)
        return reject("condition failed: " + to_string(c) + " (it is " + outcome.fact + ")");
    if (r.constraints.empty()) return true;
    TorchMatchView view(g_, chain);
    for (const auto& c : r.constraints) {
      bool ok = false;
      try {
        ok = c.check(view);
      } catch (const std::exception& e) {
        throw InputError("backend '" + backend_.name + "'", "rule '" + r.name + "' code constraint '" + c.name +
                                                                "' threw on " + node_label(g_, chain[0]) + ": " +
                                                                e.what());
      } catch (...) {
        throw InputError("backend '" + backend_.name + "'", "rule '" + r.name + "' code constraint '" + c.name +
                                                                "' threw a non-standard exception on " +
                                                                node_label(g_, chain[0]));
      }
      if (!ok) return reject("code constraint failed: " + c.name);
    }
    return true;
  }

  // Quantization is for floating-point tensors: a rule whose op also takes
  // integer tensors (mul on the Long sizes a traced attention computes) must
  // not quantize those. Capture typed every value; unknown dtypes pass.
  bool quantizes_only_floats(const Rule& r, const std::vector<const Node*>& chain, const std::vector<bool>& swapped) {
    for (const auto& a : r.annotations) {
      if (a.spec.kind == SpecKind::Float) continue;
      for (const auto& e : graph_edges(a.edge, chain, swapped)) {
        const auto type = edge_value(e)->type()->cast<c10::TensorType>();
        if (!type || !type->scalarType() || c10::isFloatingType(*type->scalarType())) continue;
        for (const Node* n : chain)
          constraint_failures_.emplace(n, "rule '" + r.name + "': " + to_string(a.edge) + " is a " +
                                              c10::toString(*type->scalarType()) + " tensor, not floating point");
        return false;
      }
    }
    return true;
  }

  // Maps a rule's pattern-relative edge to graph edges (several for a list
  // operand; none for a None/absent operand such as a missing bias).
  std::vector<EdgeKey> graph_edges(const EdgeRef& ref, const std::vector<const Node*>& chain,
                                   const std::vector<bool>& swapped) const {
    const Node* n = chain.at(static_cast<std::size_t>(ref.node));
    if (ref.is_output()) return {EdgeKey{n, EdgeKey::kOutput, -1}};
    int operand = ref.input;
    if (swapped[static_cast<std::size_t>(ref.node)] && operand <= 1) operand = 1 - operand;
    if (operand >= static_cast<int>(n->inputs().size())) return {};
    const Value* v = const_cast<Node*>(n)->input(static_cast<std::size_t>(operand));
    if (is_tensor(v)) return {EdgeKey{n, operand, -1}};
    std::vector<EdgeKey> out;
    if (is_tensor_list(v))
      for (std::size_t e = 0; e < v->node()->inputs().size(); ++e) out.push_back(EdgeKey{n, operand, int(e)});
    return out;
  }

  // The wider width a `width:` override picks for this match (the last
  // override selecting one of its nodes wins), or null. A width the rule does
  // not offer is a warning: the rule's own annotations stay.
  const RuleWidth* chosen_width(const Rule& r, const std::vector<const Node*>& chain) {
    const RuleWidth* chosen = nullptr;
    for (std::size_t oi = 0; oi < options_.overrides.size(); ++oi) {
      const Override& o = options_.overrides[oi];
      if (o.width.empty() || std::none_of(chain.begin(), chain.end(), [&](const Node* n) { return selects(o, n); }))
        continue;
      const auto it =
          std::find_if(r.widths.begin(), r.widths.end(), [&](const RuleWidth& w) { return w.name == o.width; });
      if (it == r.widths.end()) {
        std::string offered;
        for (const auto& w : r.widths) offered += (offered.empty() ? "" : ", ") + w.name;
        result_.warnings.push_back("override" + (o.where.empty() ? "" : " at " + o.where) + " (" + o.describe() +
                                   "): rule '" + r.name + "' of backend '" + backend_.name + "' offers no width '" +
                                   o.width + "' (" + (offered.empty() ? "it offers none" : "it offers " + offered) +
                                   "); " + node_label(g_, chain.front()) + " keeps the rule's own");
        continue;
      }
      chosen = &*it;
      result_.overrides[oi].edges_changed += static_cast<int>(it->annotations.size());
    }
    return chosen;
  }

  void record_match(const Rule& r, int rule_index, const std::vector<const Node*>& chain,
                    const std::vector<bool>& swapped) {
    MatchRecord m;
    m.id = static_cast<int>(result_.matches.size());
    m.backend = backend_.name;
    m.rule = r.name;
    m.rule_index = rule_index;
    m.nodes = chain;
    const std::vector<EdgeAnnotation>* annotations = &r.annotations;
    if (const RuleWidth* w = chosen_width(r, chain)) {
      annotations = &w->annotations;
      m.width = w->name;
    }
    for (const auto& a : *annotations) {
      const auto edges = graph_edges(a.edge, chain, swapped);
      for (std::size_t i = 0; i < edges.size(); ++i) {
        AnnotatedEdge ae{edges[i], a.spec, {}, {}};
        if (a.spec.kind == SpecKind::Shared) {
          const auto src = graph_edges(a.spec.shared_with, chain, swapped);
          if (src.empty()) continue;  // shares with an absent operand: nothing to share
          ae.sources = {src.front()};
        } else if (a.spec.kind == SpecKind::Derived) {
          for (const auto& ref : a.spec.derived_from) {
            const auto src = graph_edges(ref, chain, swapped);
            if (!src.empty()) ae.sources.push_back(src.front());
          }
        } else if (i > 0 && a.spec.kind != SpecKind::Float) {
          // Elements of one list operand (cat's tensors) share qparams.
          ae.spec = spec::shared_with(a.edge);
          ae.sources = {edges.front()};
        }
        m.edges.push_back(std::move(ae));
      }
    }
    for (const Node* n : chain) taken_[n] = m.id;
    result_.matches.push_back(std::move(m));
  }

  void match_rules() {
    std::vector<std::size_t> order(backend_.rules.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const Rule &x = backend_.rules[a], &y = backend_.rules[b];
      if (x.priority != y.priority) return x.priority > y.priority;
      return x.pattern.size() > y.pattern.size();
    });
    // Nodes by kind, so each rule only visits candidate starts.
    std::unordered_map<std::string, std::vector<Node*>> by_kind;
    for (Node* n : g_.nodes()) by_kind[n->kind().toQualString()].push_back(n);

    std::vector<const Node*> chain;
    std::vector<bool> swapped;
    for (std::size_t idx : order) {
      const Rule& r = backend_.rules[idx];
      auto it = by_kind.find(r.pattern.front());
      if (it == by_kind.end()) continue;
      for (Node* start : it->second) {
        if (!available(start)) continue;
        if (!match_chain(r, start, chain, swapped)) continue;
        if (!constraints_hold(r, chain)) continue;
        if (!quantizes_only_floats(r, chain, swapped)) continue;
        record_match(r, static_cast<int>(idx), chain, swapped);
      }
    }
  }

  const AnnotatedEdge* find_edge(const MatchRecord& m, const EdgeKey& e) const {
    for (const auto& ae : m.edges)
      if (ae.edge == e) return &ae;
    return nullptr;
  }

  // Is `v` produced by a node whose output a match quantizes (or a graph input)?
  bool produced_quantized(const Value* v) const {
    const Node* p = v->node();
    if (p->kind() == c10::prim::Param) return true;
    auto it = taken_.find(p);
    if (it == taken_.end() || it->second < 0) return false;
    const AnnotatedEdge* out =
        find_edge(result_.matches[static_cast<std::size_t>(it->second)], {p, EdgeKey::kOutput, -1});
    return out && out->spec.kind != SpecKind::Float;
  }

  // PT2E quantizers annotate pooling/reshape only after a quantized op: an
  // op that merely passes qparams through has nothing to pass after a float op.
  void drop_shared_ops_after_float() {
    std::vector<std::size_t> order;
    for (std::size_t i = first_new_match_; i < result_.matches.size(); ++i) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return g_.id(result_.matches[a].nodes.front()) < g_.id(result_.matches[b].nodes.front());
    });
    for (std::size_t i : order) {
      MatchRecord& m = result_.matches[i];
      if (m.nodes.size() != 1) continue;
      const AnnotatedEdge* out = find_edge(m, {m.nodes[0], EdgeKey::kOutput, -1});
      if (!out || out->spec.kind != SpecKind::Shared || out->sources.empty()) continue;
      const Value* in = value_of(out->sources.front());
      if (produced_quantized(in)) continue;
      const Node* producer = in->node();
      dropped_[m.nodes[0]] = "input not quantized: its producer " + node_label(g_, producer) +
                             " is in float, and this op only passes qparams through";
      taken_[m.nodes[0]] = -1;
      m.edges.clear();
      m.nodes.clear();
    }
    // Compact away dropped matches, renumbering ids.
    std::vector<MatchRecord> kept(result_.matches.begin(), result_.matches.begin() + long(first_new_match_));
    for (std::size_t i = first_new_match_; i < result_.matches.size(); ++i)
      if (!result_.matches[i].nodes.empty()) kept.push_back(std::move(result_.matches[i]));
    result_.matches = std::move(kept);
    for (auto it = taken_.begin(); it != taken_.end();) it = it->second < 0 ? taken_.erase(it) : std::next(it);
    for (std::size_t i = 0; i < result_.matches.size(); ++i) {
      result_.matches[i].id = static_cast<int>(i);
      for (const Node* n : result_.matches[i].nodes) taken_[n] = static_cast<int>(i);
    }
  }

  static bool is_weight_edge(const EdgeKey& e) {
    const auto k = e.node->kind();
    return e.operand == 1 && (k == c10::aten::conv2d || k == c10::aten::conv1d || k == c10::aten::linear);
  }

  void apply_respecs() {
    for (std::size_t oi = 0; oi < options_.overrides.size(); ++oi) {
      const Override& o = options_.overrides[oi];
      if (!o.activation && !o.weight) continue;
      for (std::size_t mi = first_new_match_; mi < result_.matches.size(); ++mi) {
        for (auto& ae : result_.matches[mi].edges) {
          if (!selects(o, ae.edge.node)) continue;
          if (ae.spec.kind != SpecKind::Observed && ae.spec.kind != SpecKind::Dynamic) continue;
          const SpecPatch* patch =
              is_weight_edge(ae.edge) ? (o.weight ? &*o.weight : nullptr) : (o.activation ? &*o.activation : nullptr);
          if (!patch) continue;
          QuantSpec next = patch->apply(ae.spec);
          if (auto problems = spec_problems(next); !problems.empty())
            throw InputError(o.where.empty() ? "override" : o.where,
                             "override makes an invalid spec for " + edge_label(g_, ae.edge) + ": " + problems.front());
          if (next != ae.spec) {
            ae.spec = next;
            ae.overridden_by = o.where.empty() ? o.describe() : o.where;
            ++result_.overrides[oi].edges_changed;
          }
        }
      }
    }
  }

  void check_derived_sources() {
    for (std::size_t mi = first_new_match_; mi < result_.matches.size(); ++mi) {
      const MatchRecord& m = result_.matches[mi];
      for (const auto& ae : m.edges) {
        if (ae.spec.kind != SpecKind::Derived) continue;
        const bool complete = ae.sources.size() == ae.spec.derived_from.size() &&
                              std::all_of(ae.sources.begin(), ae.sources.end(), [&](const EdgeKey& s) {
                                const AnnotatedEdge* src = find_edge(m, s);
                                return src && src->spec.kind != SpecKind::Float && src->spec.kind != SpecKind::Derived;
                              });
        if (!complete)
          throw InputError("backend '" + backend_.name + "'", "rule '" + m.rule + "' on " + node_label(g_, m.nodes[0]) +
                                                                  ": derived spec for " + edge_label(g_, ae.edge) +
                                                                  " lacks a quantized source");
      }
    }
  }

  void build_shared_groups() {
    std::unordered_map<EdgeKey, int, EdgeKeyHash> index;
    std::vector<const AnnotatedEdge*> edges;
    UnionFind uf;
    for (const auto& m : result_.matches)
      for (const auto& ae : m.edges) {
        if (ae.spec.kind == SpecKind::Float || ae.spec.kind == SpecKind::Derived) continue;
        index[ae.edge] = uf.add();
        edges.push_back(&ae);
      }
    for (const auto* ae : edges)
      if (ae->spec.kind == SpecKind::Shared)
        if (auto it = index.find(ae->sources.front()); it != index.end()) uf.unite(index[ae->edge], it->second);
    // A Shared edge is represented like the edge it (transitively) shares with.
    std::unordered_map<EdgeKey, const AnnotatedEdge*, EdgeKeyHash> by_key;
    for (const auto* ae : edges) by_key[ae->edge] = ae;
    auto effective = [&](const AnnotatedEdge* ae) {
      for (std::size_t hops = 0; ae->spec.kind == SpecKind::Shared && hops < by_key.size(); ++hops) {
        auto it = by_key.find(ae->sources.front());
        if (it == by_key.end()) break;
        ae = it->second;
      }
      return ae->spec;
    };
    // Edges of one value with the same representation share one observer
    // (PT2E: equal specs from the same producer), e.g. a conv's output and
    // the cat input it feeds.
    std::unordered_map<const Value*, std::vector<const AnnotatedEdge*>> by_value;
    for (const auto* ae : edges) by_value[value_of(ae->edge)].push_back(ae);
    for (auto& [value, list] : by_value)
      for (std::size_t i = 0; i < list.size(); ++i)
        for (std::size_t j = i + 1; j < list.size(); ++j)
          if (same_representation(effective(list[i]), effective(list[j])))
            uf.unite(index[list[i]->edge], index[list[j]->edge]);

    std::map<int, std::vector<const AnnotatedEdge*>> groups;
    for (const auto* ae : edges) groups[uf.find(index[ae->edge])].push_back(ae);
    for (auto& [root, members] : groups) {
      const AnnotatedEdge* reference = nullptr;
      for (const auto* ae : members) {
        if (ae->spec.kind == SpecKind::Shared) continue;
        if (!reference)
          reference = ae;
        else if (!same_representation(reference->spec, ae->spec))
          throw InputError("backend '" + backend_.name + "'",
                           "edges that must share qparams disagree: " + edge_label(g_, reference->edge) + " is " +
                               describe_storage(reference->spec) + " but " + edge_label(g_, ae->edge) + " is " +
                               describe_storage(ae->spec));
      }
      std::vector<EdgeKey> keys;
      for (const auto* ae : members) keys.push_back(ae->edge);
      std::sort(keys.begin(), keys.end(), [&](const EdgeKey& a, const EdgeKey& b) {
        return std::tuple(g_.id(a.node), a.operand, a.element) < std::tuple(g_.id(b.node), b.operand, b.element);
      });
      result_.shared_groups.push_back(std::move(keys));
    }
    std::sort(result_.shared_groups.begin(), result_.shared_groups.end(),
              [&](const auto& a, const auto& b) { return g_.id(a.front().node) < g_.id(b.front().node); });
  }

  void report_nodes() {
    std::set<std::string> rule_kinds;
    for (const auto& r : backend_.rules)
      for (const auto& op : r.pattern) rule_kinds.insert(op);
    for (const Node* n : g_.nodes()) {
      if (is_prim(n)) continue;
      NodeReport rep;
      rep.node = n;
      rep.id = g_.id(n);
      rep.kind = n->kind().toQualString();
      rep.module_path = g_.module_path(n);
      if (auto it = taken_.find(n); it != taken_.end()) {
        rep.status = NodeStatus::Quantized;
        rep.match = it->second;
        const auto& m = result_.matches[static_cast<std::size_t>(it->second)];
        rep.reason = m.backend + ": " + m.rule;
      } else if (auto s = skipped_.find(n); s != skipped_.end()) {
        rep.status = NodeStatus::Skipped;
        rep.reason = s->second;
      } else if (auto d = dropped_.find(n); d != dropped_.end()) {
        rep.reason = d->second;
      } else if (auto c = constraint_failures_.find(n); c != constraint_failures_.end()) {
        rep.reason = c->second;
      } else if (!rule_kinds.count(rep.kind)) {
        rep.reason = "no rule for " + rep.kind + " in backend '" + backend_.name + "'";
      } else {
        rep.reason = "no rule's pattern fits here (its neighbours are taken or its result has other users)";
      }
      result_.nodes.push_back(std::move(rep));
    }
  }

  const Graph& g_;
  const Backend& backend_;
  const AnnotateOptions& options_;
  Annotation result_;
  std::size_t first_new_match_ = 0;
  std::unordered_map<const Node*, int> taken_;  // node -> match index
  std::unordered_map<const Node*, std::string> skipped_, dropped_;
  std::multimap<const Node*, std::string> constraint_failures_;
};

}  // namespace

std::string edge_label(const Graph& g, const EdgeKey& e) {
  std::string s = node_label(g, e.node) + (e.is_output() ? " output" : " input " + std::to_string(e.operand));
  if (e.element >= 0) s += "[" + std::to_string(e.element) + "]";
  return s;
}

const torch::jit::Value* edge_value(const EdgeKey& e) {
  Node* n = const_cast<Node*>(e.node);
  if (e.is_output()) return n->output(0);
  const Value* v = n->input(static_cast<std::size_t>(e.operand));
  if (e.element >= 0) return v->node()->input(static_cast<std::size_t>(e.element));
  return v;
}

const char* to_string(NodeStatus s) {
  switch (s) {
    case NodeStatus::Quantized: return "quantized";
    case NodeStatus::Float: return "float";
    case NodeStatus::Skipped: return "skipped";
  }
  return "?";
}

const MatchRecord* Annotation::match_of(const torch::jit::Node* n) const {
  for (const auto& r : nodes)
    if (r.node == n) return r.match >= 0 ? &matches[static_cast<std::size_t>(r.match)] : nullptr;
  return nullptr;
}

const AnnotatedEdge* Annotation::edge(const EdgeKey& e) const {
  for (const auto& m : matches)
    for (const auto& ae : m.edges)
      if (ae.edge == e) return &ae;
  return nullptr;
}

int Annotation::group_of(const EdgeKey& e) const {
  for (std::size_t i = 0; i < shared_groups.size(); ++i)
    for (const auto& k : shared_groups[i])
      if (k == e) return static_cast<int>(i);
  return -1;
}

Annotation annotate(const Graph& graph, const Backend& backend, const AnnotateOptions& options,
                    const Annotation* earlier) {
  return Annotator(graph, backend, options, earlier).run();
}

}  // namespace qsdk
