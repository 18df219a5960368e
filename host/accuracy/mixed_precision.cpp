#include "accuracy/mixed_precision.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>
#include <sstream>

#include "accuracy/sensitivity.h"
#include "annotate/annotation.h"
#include "common/error.h"
#include "data/data_source.h"
#include "graph/graph.h"
#include "pipeline/pipeline_config.h"

namespace qsdk {
namespace {

constexpr int kOriginal = -1;  // a unit's step: its rule's own annotations

// One unit and what it may move to, in order (width names, then "float").
struct Candidate {
  SensitivityUnit unit;
  std::vector<std::string> ladder;
  int step = kOriginal;
  double rank_value = 0, rank_sqnr = 0;  // all but this unit quantized
};

std::string shown(const std::string& metric, double v) {
  std::ostringstream o;
  if (metric == "top1")
    o << std::fixed << std::setprecision(2) << 100.0 * v << "%";
  else
    o << std::fixed << std::setprecision(2) << v << " dB";
  return o.str();
}

class Search {
 public:
  Search(const PluginRegistry& plugins, const PipelineOptions& options,
         const std::vector<std::shared_ptr<const Backend>>& backends, std::ostream* progress)
      : plugins_(plugins), options_(options), target_(*options.accuracy), backends_(backends), progress_(progress) {
    if (target_.metric == "top1" && !source_has_heldout(options.calibration.source))
      throw InputError(target_.where,
                       "metric top1 needs labelled held-out data (calibration source mnist or "
                       "fortunes), and '" +
                           options.calibration.source + "' has none; use metric: sqnr with min_sqnr_db");
    base_ = variant_options(options, target_.metric == "top1");
  }

  MixedPrecision run() {
    MixedPrecision record;
    record.metric = target_.metric;
    record.order = target_.order;
    const PipelineResult full = run_pipeline(plugins_, base_, backends_);
    ++runs_;
    const double start = value_of(score_of(full));
    const auto& accuracy = full.measurements.accuracy;
    record.float_value =
        target_.metric == "top1" ? (accuracy ? accuracy->float_top1 : 0.0) : std::numeric_limits<double>::infinity();
    record.target = target_.metric == "top1" ? record.float_value - target_.max_drop / 100.0 : target_.min_sqnr_db;
    target_value_ = record.target;
    record.start_value = record.final_value = start;
    candidates_ = candidates_of(full.annotation);
    record.units = static_cast<int>(candidates_.size());
    budget_ = target_.budget > 0 ? target_.budget : 4 * record.units + 4;
    say("start: " + shown(target_.metric, start) + ", target " + shown(target_.metric, record.target) + ", " +
        std::to_string(record.units) + " units");
    if (meets(start)) {
      record.met = true;
      record.runs = runs_;
      return record;
    }
    if (target_.order == "sensitivity") rank();
    double value = start;
    bool met = false;
    // Raise: first fallback of each unit, then the next, in rank order.
    for (std::size_t level = 0; !met && level < max_ladder(); ++level)
      for (auto& c : candidates_) {
        if (level >= c.ladder.size()) continue;
        if (met || !spend()) break;
        c.step = static_cast<int>(level);
        value = measure();
        say("raise " + c.unit.label + " to " + c.ladder[level] + ": " + shown(target_.metric, value));
        met = meets(value);
      }
    // Prune: least sensitive first, step back down while the target holds.
    if (met && target_.order == "sensitivity")
      for (auto it = candidates_.rbegin(); it != candidates_.rend(); ++it)
        while (it->step != kOriginal && spend()) {
          const int was = it->step;
          it->step = was - 1;
          const double v = measure();
          const std::string to = it->step == kOriginal ? std::string("its rule's own") : it->ladder[it->step];
          say("prune " + it->unit.label + " back to " + to + ": " + shown(target_.metric, v) +
              (meets(v) ? " (kept)" : " (undone)"));
          if (!meets(v)) {
            it->step = was;
            break;
          }
          value = v;
        }
    if (!met)
      record.stopped = runs_ >= budget_ ? "the budget of " + std::to_string(budget_) + " runs is spent"
                                        : "every unit is at its last fallback";
    record.met = met;
    record.final_value = value;
    record.runs = runs_;
    for (const auto& c : candidates_)
      if (c.step != kOriginal) record.fallbacks.push_back({c.unit.label, c.unit.node_ids, c.ladder[c.step]});
    return record;
  }

  // The overrides that reproduce the search's result: the config's, then the
  // search's (by node id).
  std::vector<Override> overrides() const {
    std::vector<Override> out = options_.overrides;
    for (const auto& c : candidates_) {
      if (c.step == kOriginal) continue;
      const std::string& to = c.ladder[c.step];
      for (const int id : c.unit.node_ids) {
        Override o;
        o.node_id = id;
        if (to == "float")
          o.quantize = false;
        else
          o.width = to;
        o.where = "mixed precision: " + c.unit.label;
        out.push_back(std::move(o));
      }
    }
    return out;
  }

