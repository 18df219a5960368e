#include "conformance/checks.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "common/error.h"
#include "pipeline/measurements_json.h"

namespace qsdk::conformance {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxNodesListed = 12;

std::string fmt(double v, int precision = 2) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

std::string fmt_g(double v) {
  std::ostringstream s;
  s << std::setprecision(9) << v;
  return s.str();
}

bool glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

void cap(std::vector<std::string>& nodes, std::size_t total) {
  if (nodes.size() > kMaxNodesListed) {
    nodes.resize(kMaxNodesListed);
    nodes.push_back("... " + std::to_string(total - kMaxNodesListed) + " more");
  }
}

std::string ref(int id, const std::string& op, const std::string& module, const std::string& near = "") {
  std::string r = "%" + std::to_string(id) + " " + op;
  if (!module.empty())
    r += " (" + module + ")";
  else if (!near.empty())
    r += " (next to " + near + ")";
  return r;
}

std::string node_ref(const NodeRecord& n) { return ref(n.id, n.op, n.module, n.near); }

// An observer slot with the labels of every edge it serves.
struct SlotView {
  const QParamsRecord* q;
  std::vector<std::string> tensors;
};

std::vector<SlotView> slot_views(const Measurements& m) {
  std::map<std::string, std::size_t> group_of;  // edge label -> index into shared_tensors
  for (std::size_t i = 0; i < m.shared_tensors.size(); ++i)
    for (const auto& label : m.shared_tensors[i]) group_of[label] = i;
  std::vector<SlotView> out;
  for (const auto& q : m.qparams) {
    std::string l = q.label;
    // A slot serving several edges is labelled "<first edge> +N".
    if (const auto plus = l.rfind(" +");
        plus != std::string::npos && l.find_first_not_of("0123456789", plus + 2) == std::string::npos)
      l = l.substr(0, plus);
    const auto it = group_of.find(l);
    out.push_back({&q, it == group_of.end() ? std::vector<std::string>{l} : m.shared_tensors[it->second]});
  }
  return out;
}

struct Checker {
  const Measurements& m;
  const std::vector<SlotView> slots;
  std::vector<CheckResult> out;

  explicit Checker(const Measurements& measurements) : m(measurements), slots(slot_views(measurements)) {}

  void add(std::string check, bool passed, std::string expected, std::string found, std::vector<std::string> nodes,
           const std::string& where) {
    CheckResult r;
    r.check = std::move(check);
    r.passed = passed;
    r.expected = std::move(expected);
    r.found = std::move(found);
    r.nodes = std::move(nodes);
    r.where = where;
    out.push_back(std::move(r));
  }

  void structure(const std::string& section, const std::string& graph_name, const StructureExpect& s) {
    const std::vector<NodeRecord>* graph = graph_name == "reference" ? &m.reference_nodes
                                           : m.lowered_nodes         ? &*m.lowered_nodes
                                                                     : nullptr;
    if (!graph) {
      add(section, false, "a " + graph_name + " graph", "none: the backend does not lower (" + m.lowering_target + ")",
          {}, s.where);
      return;
    }
    const std::vector<NodeRecord>& nodes = *graph;
    std::map<std::string, std::vector<const NodeRecord*>> by_op;
    for (const auto& n : nodes) by_op[n.op].push_back(&n);
    auto refs = [&](const std::string& op) {
      std::vector<std::string> r;
      const auto it = by_op.find(op);
      if (it == by_op.end()) return r;
      for (const NodeRecord* n : it->second) r.push_back(node_ref(*n));
      cap(r, it->second.size());
      return r;
    };
    auto count = [&](const std::string& op) {
      const auto it = by_op.find(op);
      return it == by_op.end() ? 0 : static_cast<int>(it->second.size());
    };
    const std::string in = " (" + graph_name + " graph)";
    for (const auto& [op, expected] : s.counts) {
      const int found = count(op);
      add(section + ".counts[" + op + "]" + in, found == expected, std::to_string(expected), std::to_string(found),
          found == expected ? std::vector<std::string>{} : refs(op), s.where);
    }
    for (const auto& op : s.present) {
      const int found = count(op);
      add(section + ".present[" + op + "]" + in, found > 0, "at least 1 " + op, std::to_string(found), {}, s.where);
    }
    for (const auto& op : s.absent) {
      const int found = count(op);
      add(section + ".absent[" + op + "]" + in, found == 0, "0 (must be gone)", std::to_string(found), refs(op),
          s.where);
    }
    if (!s.sequence.empty()) {
      std::size_t k = 0;
      const NodeRecord* last = nullptr;
      for (const auto& n : nodes) {
        if (k < s.sequence.size() && n.op == s.sequence[k]) {
          ++k;
          last = &n;
        }
      }
      std::string expected;
      for (const auto& op : s.sequence) expected += (expected.empty() ? "" : " -> ") + op;
      const bool ok = k == s.sequence.size();
      std::string found = ok ? "all in order"
                             : "matched " + std::to_string(k) + " of " + std::to_string(s.sequence.size()) + "; no " +
                                   s.sequence[k] + (last ? " after " + node_ref(*last) : std::string(" at all"));
      std::vector<std::string> involved;
      if (!ok) {
        if (last) involved.push_back("last matched: " + node_ref(*last));
        for (const auto& r : refs(s.sequence[k])) involved.push_back(r);
      }
      add(section + ".sequence" + in, ok, expected, found, involved, s.where);
    }
  }

