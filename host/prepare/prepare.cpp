#include "prepare/prepare.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/error.h"
#include "graph/bn_folding.h"
#include "graph/graph.h"
#include "prepare/observe_op.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::optional<at::Tensor> constant_tensor(const Value* v) {
  auto iv = torch::jit::toIValue(const_cast<Value*>(v));
  if (iv && iv->isTensor()) return iv->toTensor();
  return std::nullopt;
}

// The weight convert will quantize: folded with the BatchNorm that follows
// its conv/linear, if any (convert folds every such pair).
at::Tensor weight_to_observe(const std::vector<EdgeKey>& group, const Value* v, const at::Tensor& constant) {
  for (const auto& e : group)
    if (edge_value(e) == v && e.operand == 1)
      if (auto folded = folded_weights(e.node)) return folded->weight;
  return constant;
}

class SlotSink final : public ObservationSink {
 public:
  explicit SlotSink(std::vector<ObserverSlot>& slots) : slots_(slots) {}
  // An observer's InputError (NaN or Inf reaching it) would lose its type
  // crossing the TorchScript interpreter; it is kept here, with the value it
  // was about, and rethrown once the interpreter has returned.
  void observe(std::int64_t slot, const at::Tensor& x) override {
    auto& s = slots_.at(static_cast<std::size_t>(slot));
    if (!s.observer || error_) return;
    try {
      s.observer->observe(x.detach());
    } catch (const InputError& e) {
      error_.emplace(s.label, e.cause());
    }
  }
  void rethrow() const {
    if (error_) throw InputError(error_->first, error_->second);
  }

 private:
  std::vector<ObserverSlot>& slots_;
  std::optional<std::pair<std::string, std::string>> error_;
};

}  // namespace

const char* to_string(SlotKind k) {
  switch (k) {
    case SlotKind::Activation: return "activation";
    case SlotKind::Weight: return "weight";
    case SlotKind::Fixed: return "fixed";
    case SlotKind::Dynamic: return "dynamic";
  }
  return "?";
}

PreparedModel::PreparedModel(Graph& graph, const Annotation& annotation) : graph_(&graph), annotation_(annotation) {
  // (value, slot) pairs that need an observe node; collected before any
  // insertion, because inserting rewires the uses edges refer to.
  struct ToObserve {
    Value* value;
    int slot;
    bool producer_output;  // the slot holds the producer's output edge of `value`
  };
  std::vector<ToObserve> to_observe;
  std::set<std::pair<const Value*, int>> seen;
  // Annotation::edge() scans every match; index once (graphs of 100k nodes).
  std::map<EdgeKey, const AnnotatedEdge*> annotated;
  for (const auto& m : annotation_.matches)
    for (const auto& ae : m.edges) annotated.emplace(ae.edge, &ae);

  for (const auto& group : annotation_.shared_groups) {
    const AnnotatedEdge* rep = nullptr;
    for (const auto& e : group) {
      auto it = annotated.find(e);
      const AnnotatedEdge* ae = it == annotated.end() ? nullptr : it->second;
      if (ae && ae->spec.kind != SpecKind::Shared) {
        rep = ae;
        break;
      }
    }
    if (!rep) continue;  // only shared edges whose source is gone: nothing to observe

    ObserverSlot slot;
    slot.id = static_cast<int>(slots_.size());
    slot.spec = rep->spec;
    slot.edges = group;
    slot.label = edge_label(graph, group.front()) + (group.size() > 1 ? " +" + std::to_string(group.size() - 1) : "");
    std::vector<const Value*> values;
    bool all_constant = true;
    for (const auto& e : group) {
      const Value* v = edge_value(e);
      if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
      all_constant = all_constant && constant_tensor(v).has_value();
    }
    if (rep->spec.kind == SpecKind::Dynamic) {
      slot.kind = SlotKind::Dynamic;
    } else {
      try {
        slot.observer = make_observer(rep->spec);
      } catch (const InputError& e) {
        throw InputError("backend '" + annotation_.backends + "'", slot.label + ": " + e.what());
      }
      if (rep->spec.kind == SpecKind::Fixed)
        slot.kind = SlotKind::Fixed;
      else if (all_constant)
        slot.kind = SlotKind::Weight;
      else
        slot.kind = SlotKind::Activation;
      for (const Value* v : values) {
        if (auto t = constant_tensor(v)) {
          if (slot.kind != SlotKind::Fixed) slot.observer->observe(weight_to_observe(group, v, *t));
        } else if ((slot.kind == SlotKind::Activation || slot.kind == SlotKind::Fixed) &&
                   seen.insert({v, slot.id}).second) {
          // Fixed slots need no data, but convert turns observe nodes into
          // quantize/dequantize: without one a fixed-qparams output (a
          // sigmoid at the graph's output) would stay float.
          const bool output = std::any_of(group.begin(), group.end(),
                                          [&](const EdgeKey& e) { return e.is_output() && edge_value(e) == v; });
          to_observe.push_back({const_cast<Value*>(v), slot.id, output});
        }
      }
    }
    for (const auto& e : group) slot_of_edge_[e] = slot.id;
    slots_.push_back(std::move(slot));
  }

  for (const auto& m : annotation_.matches)
    for (const auto& ae : m.edges) {
      if (ae.spec.kind != SpecKind::Derived) continue;
      DerivedSlot d{ae.edge, ae.spec, {}};
      for (const auto& src : ae.sources) d.source_slots.push_back(slot_of(src));
      derived_.push_back(std::move(d));
    }

  auto& g = graph.ir();
  // A value observed by two slots (a sigmoid's fixed output qparams, and a
  // consumer's own input spec) gets a chain: the producer's output slot
  // first, then each other slot observing the one before it, so convert
  // quantizes with the producer's qparams and then requantizes for the
  // consumer, as PT2E does.
  std::stable_sort(to_observe.begin(), to_observe.end(),
                   [](const ToObserve& a, const ToObserve& b) { return a.producer_output > b.producer_output; });
  std::unordered_map<Value*, Value*> observed;  // value -> the last observe's output on it
  for (const auto& t : to_observe) {
    Value* v = observed.count(t.value) ? observed.at(t.value) : t.value;
    torch::jit::WithInsertPoint guard(v->node()->kind() == c10::prim::Param ? *g.nodes().begin() : v->node()->next());
    Value* slot_id = g.insertConstant(static_cast<std::int64_t>(t.slot));
    Node* obs = g.create(observe_symbol(), {v, slot_id}, 1);
    g.insertNode(obs);
    obs->output()->setType(v->type());
    v->replaceAllUsesAfterNodeWith(obs, obs->output());
    // Graph outputs are uses too; replaceAllUsesAfterNodeWith covers them.
    observed[t.value] = obs->output();
    ++observe_nodes_;
  }
  graph.invalidate_compiled();
}