 private:
  bool meets(double v) const { return v >= target_value_ - 1e-12; }
  bool spend() {
    if (runs_ >= budget_) return false;
    ++runs_;
    return true;
  }

  void say(const std::string& line) const {
    if (progress_) *progress_ << "  mixed precision [" << runs_ << "]: " << line << "\n";
  }

  // The target's metric of a variant.
  double value_of(const VariantScore& s) const { return target_.metric == "top1" ? s.top1.value_or(0.0) : s.sqnr_db; }

  std::vector<Candidate> candidates_of(const Annotation& a) const {
    std::vector<Candidate> out;
    for (auto& u : sensitivity_units(a)) {
      Candidate c;
      const MatchRecord& m = a.matches.at(static_cast<std::size_t>(u.match));
      const Rule* rule = nullptr;
      for (const auto& b : backends_)
        if (b->name == m.backend && m.rule_index >= 0 && static_cast<std::size_t>(m.rule_index) < b->rules.size())
          rule = &b->rules[static_cast<std::size_t>(m.rule_index)];
      for (const auto& f : target_.fallback) {
        if (f == "float") c.ladder.push_back("float");
        if (f == "wider" && rule && !rule->widths.empty()) c.ladder.push_back(rule->widths.back().name);
      }
      c.unit = std::move(u);
      if (!c.ladder.empty()) out.push_back(std::move(c));
    }
    return out;
  }

  std::size_t max_ladder() const {
    std::size_t n = 0;
    for (const auto& c : candidates_) n = std::max(n, c.ladder.size());
    return n;
  }

  // Each unit alone left float; the unit whose absence recovers most first.
  void rank() {
    for (auto& c : candidates_) {
      if (!spend()) return;
      PipelineOptions o = base_;
      const auto skip = float_overrides({c.unit});
      o.overrides.insert(o.overrides.end(), skip.begin(), skip.end());
      const VariantScore s = score_of(run_pipeline(plugins_, o, backends_));
      c.rank_value = value_of(s);
      c.rank_sqnr = s.sqnr_db;
      say("rank " + c.unit.label + ": without it " + shown(target_.metric, c.rank_value));
    }
    std::stable_sort(candidates_.begin(), candidates_.end(), [](const Candidate& a, const Candidate& b) {
      if (a.rank_value != b.rank_value) return a.rank_value > b.rank_value;
      return a.rank_sqnr > b.rank_sqnr;
    });
  }

  // The metric with every candidate at its current step.
  double measure() {
    PipelineOptions o = base_;
    o.overrides = overrides();
    return value_of(score_of(run_pipeline(plugins_, o, backends_)));
  }

  const PluginRegistry& plugins_;
  const PipelineOptions& options_;
  const AccuracyTarget target_;
  const std::vector<std::shared_ptr<const Backend>>& backends_;
  std::ostream* progress_;
  PipelineOptions base_;
  std::vector<Candidate> candidates_;
  double target_value_ = 0;
  int runs_ = 0, budget_ = 0;
};

std::string overrides_file_text(const std::vector<Override>& overrides, const MixedPrecision& mp) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "overrides" << YAML::Value;
  emit_overrides(e, overrides);
  e << YAML::EndMap;
  std::ostringstream out;
  out << "# Written by qsdk's mixed-precision search (metric " << mp.metric << ", target "
      << shown(mp.metric, mp.target) << ", reached " << shown(mp.metric, mp.final_value) << (mp.met ? "" : ", NOT met")
      << ", " << mp.fallbacks.size() << " of " << mp.units << " units moved, " << mp.runs << " runs).\n"
      << "# As a run config's overrides (or `--overrides` of qsdk annotate/convert) it reproduces this model\n"
      << "# without the search.\n"
      << e.c_str() << "\n";
  return out.str();
}

}  // namespace

PipelineResult run_pipeline_for_target(const PluginRegistry& plugins, const PipelineOptions& options,
                                       std::vector<std::shared_ptr<const Backend>> backends, std::ostream* progress) {
  if (!options.accuracy) return run_pipeline(plugins, options, std::move(backends));
  if (backends.empty()) backends = instantiate_backends(plugins, options.backends);
  Search search(plugins, options, backends, progress);
  const MixedPrecision record = search.run();
  PipelineOptions final_options = options;
  final_options.accuracy.reset();
  final_options.overrides = search.overrides();
  PipelineResult r = run_pipeline(plugins, final_options, backends);
  r.measurements.mixed_precision = record;
  r.overrides_yaml = overrides_file_text(final_options.overrides, record);
  if (!record.met)
    r.measurements.notes.push_back("mixed precision: target " + shown(record.metric, record.target) +
                                   " not met (reached " + shown(record.metric, record.final_value) +
                                   "): " + record.stopped);
  return r;
}

}  // namespace qsdk