  // Slots a selector picks.
  std::vector<const SlotView*> select(const std::string& selector) const {
    std::vector<const SlotView*> picked;
    for (const auto& s : slots) {
      const std::string& kind = s.q->kind;
      bool take = false;
      if (selector == "all")
        take = true;
      else if (selector == "all_activations")
        take = kind == "activation" || kind == "fixed";
      else if (selector == "all_weights")
        take = kind == "weight";
      else if (selector == "all_dynamic")
        take = kind == "dynamic";
      else {
        take = glob(selector, s.q->label);
        for (const auto& t : s.tensors)
          if (glob(selector, t)) take = true;
      }
      if (take) picked.push_back(&s);
    }
    return picked;
  }

  static std::string slot_ref(const SlotView& s) { return "slot " + std::to_string(s.q->slot) + ": " + s.q->label; }

  void qparams(const QParamsExpect& q) {
    const auto picked = select(q.select);
    const std::string base = "qparams[" + q.select + "]";
    if (q.count) {
      std::vector<std::string> refs;
      for (const SlotView* s : picked) refs.push_back(slot_ref(*s));
      cap(refs, picked.size());
      add(base + ".count", static_cast<int>(picked.size()) == *q.count, std::to_string(*q.count) + " tensors",
          std::to_string(picked.size()),
          static_cast<int>(picked.size()) == *q.count ? std::vector<std::string>{} : refs, q.where);
    } else if (picked.empty()) {
      add(base, false, "at least one observed tensor matching '" + q.select + "'", "none", {}, q.where);
      return;
    }
    // One check per property; the found value lists the first offenders.
    auto property = [&](const std::string& name, const std::string& expected,
                        const std::function<std::optional<std::string>(const QParamsRecord&)>& bad_value) {
      std::vector<std::string> offenders;
      std::string first_found;
      std::size_t total = 0;
      for (const SlotView* s : picked) {
        if (const auto found = bad_value(*s->q)) {
          if (first_found.empty()) first_found = *found;
          offenders.push_back(slot_ref(*s) + " -> " + *found);
          ++total;
        }
      }
      cap(offenders, total);
      const std::string found =
          total == 0 ? expected + " on all " + std::to_string(picked.size())
                     : first_found + (total > 1 ? " (and " + std::to_string(total - 1) + " more tensors)" : "");
      add(base + "." + name, total == 0, expected, found, offenders, q.where);
    };
    auto no_qparams = [&](const QParamsRecord& s) -> std::optional<std::string> {
      if (s.scale.empty()) return "no qparams (" + s.kind + ", no observed data)";
      return std::nullopt;
    };
    if (q.dtype)
      property("dtype", *q.dtype, [&](const QParamsRecord& s) -> std::optional<std::string> {
        if (s.dtype != *q.dtype) return s.dtype;
        return std::nullopt;
      });
    if (q.quant_min)
      property("quant_min", std::to_string(*q.quant_min), [&](const QParamsRecord& s) -> std::optional<std::string> {
        if (s.quant_min != *q.quant_min) return std::to_string(s.quant_min);
        return std::nullopt;
      });
    if (q.quant_max)
      property("quant_max", std::to_string(*q.quant_max), [&](const QParamsRecord& s) -> std::optional<std::string> {
        if (s.quant_max != *q.quant_max) return std::to_string(s.quant_max);
        return std::nullopt;
      });
    if (q.symmetric)
      property("symmetric", *q.symmetric ? "zero point 0" : "a non-zero zero point",
               [&](const QParamsRecord& s) -> std::optional<std::string> {
                 if (auto none = no_qparams(s)) return none;
                 const auto& zps = s.zero_point;
                 const bool all_zero = std::all_of(zps.begin(), zps.end(), [](std::int64_t z) { return z == 0; });
                 if (all_zero != *q.symmetric) {
                   for (auto z : zps)
                     if ((z == 0) != *q.symmetric) return "zero point " + std::to_string(z);
                 }
                 return std::nullopt;
               });
    if (q.per_channel)
      property("per_channel", *q.per_channel ? "per-channel" : "per-tensor",
               [&](const QParamsRecord& s) -> std::optional<std::string> {
                 if (auto none = no_qparams(s)) return none;
                 const bool pc = s.axis.has_value() || s.scale.size() > 1;
                 if (pc != *q.per_channel)
                   return pc ? "per-channel (" + std::to_string(s.scale.size()) + " scales)"
                             : std::string("per-tensor");
                 return std::nullopt;
               });
    if (q.axis)
      property("axis", std::to_string(*q.axis), [&](const QParamsRecord& s) -> std::optional<std::string> {
        if (!s.axis) return std::string("no axis (per-tensor)");
        if (*s.axis != *q.axis) return std::to_string(*s.axis);
        return std::nullopt;
      });
    if (q.scale)
      property("scale", fmt_g(*q.scale), [&](const QParamsRecord& s) -> std::optional<std::string> {
        if (auto none = no_qparams(s)) return none;
        for (double v : s.scale)
          if (std::abs(v - *q.scale) > 1e-6 * std::abs(*q.scale)) return fmt_g(v);
        return std::nullopt;
      });
    if (q.zero_point)
      property("zero_point", std::to_string(*q.zero_point), [&](const QParamsRecord& s) -> std::optional<std::string> {
        if (auto none = no_qparams(s)) return none;
        for (auto z : s.zero_point)
          if (z != *q.zero_point) return std::to_string(z);
        return std::nullopt;
      });
  }

