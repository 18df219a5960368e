// Prepare (PT2E's prepare_pt2e): observers from annotations.
//
// One observer slot per shared-qparams group of the annotation (so a cat,
// its inputs and the convs feeding it are observed by one observer), one per
// weight (observed once, at prepare, from the constant), fixed specs with
// their given qparams, derived specs (bias) computed from their sources at
// convert, dynamic specs left to run time. Activation slots are fed by
// qsdk::observe nodes inserted into the graph, which stays runnable by
// LibTorch's interpreter.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "annotate/annotation.h"
#include "prepare/observers.h"

namespace qsdk {

class Graph;

enum class SlotKind {
  Activation,  // observed while calibrating
  Weight,      // observed at prepare from the constant
  Fixed,       // qparams given by the spec
  Dynamic      // computed at run time (no observer)
};
const char* to_string(SlotKind);

struct ObserverSlot {
  int id = 0;
  SlotKind kind = SlotKind::Activation;
  QuantSpec spec;                      // the group's spec (its first non-shared member)
  std::vector<EdgeKey> edges;          // annotated edges this slot serves
  std::unique_ptr<Observer> observer;  // null for Dynamic
  std::string label;                   // "%3 (aten::conv2d, layer1.0.conv1) output", for reports and stats files
};

// A derived spec (bias): scale = product of its sources' scales.
struct DerivedSlot {
  EdgeKey edge;
  QuantSpec spec;
  std::vector<int> source_slots;
};

class PreparedModel {
 public:
  // Inserts observe nodes into `graph` (which must be the graph `annotation`
  // was made on; it is modified in place and must outlive this object) and
  // observes weights. Throws InputError if an annotated weight is not a
  // constant or an observer cannot be built for a spec.
  PreparedModel(Graph& graph, const Annotation& annotation);

  Graph& graph() const { return *graph_; }
  const Annotation& annotation() const { return annotation_; }
  const std::vector<ObserverSlot>& slots() const { return slots_; }
  const std::vector<DerivedSlot>& derived() const { return derived_; }
  // Slot serving an annotated edge, or -1.
  int slot_of(const EdgeKey& e) const;
  // Number of qsdk::observe nodes in the graph.
  std::size_t observe_nodes() const { return observe_nodes_; }

  // Runs one calibration batch through the graph, feeding the observers.
  // Returns the graph's outputs.
  std::vector<at::Tensor> calibrate(const std::vector<at::Tensor>& inputs);

  // Observer statistics as JSON (for --save-stats), and back. load_stats
  // checks the file was made for the same model, backend and slots; errors
  // name `source` and the first mismatch.
  std::string save_stats() const;
  void load_stats(const std::string& json_text, const std::string& source);
  // The same as a document, for callers in this process (QAT): no text round trip.
  nlohmann::json stats_document() const;
  void load_stats_document(const nlohmann::json& stats, const std::string& source);

  // Replaces the activation observers with ones of `kind` (a config's
  // per-backend observer override). Only before calibration.
  void override_activation_observer(ObserverKind kind);

 private:
  Graph* graph_;
  Annotation annotation_;
  std::vector<ObserverSlot> slots_;
  std::vector<DerivedSlot> derived_;
  std::map<EdgeKey, int> slot_of_edge_;
  std::size_t observe_nodes_ = 0;
  bool calibrated_ = false;
};

}  // namespace qsdk