int PreparedModel::slot_of(const EdgeKey& e) const {
  auto it = slot_of_edge_.find(e);
  return it == slot_of_edge_.end() ? -1 : it->second;
}

std::vector<at::Tensor> PreparedModel::calibrate(const std::vector<at::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  SlotSink sink(slots_);
  ScopedObservationSink scope(sink);
  calibrated_ = true;
  auto outputs = graph_->run(inputs);
  sink.rethrow();
  return outputs;
}

void PreparedModel::override_activation_observer(ObserverKind kind) {
  if (calibrated_) throw std::logic_error("override_activation_observer after calibration");
  for (auto& s : slots_) {
    if (s.kind != SlotKind::Activation) continue;
    s.spec.observer = kind;
    s.observer = make_observer(s.spec);
  }
}

std::string PreparedModel::save_stats() const { return stats_document().dump(1) + "\n"; }

nlohmann::json PreparedModel::stats_document() const {
  nlohmann::json j;
  j["qsdk_stats_version"] = 1;
  j["model"] = graph_->source();
  j["backends"] = annotation_.backends;
  j["slots"] = nlohmann::json::array();
  for (const auto& s : slots_) {
    nlohmann::json sj{{"id", s.id}, {"kind", to_string(s.kind)}, {"label", s.label}};
    if (s.observer && s.kind == SlotKind::Activation) sj["state"] = s.observer->save_state();
    j["slots"].push_back(sj);
  }
  return j;
}

void PreparedModel::load_stats(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(source, std::string("not a qsdk stats file (JSON error: ") + e.what() + ")");
  }
  load_stats_document(j, source);
}

void PreparedModel::load_stats_document(const nlohmann::json& j, const std::string& source) {
  auto mismatch = [&](const std::string& what) { throw InputError(source, "stats were saved for " + what); };
  if (!j.is_object() || j.value("qsdk_stats_version", 0) != 1) throw InputError(source, "not a qsdk stats file");
  if (j.value("model", "") != graph_->source())
    mismatch("model '" + j.value("model", "") + "', not '" + graph_->source() + "'");
  if (j.value("backends", "") != annotation_.backends)
    mismatch("backend '" + j.value("backends", "") + "', not '" + annotation_.backends + "'");
  const auto& list = j.contains("slots") ? j["slots"] : nlohmann::json();
  if (!list.is_array() || list.size() != slots_.size())
    mismatch(std::to_string(list.is_array() ? list.size() : 0) + " observer slots, this model has " +
             std::to_string(slots_.size()) + " (were the rules or overrides changed?)");
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    auto& s = slots_[i];
    if (list[i].value("label", "") != s.label)
      mismatch("a different graph: slot " + std::to_string(i) + " is '" + list[i].value("label", "") +
               "' in the file and '" + s.label + "' here");
    if (s.kind == SlotKind::Activation && s.observer) {
      if (!list[i].contains("state")) mismatch("slot " + std::to_string(i) + " without observer state");
      try {
        s.observer->load_state(list[i]["state"]);
      } catch (const InputError& e) {
        throw InputError(source, "slot " + std::to_string(i) + " (" + s.label + "): " + e.cause());
      }
    }
  }
  calibrated_ = true;
}

}  // namespace qsdk