  void shared(const SharedExpect& g, std::size_t index) {
    const std::string name = "shared[" + std::to_string(index) + "]";
    std::vector<std::string> involved;
    std::set<std::string> distinct;  // (dtype, scales, zero points) as text
    std::set<int> slot_ids;
    std::string missing;
    for (const auto& pattern : g.tensors) {
      const auto picked = select(pattern);
      if (picked.empty()) missing += (missing.empty() ? "" : ", ") + pattern;
      for (const SlotView* v : picked) {
        const QParamsRecord& s = *v->q;
        std::string key = s.dtype + "|";
        for (const double x : s.scale) key += fmt_g(x) + ",";
        key += "|";
        for (const auto z : s.zero_point) key += std::to_string(z) + ",";
        distinct.insert(key);
        slot_ids.insert(s.slot);
        const std::string q = "scale " + (s.scale.empty() ? std::string("-") : fmt_g(s.scale.front())) +
                              ", zero point " +
                              (s.zero_point.empty() ? std::string("-") : std::to_string(s.zero_point.front()));
        involved.push_back(pattern + " -> " + slot_ref(*v) + " (" + q + ")");
      }
    }
    std::string expected;
    for (const auto& p : g.tensors) expected += (expected.empty() ? "" : ", ") + p;
    expected = "one set of qparams for: " + expected;
    if (!missing.empty()) {
      add(name, false, expected, "no observed tensor matches " + missing, involved, g.where);
      return;
    }
    const bool ok = distinct.size() == 1;
    add(name, ok, expected,
        ok ? "identical (" + std::to_string(slot_ids.size()) + " slot" + (slot_ids.size() == 1 ? "" : "s") + ")"
           : std::to_string(distinct.size()) + " different qparams in " + std::to_string(slot_ids.size()) + " slots",
        ok ? std::vector<std::string>{} : involved, g.where);
  }

  void bias(const BiasExpect& b) {
    if (m.biases.empty()) {
      add("bias", false, "quantized conv/linear biases", "none in the reference graph", {}, b.where);
      return;
    }
    std::vector<std::string> bad_steps, bad_granularity;
    double worst = 0;
    for (const auto& x : m.biases) {
      const double e = x.max_error_steps;
      worst = std::max(worst, e);
      const std::string at = ref(x.node, x.op, x.module);
      if (e > b.max_error_steps) bad_steps.push_back(at + ": " + fmt_g(e) + " steps off");
      if (b.per_channel && x.per_channel != *b.per_channel)
        bad_granularity.push_back(at + ": " + (x.per_channel ? "per-channel" : "per-tensor"));
    }
    const std::size_t n = m.biases.size();
    add("bias.derived", bad_steps.empty(),
        "every bias a multiple of input scale x weight scale (within " + fmt_g(b.max_error_steps) + " steps)",
        bad_steps.empty() ? "largest error " + fmt_g(worst) + " steps on " + std::to_string(n) + " biases"
                          : std::to_string(bad_steps.size()) + " biases off by up to " + fmt_g(worst) + " steps",
        bad_steps, b.where);
    if (b.per_channel)
      add("bias.per_channel", bad_granularity.empty(),
          *b.per_channel ? "per-channel bias scales" : "per-tensor bias scale",
          bad_granularity.empty() ? "as expected on " + std::to_string(n) + " biases"
                                  : std::to_string(bad_granularity.size()) + " biases differ",
          bad_granularity, b.where);
  }

  std::vector<std::string> worst_layers(std::size_t k) const {
    std::vector<const LayerSqnr*> sorted;
    for (const auto& l : m.layers) sorted.push_back(&l);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const LayerSqnr* a, const LayerSqnr* b) { return a->sqnr_db < b->sqnr_db; });
    std::vector<std::string> out;
    for (std::size_t i = 0; i < sorted.size() && i < k; ++i)
      out.push_back("lowest layer SQNR: " + ref(sorted[i]->node, sorted[i]->op, sorted[i]->module_path) + " " +
                    fmt(sorted[i]->sqnr_db) + " dB");
    return out;
  }

  void onnx(const OnnxExpect& e) {
    if (!m.onnx) {
      add("onnx.export", false, "an ONNX export", "none", {}, e.where);
      return;
    }
    const OnnxMeasurements& o = *m.onnx;
    add("onnx.encodings", o.encodings_problems.empty(), "encodings.json matches model.onnx",
        o.encodings_problems.empty() ? "matches" : o.encodings_problems.front(), o.encodings_problems, e.where);
    auto count = [&](const char* name, const std::optional<int>& want, int got) {
      if (want) add(std::string("onnx.") + name, got == *want, std::to_string(*want), std::to_string(got), {}, e.where);
    };
    count("quantize_linear", e.quantize_linear, o.quantize_linear);
    count("dequantize_linear", e.dequantize_linear, o.dequantize_linear);
    if (!e.max_steps && !e.sqnr_min_db) return;
    if (o.runtime.empty()) {
      add("onnx.runtime", false, "a run in ONNX Runtime", o.runtime_skipped.empty() ? "not run" : o.runtime_skipped, {},
          e.where);
      return;
    }
    for (const auto& r : o.runtime) {
      const std::string run = std::string(" (ONNX Runtime, optimization ") + (r.optimized ? "all" : "disabled") + ")";
      if (e.max_steps && r.output_scale > 0 && r.steps_bound)
        add("onnx.max_steps", r.max_steps <= *e.max_steps + 1e-3, "<= " + fmt(*e.max_steps) + " steps" + run,
            fmt(r.max_steps, 3) + " steps at the output" +
                (r.optimized ? "" : "; worst tensor " + fmt(r.worst_tensor_steps, 3) + " steps"),
            r.worst_tensor.empty() ? std::vector<std::string>{} : std::vector<std::string>{r.worst_tensor}, e.where);
      // The same saturation that unbounds the fused run's steps lowers its
      // SQNR without VNNI: reported in the measurements, bounded with VNNI.
      if (e.sqnr_min_db && r.steps_bound)
        add("onnx.sqnr_min_db", r.sqnr_db >= *e.sqnr_min_db, ">= " + fmt(*e.sqnr_min_db) + " dB" + run,
            fmt(r.sqnr_db) + " dB", {}, e.where);
    }
  }

  // The engine under test against the integer reference: one check per
  // tensor family (quantized tensors, output), failures naming the first op
  // that diverges and by how much.
  void engine(const EngineExpect& e) {
    const std::string wanted = e.run == "backend"             ? "(the backend's engine)"
                               : e.run == "onnxruntime-fused" ? "onnxruntime (optimizations all)"
                                                              : "onnxruntime (optimizations disabled)";
    const EngineAgreement* a = nullptr;
    for (const auto& x : m.engines)
      if (x.engine.find(wanted) != std::string::npos) a = &x;
    if (!a) {
      add("engine.run", false, "a run of " + e.run, "not run", {}, e.where);
      return;
    }
    if (!a->ran()) {
      add("engine.run", false, "a run of " + a->engine,
          a->unsupported.empty() ? "failed: " + a->error : "did not run this model: " + a->unsupported, {}, e.where);
      return;
    }
    auto mode_of = [&](const std::string& tensor) {
      for (const auto& [pattern, mode] : e.tensors)
        if (glob(pattern, tensor)) return mode;
      return e.verify;
    };
    std::size_t compared = 0, within = 0;
    std::vector<std::string> off;
    std::string first;
    for (const auto& t : a->tensors) {
      if (!t.returned) continue;
      ++compared;
      const VerifyMode mode = mode_of(t.tensor);
      if (holds(mode, t)) {
        ++within;
        continue;
      }
      off.push_back(t.tensor + ": " + tensor_text(t));
      if (first.empty())
        first = "first divergence: op " + (t.op.empty() ? t.source : t.op) +
                (t.op_type.empty() ? "" : " (" + t.op_type + ")") + ", tensor " + t.tensor + ", " + tensor_text(t) +
                " (" + std::to_string(t.mismatched) + " of " + std::to_string(t.elements) +
                " values differ; the reference computes it as " + t.reference + ")" +
                (a->replay_file.empty() ? "" : "; its inputs: " + a->replay_file);
    }
    if (compared > 0 || !e.tensors.empty())
      add("engine.tensors", off.empty(), e.verify.text() + " on every quantized tensor (" + a->engine + ")",
          std::to_string(within) + " of " + std::to_string(compared) + " within" + (first.empty() ? "" : "; " + first),
          off, e.where);
    const VerifyMode out_mode = e.output.value_or(e.verify);
    add("engine.output", holds(out_mode, a->output), out_mode.text() + " at the output (" + a->engine + ")",
        tensor_text(a->output), {}, e.where);
  }

  static std::string tensor_text(const EngineTensorAgreement& t) {
    if (t.max_lsb < 0) return "|diff| " + fmt(t.max_abs, 6) + ", SQNR " + fmt(t.sqnr_db) + " dB";
    return std::to_string(t.max_lsb) + " LSB, SQNR " + fmt(t.sqnr_db) + " dB";
  }

  static bool holds(const VerifyMode& mode, const EngineTensorAgreement& t) {
    switch (mode.kind) {
      case VerifyMode::Kind::Exact: return t.max_lsb == 0 || (t.max_lsb < 0 && t.max_abs == 0);
      case VerifyMode::Kind::Lsb: return t.max_lsb >= 0 && static_cast<double>(t.max_lsb) <= mode.value;
      case VerifyMode::Kind::Sqnr: return t.sqnr_db >= mode.value;
      case VerifyMode::Kind::Absolute: return t.max_abs <= mode.value;
      case VerifyMode::Kind::Relative: return t.max_rel <= mode.value;
    }
    return false;
  }

  // A spec whose pipeline has an `accuracy:` target: the search met it.
  void mixed_precision(const MixedPrecision& mp) {
    auto value = [&](double v) { return mp.metric == "top1" ? fmt(100.0 * v) + "%" : fmt(v) + " dB"; };
    std::vector<std::string> moved;
    for (const auto& f : mp.fallbacks) moved.push_back(f.unit + " -> " + f.to);
    add("accuracy.target", mp.met, ">= " + value(mp.target) + " (" + mp.metric + ", mixed precision)",
        value(mp.final_value) + " from " + value(mp.start_value) + ", " + std::to_string(mp.fallbacks.size()) + " of " +
            std::to_string(mp.units) + " units moved in " + std::to_string(mp.runs) + " runs" +
            (mp.stopped.empty() ? "" : "; " + mp.stopped),
        moved, "");
  }

  void numerics(const NumericsExpect& n) {
    const LoweringMeasurements* lowered = m.lowered ? &*m.lowered : nullptr;
    const std::string no_lowered = "no lowered model (" + m.lowering_target + ")";
    if (n.sqnr_min_db) {
      const double v = m.sqnr_db;
      const bool ok = v >= *n.sqnr_min_db;
      add("numerics.sqnr_min_db", ok, ">= " + fmt(*n.sqnr_min_db) + " dB (reference vs float)", fmt(v) + " dB",
          ok ? std::vector<std::string>{} : worst_layers(3), n.where);
    }
    if (n.sqnr_lowered_min_db) {
      const std::string expected = ">= " + fmt(*n.sqnr_lowered_min_db) + " dB (lowered vs float)";
      if (!lowered) {
        add("numerics.sqnr_lowered_min_db", false, expected, no_lowered, {}, n.where);
      } else {
        const double v = lowered->sqnr_db_lowered;
        const bool ok = v >= *n.sqnr_lowered_min_db;
        add("numerics.sqnr_lowered_min_db", ok, expected, fmt(v) + " dB",
            ok ? std::vector<std::string>{} : worst_layers(3), n.where);
      }
    }
    if (n.max_steps) {
      if (!lowered) {
        add("numerics.max_steps", false, "<= " + fmt(*n.max_steps) + " steps (lowered vs reference)", no_lowered, {},
            n.where);
      } else {
        const double v = lowered->max_difference_steps;
        const double kernel = lowered->worst_kernel_steps;
        const double kernel_limit = n.kernel_max_steps.value_or(*n.max_steps);
        // Steps come from dequantized floats: one step can read as 1.00001.
        const bool ok = v <= *n.max_steps + 1e-3 && kernel <= kernel_limit + 1e-3;
        std::vector<std::string> involved;
        if (!ok && !lowered->worst_kernel.empty()) involved.push_back("worst kernel: " + lowered->worst_kernel);
        const std::string limit = n.kernel_max_steps
                                      ? "<= " + fmt(*n.max_steps) + " steps at the output, <= " + fmt(kernel_limit) +
                                            " op by op (lowered vs reference)"
                                      : "<= " + fmt(*n.max_steps) + " steps (lowered vs reference)";
        add("numerics.max_steps", ok, limit, fmt(v, 3) + " steps at the output, " + fmt(kernel, 3) + " op by op",
            involved, n.where);
      }
    }
    if (n.top1_agreement_min) {
      if (!m.accuracy) {
        add("numerics.top1_agreement_min", false, ">= " + fmt(*n.top1_agreement_min, 3),
            "no accuracy measured (needs a labelled source: calibration source mnist or fortunes)", {}, n.where);
      } else {
        const double v = m.accuracy->agreement;
        add("numerics.top1_agreement_min", v >= *n.top1_agreement_min,
            ">= " + fmt(*n.top1_agreement_min, 3) + " (float vs quantized top-1, held-out)",
            fmt(v, 4) + " on " + std::to_string(m.accuracy->samples) + " samples", {}, n.where);
      }
    }
    if (n.perplexity_ratio_max) {
      const std::string limit = "<= " + fmt(*n.perplexity_ratio_max, 3) + " (quantized / float held-out perplexity)";
      if (!m.accuracy || !m.accuracy->float_perplexity) {
        add("numerics.perplexity_ratio_max", false, limit,
            "no perplexity measured (needs a text source with next-token labels: calibration source fortunes)", {},
            n.where);
      } else {
        const double f = *m.accuracy->float_perplexity, q = m.accuracy->quantized_perplexity.value_or(0);
        add("numerics.perplexity_ratio_max", q <= f * *n.perplexity_ratio_max, limit,
            fmt(q / f, 4) + " (" + fmt(q, 3) + " vs " + fmt(f, 3) + " float, " + std::to_string(m.accuracy->samples) +
                " tokens)",
            {}, n.where);
      }
    }
    if (n.layer_sqnr_min_db) {
      std::vector<std::string> low;
      double worst = std::numeric_limits<double>::infinity();
      for (const auto& l : m.layers) {
        worst = std::min(worst, l.sqnr_db);
        if (l.sqnr_db < *n.layer_sqnr_min_db)
          low.push_back(ref(l.node, l.op, l.module_path) + " " + fmt(l.sqnr_db) + " dB");
      }
      const std::size_t total = low.size();
      cap(low, total);
      add("numerics.layer_sqnr_min_db", total == 0 && !m.layers.empty(),
          ">= " + fmt(*n.layer_sqnr_min_db) + " dB on every quantized op",
          m.layers.empty() ? std::string("no per-layer SQNR measured")
          : total == 0     ? "lowest " + fmt(worst) + " dB"
                           : std::to_string(total) + " ops below, lowest " + fmt(worst) + " dB",
          low, n.where);
    }
  }
};

}  // namespace

const char* to_string(Status s) {
  switch (s) {
    case Status::Pass: return "pass";
    case Status::Fail: return "fail";
    case Status::Skip: return "skip";
    case Status::Error: return "error";
  }
  return "?";
}

Status parse_status(const std::string& s) {
  if (s == "pass") return Status::Pass;
  if (s == "fail") return Status::Fail;
  if (s == "skip") return Status::Skip;
  return Status::Error;
}

json build_slots(const Measurements& measurements) {
  json out = json::array();
  for (const auto& v : slot_views(measurements))
    out.push_back({{"slot", v.q->slot}, {"label", v.q->label}, {"tensors", v.tensors}});
  return out;
}

std::string node_ref(const json& node) {
  return ref(node.value("node", node.value("id", -1)), node.value("op", std::string()),
             node.value("module", std::string()), node.value("near", std::string()));
}

std::string CheckResult::message() const {
  std::string msg = check + ": expected " + expected + ", found " + found;
  if (!nodes.empty()) {
    msg += "; nodes:";
    for (const auto& n : nodes) msg += "\n      " + n;
  }
  if (!where.empty()) msg += (nodes.empty() ? " " : "\n      ") + std::string("(spec ") + where + ")";
  return msg;
}

CaseResult evaluate(const Expectations& expect, const json& m) {
  CaseResult r;
  r.spec = m.value("spec", std::string());
  r.backend = m.value("backend", std::string());
  r.spec_file = m.value("spec_file", std::string());
  r.measurement = m;
  r.seconds = number_of(m.value("seconds", json(0.0)));
  auto outcome = m.value("outcome", std::string("error"));
  std::string error = m.value("error", std::string());
  // What the pipeline measured, through the one reader (a malformed or
  // another version's document is the case's error).
  Measurements measured;
  if (outcome == "ran") {
    try {
      measured = measurements_from_json(m.value("measurements", json()), "the case's measurements");
    } catch (const InputError& e) {
      outcome = "error";
      error = e.what();
    }
  }
  if (outcome == "ran") r.measured = measured;
  const int quantized = measured.quantized_ops();

  if (expect.failure) {
    const auto& f = *expect.failure;
    CheckResult c;
    c.where = f.where;
    if (f.kind == FailureExpect::Kind::Reject) {
      c.check = "expect_failure.reject";
      c.expected = "the backend rejects the model with a reason containing '" + f.reason + "'";
      if (outcome == "rejected") {
        c.passed = error.find(f.reason) != std::string::npos;
        c.found = "rejected: " + error;
      } else if (outcome == "ran") {
        c.passed = false;
        c.found = "the pipeline ran (" + std::to_string(quantized) + " ops quantized)";
      } else {
        c.passed = false;
        c.found = "error: " + error;
      }
    } else {
      c.check = "expect_failure.skip";
      c.expected = "nothing quantized, a float reason containing '" + f.reason + "'";
      if (outcome == "ran") {
        std::string matching;
        for (const auto& d : measured.decisions)
          if (d.status != "quantized" && d.reason.find(f.reason) != std::string::npos) {
            matching = ref(d.id, d.op, d.module) + ": " + d.reason;
            break;
          }
        c.passed = quantized == 0 && !matching.empty();
        c.found = std::to_string(quantized) + " ops quantized" +
                  (matching.empty() ? ", no float reason contains it" : "; " + matching);
      } else {
        c.passed = false;
        c.found = outcome + ": " + error;
      }
    }
    r.checks.push_back(c);
    r.status = c.passed ? Status::Pass : Status::Fail;
    r.expected_failure = c.passed;
    return r;
  }

  // Checking an engine alone (--verify-engine): a model the backend refuses
  // or the engine does not run is skipped, saying why.
  if (expect.engine && expect.engine->only) {
    if (outcome == "rejected") {
      r.status = Status::Skip;
      r.reason = "the backend refuses the model: " + error;
      return r;
    }
    if (outcome == "ran")
      for (const auto& e : measured.engines)
        if (!e.unsupported.empty()) {
          r.status = Status::Skip;
          r.reason = e.engine + " does not run this model: " + e.unsupported;
          return r;
        }
  }

  if (outcome != "ran") {
    r.status = Status::Error;
    r.reason = (outcome == "rejected" ? "the pipeline rejected the model: " : "error: ") + error;
    return r;
  }

  Checker checker(measured);
  if (expect.structure) checker.structure("structure", "reference", *expect.structure);
  if (expect.lowered) checker.structure("lowered", "lowered", *expect.lowered);
  for (const auto& q : expect.qparams) checker.qparams(q);
  for (std::size_t i = 0; i < expect.shared.size(); ++i) checker.shared(expect.shared[i], i);
  if (expect.bias) checker.bias(*expect.bias);
  if (expect.numerics) checker.numerics(*expect.numerics);
  if (measured.mixed_precision) checker.mixed_precision(*measured.mixed_precision);
  if (expect.onnx) checker.onnx(*expect.onnx);
  if (expect.engine) checker.engine(*expect.engine);
  r.checks = std::move(checker.out);
  r.status = std::all_of(r.checks.begin(), r.checks.end(), [](const CheckResult& c) { return c.passed; })
                 ? Status::Pass
                 : Status::Fail;
  r.unspecified = r.status == Status::Pass && !expect.has_structure();
  return r;
}

json to_json(const CheckResult& c) {
  return json{{"check", c.check}, {"passed", c.passed}, {"expected", c.expected},
              {"found", c.found}, {"nodes", c.nodes},   {"where", c.where}};
}

json to_json(const CaseResult& r) {
  json checks = json::array();
  for (const auto& c : r.checks) checks.push_back(to_json(c));
  return json{{"spec", r.spec},
              {"backend", r.backend},
              {"spec_file", r.spec_file},
              {"status", to_string(r.status)},
              {"reason", r.reason},
              {"expected_failure", r.expected_failure},
              {"unspecified", r.unspecified},
              {"seconds", r.seconds},
              {"checks", checks},
              {"measurement", r.measurement}};
}

CaseResult case_from_json(const json& j, const std::string& source) {
  CaseResult r;
  r.spec = j.value("spec", std::string());
  r.backend = j.value("backend", std::string());
  r.spec_file = j.value("spec_file", std::string());
  r.status = parse_status(j.value("status", std::string("error")));
  r.reason = j.value("reason", std::string());
  r.expected_failure = j.value("expected_failure", false);
  r.unspecified = j.value("unspecified", false);
  r.seconds = number_of(j.value("seconds", json(0.0)));
  for (const auto& c : j.value("checks", json::array())) {
    CheckResult x;
    x.check = c.value("check", std::string());
    x.passed = c.value("passed", false);
    x.expected = c.value("expected", std::string());
    x.found = c.value("found", std::string());
    x.nodes = c.value("nodes", std::vector<std::string>{});
    x.where = c.value("where", std::string());
    r.checks.push_back(x);
  }
  r.measurement = j.value("measurement", json());
  if (r.status != Status::Error && r.measurement.is_object() && r.measurement.value("outcome", std::string()) == "ran")
    r.measured = measurements_from_json(r.measurement.value("measurements", json()),
                                        source + " (" + r.spec + " on " + r.backend + ")");
  return r;
}

}  // namespace qsdk::conformance
