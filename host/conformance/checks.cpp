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

std::string str(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void cap(std::vector<std::string>& nodes, std::size_t total) {
  if (nodes.size() > kMaxNodesListed) {
    nodes.resize(kMaxNodesListed);
    nodes.push_back("... " + std::to_string(total - kMaxNodesListed) + " more");
  }
}

// The pipeline's measurements (pipeline/measurements_json.h) inside a case.
const json& measurements_of(const json& m) {
  static const json kNone = json::object();
  const auto it = m.find("measurements");
  return it != m.end() && it->is_object() ? *it : kNone;
}

json details_of(const json& d) { return d.value("details", json::object()); }

std::string lowering_of(const json& d) {
  return d.contains("lowering") ? d["lowering"].value("target", std::string("reference")) : "reference";
}

struct Checker {
  const json& d;       // the measurements
  const json details;  // their details section
  const json slots;    // build_slots(d)
  std::vector<CheckResult> out;

  explicit Checker(const json& measurements)
      : d(measurements), details(details_of(measurements)), slots(build_slots(measurements)) {}

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
    const auto graphs = details.value("graphs", json::object());
    if (!graphs.contains(graph_name) || graphs[graph_name].is_null()) {
      add(section, false, "a " + graph_name + " graph", "none: the backend does not lower (" + lowering_of(d) + ")", {},
          s.where);
      return;
    }
    const json& nodes = graphs[graph_name];
    std::map<std::string, std::vector<const json*>> by_op;
    for (const auto& n : nodes) by_op[str(n, "op")].push_back(&n);
    auto refs = [&](const std::string& op) {
      std::vector<std::string> r;
      const auto it = by_op.find(op);
      if (it == by_op.end()) return r;
      for (const json* n : it->second) r.push_back(node_ref(*n));
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
      const json* last = nullptr;
      for (const auto& n : nodes) {
        if (k < s.sequence.size() && str(n, "op") == s.sequence[k]) {
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

  // Slots a selector picks, with the labels that matched.
  std::vector<const json*> select(const std::string& selector) const {
    std::vector<const json*> picked;
    for (const auto& s : slots) {
      const auto kind = str(s, "kind");
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
        take = glob(selector, str(s, "label"));
        for (const auto& t : s.value("tensors", json::array()))
          if (t.is_string() && glob(selector, t.get<std::string>())) take = true;
      }
      if (take) picked.push_back(&s);
    }
    return picked;
  }

  static std::string slot_ref(const json& s) {
    return "slot " + std::to_string(s.value("slot", -1)) + ": " + str(s, "label");
  }

  void qparams(const QParamsExpect& q) {
    const auto picked = select(q.select);
    const std::string base = "qparams[" + q.select + "]";
    if (q.count) {
      std::vector<std::string> refs;
      for (const json* s : picked) refs.push_back(slot_ref(*s));
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
                        const std::function<std::optional<std::string>(const json&)>& bad_value) {
      std::vector<std::string> offenders;
      std::string first_found;
      std::size_t total = 0;
      for (const json* s : picked) {
        if (const auto found = bad_value(*s)) {
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
    auto scales = [](const json& s) { return s.value("scale", std::vector<double>{}); };
    auto zero_points = [](const json& s) { return s.value("zero_point", std::vector<std::int64_t>{}); };
    auto no_qparams = [&](const json& s) -> std::optional<std::string> {
      if (scales(s).empty()) return std::string("no qparams (") + str(s, "kind") + ", no observed data)";
      return std::nullopt;
    };
    if (q.dtype)
      property("dtype", *q.dtype, [&](const json& s) -> std::optional<std::string> {
        if (str(s, "dtype") != *q.dtype) return str(s, "dtype");
        return std::nullopt;
      });
    if (q.quant_min)
      property("quant_min", std::to_string(*q.quant_min), [&](const json& s) -> std::optional<std::string> {
        const auto v = s.value("quant_min", std::int64_t{0});
        if (v != *q.quant_min) return std::to_string(v);
        return std::nullopt;
      });
    if (q.quant_max)
      property("quant_max", std::to_string(*q.quant_max), [&](const json& s) -> std::optional<std::string> {
        const auto v = s.value("quant_max", std::int64_t{0});
        if (v != *q.quant_max) return std::to_string(v);
        return std::nullopt;
      });
    if (q.symmetric)
      property("symmetric", *q.symmetric ? "zero point 0" : "a non-zero zero point",
               [&](const json& s) -> std::optional<std::string> {
                 if (auto none = no_qparams(s)) return none;
                 const auto zps = zero_points(s);
                 const bool all_zero = std::all_of(zps.begin(), zps.end(), [](std::int64_t z) { return z == 0; });
                 if (all_zero != *q.symmetric) {
                   for (auto z : zps)
                     if ((z == 0) != *q.symmetric) return "zero point " + std::to_string(z);
                 }
                 return std::nullopt;
               });
    if (q.per_channel)
      property("per_channel", *q.per_channel ? "per-channel" : "per-tensor",
               [&](const json& s) -> std::optional<std::string> {
                 if (auto none = no_qparams(s)) return none;
                 const bool pc = s.contains("axis") || scales(s).size() > 1;
                 if (pc != *q.per_channel)
                   return pc ? "per-channel (" + std::to_string(scales(s).size()) + " scales)"
                             : std::string("per-tensor");
                 return std::nullopt;
               });
    if (q.axis)
      property("axis", std::to_string(*q.axis), [&](const json& s) -> std::optional<std::string> {
        if (!s.contains("axis")) return std::string("no axis (per-tensor)");
        if (s["axis"].get<int>() != *q.axis) return std::to_string(s["axis"].get<int>());
        return std::nullopt;
      });
    if (q.scale)
      property("scale", fmt_g(*q.scale), [&](const json& s) -> std::optional<std::string> {
        if (auto none = no_qparams(s)) return none;
        for (double v : scales(s))
          if (std::abs(v - *q.scale) > 1e-6 * std::abs(*q.scale)) return fmt_g(v);
        return std::nullopt;
      });
    if (q.zero_point)
      property("zero_point", std::to_string(*q.zero_point), [&](const json& s) -> std::optional<std::string> {
        if (auto none = no_qparams(s)) return none;
        for (auto z : zero_points(s))
          if (z != *q.zero_point) return std::to_string(z);
        return std::nullopt;
      });
  }

  void shared(const SharedExpect& g, std::size_t index) {
    const std::string name = "shared[" + std::to_string(index) + "]";
    std::vector<std::string> involved;
    std::set<std::string> distinct;  // serialized (dtype, scale, zero point)
    std::set<int> slots;
    std::string missing;
    for (const auto& pattern : g.tensors) {
      const auto picked = select(pattern);
      if (picked.empty()) missing += (missing.empty() ? "" : ", ") + pattern;
      for (const json* s : picked) {
        json key{s->value("dtype", std::string()), s->value("scale", json::array()),
                 s->value("zero_point", json::array())};
        distinct.insert(key.dump());
        slots.insert(s->value("slot", -1));
        std::string q = "scale " +
                        (s->value("scale", std::vector<double>{}).empty()
                             ? std::string("-")
                             : fmt_g(s->value("scale", std::vector<double>{}).front())) +
                        ", zero point " +
                        (s->value("zero_point", std::vector<std::int64_t>{}).empty()
                             ? std::string("-")
                             : std::to_string(s->value("zero_point", std::vector<std::int64_t>{}).front()));
        involved.push_back(pattern + " -> " + slot_ref(*s) + " (" + q + ")");
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
        ok ? "identical (" + std::to_string(slots.size()) + " slot" + (slots.size() == 1 ? "" : "s") + ")"
           : std::to_string(distinct.size()) + " different qparams in " + std::to_string(slots.size()) + " slots",
        ok ? std::vector<std::string>{} : involved, g.where);
  }

  void bias(const BiasExpect& b) {
    const auto biases = details.value("biases", json::array());
    if (biases.empty()) {
      add("bias", false, "quantized conv/linear biases", "none in the reference graph", {}, b.where);
      return;
    }
    std::vector<std::string> bad_steps, bad_granularity;
    double worst = 0;
    for (const auto& x : biases) {
      const double e = number_of(x["max_error_steps"]);
      worst = std::max(worst, e);
      if (e > b.max_error_steps) bad_steps.push_back(node_ref(x) + ": " + fmt_g(e) + " steps off");
      if (b.per_channel && x.value("per_channel", false) != *b.per_channel)
        bad_granularity.push_back(node_ref(x) + ": " + (x.value("per_channel", false) ? "per-channel" : "per-tensor"));
    }
    add("bias.derived", bad_steps.empty(),
        "every bias a multiple of input scale x weight scale (within " + fmt_g(b.max_error_steps) + " steps)",
        bad_steps.empty() ? "largest error " + fmt_g(worst) + " steps on " + std::to_string(biases.size()) + " biases"
                          : std::to_string(bad_steps.size()) + " biases off by up to " + fmt_g(worst) + " steps",
        bad_steps, b.where);
    if (b.per_channel)
      add("bias.per_channel", bad_granularity.empty(),
          *b.per_channel ? "per-channel bias scales" : "per-tensor bias scale",
          bad_granularity.empty() ? "as expected on " + std::to_string(biases.size()) + " biases"
                                  : std::to_string(bad_granularity.size()) + " biases differ",
          bad_granularity, b.where);
  }

  std::vector<std::string> worst_layers(std::size_t k) const {
    auto layers = details.value("layers", json::array());
    std::vector<const json*> sorted;
    for (const auto& l : layers) sorted.push_back(&l);
    std::stable_sort(sorted.begin(), sorted.end(), [](const json* a, const json* b) {
      return number_of((*a)["sqnr_db"]) < number_of((*b)["sqnr_db"]);
    });
    std::vector<std::string> out;
    for (std::size_t i = 0; i < sorted.size() && i < k; ++i)
      out.push_back("lowest layer SQNR: " + node_ref(*sorted[i]) + " " + fmt(number_of((*sorted[i])["sqnr_db"])) +
                    " dB");
    return out;
  }

  void numerics(const NumericsExpect& n) {
    const json lowering = d.value("lowering", json::object());
    const bool lowered = lowering.contains("lowered_ops");
    if (n.sqnr_min_db) {
      const double v = number_of(d.value("sqnr_db", json()), -std::numeric_limits<double>::infinity());
      const bool ok = v >= *n.sqnr_min_db;
      add("numerics.sqnr_min_db", ok, ">= " + fmt(*n.sqnr_min_db) + " dB (reference vs float)", fmt(v) + " dB",
          ok ? std::vector<std::string>{} : worst_layers(3), n.where);
    }
    if (n.sqnr_lowered_min_db) {
      if (!lowered) {
        add("numerics.sqnr_lowered_min_db", false, ">= " + fmt(*n.sqnr_lowered_min_db) + " dB (lowered vs float)",
            "no lowered model (" + lowering_of(d) + ")", {}, n.where);
      } else {
        const double v = number_of(lowering.value("sqnr_db_lowered", json()), -std::numeric_limits<double>::infinity());
        const bool ok = v >= *n.sqnr_lowered_min_db;
        add("numerics.sqnr_lowered_min_db", ok, ">= " + fmt(*n.sqnr_lowered_min_db) + " dB (lowered vs float)",
            fmt(v) + " dB", ok ? std::vector<std::string>{} : worst_layers(3), n.where);
      }
    }
    if (n.max_steps) {
      if (!lowered) {
        add("numerics.max_steps", false, "<= " + fmt(*n.max_steps) + " steps (lowered vs reference)",
            "no lowered model (" + lowering_of(d) + ")", {}, n.where);
      } else {
        const double v = number_of(lowering.value("max_difference_steps", json()));
        const double kernel = number_of(details.value("worst_kernel_steps", json(0.0)));
        const double kernel_limit = n.kernel_max_steps.value_or(*n.max_steps);
        // Steps come from dequantized floats: one step can read as 1.00001.
        const bool ok = v <= *n.max_steps + 1e-3 && kernel <= kernel_limit + 1e-3;
        std::vector<std::string> involved;
        if (!ok && details.contains("worst_kernel"))
          involved.push_back("worst kernel: " + str(details, "worst_kernel"));
        const std::string limit = n.kernel_max_steps
                                      ? "<= " + fmt(*n.max_steps) + " steps at the output, <= " + fmt(kernel_limit) +
                                            " op by op (lowered vs reference)"
                                      : "<= " + fmt(*n.max_steps) + " steps (lowered vs reference)";
        add("numerics.max_steps", ok, limit, fmt(v, 3) + " steps at the output, " + fmt(kernel, 3) + " op by op",
            involved, n.where);
      }
    }
    if (n.top1_agreement_min) {
      if (!d.contains("accuracy") || d["accuracy"].is_null()) {
        add("numerics.top1_agreement_min", false, ">= " + fmt(*n.top1_agreement_min, 3),
            "no accuracy measured (needs a labelled source: calibration source mnist)", {}, n.where);
      } else {
        const double v = number_of(d["accuracy"]["agreement"]);
        add("numerics.top1_agreement_min", v >= *n.top1_agreement_min,
            ">= " + fmt(*n.top1_agreement_min, 3) + " (float vs quantized top-1, held-out)",
            fmt(v, 4) + " on " + std::to_string(d["accuracy"].value("samples", 0)) + " samples", {}, n.where);
      }
    }
    if (n.layer_sqnr_min_db) {
      std::vector<std::string> low;
      double worst = std::numeric_limits<double>::infinity();
      const auto layers = details.value("layers", json::array());
      for (const auto& l : layers) {
        const double v = number_of(l["sqnr_db"]);
        worst = std::min(worst, v);
        if (v < *n.layer_sqnr_min_db) low.push_back(node_ref(l) + " " + fmt(v) + " dB");
      }
      const std::size_t total = low.size();
      cap(low, total);
      add("numerics.layer_sqnr_min_db", total == 0 && !layers.empty(),
          ">= " + fmt(*n.layer_sqnr_min_db) + " dB on every quantized op",
          layers.empty() ? std::string("no per-layer SQNR measured")
          : total == 0   ? "lowest " + fmt(worst) + " dB"
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

json build_slots(const json& measurements) {
  std::map<std::string, std::size_t> group_of;  // edge label -> index into shared_tensors
  const json groups = details_of(measurements).value("shared_tensors", json::array());
  for (std::size_t i = 0; i < groups.size(); ++i)
    for (const auto& label : groups[i])
      if (label.is_string()) group_of[label.get<std::string>()] = i;
  json out = json::array();
  for (auto s : measurements.value("qparams", json::array())) {
    auto l = s.value("label", std::string());
    // A slot serving several edges is labelled "<first edge> +N".
    if (const auto plus = l.rfind(" +");
        plus != std::string::npos && l.find_first_not_of("0123456789", plus + 2) == std::string::npos)
      l = l.substr(0, plus);
    const auto it = group_of.find(l);
    s["tensors"] = it == group_of.end() ? json(std::vector<std::string>{l}) : groups[it->second];
    out.push_back(s);
  }
  return out;
}

std::string node_ref(const json& node) {
  std::string r =
      "%" + std::to_string(node.value("node", node.value("id", -1))) + " " + node.value("op", std::string());
  const auto module = node.value("module", std::string());
  const auto near = node.value("near", std::string());
  if (!module.empty())
    r += " (" + module + ")";
  else if (!near.empty())
    r += " (next to " + near + ")";
  return r;
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
  const json& d = measurements_of(m);
  int quantized = 0;
  for (const auto& n : details_of(d).value("decisions", json::array()))
    quantized += n.value("status", std::string()) == "quantized";
  const auto outcome = m.value("outcome", std::string("error"));
  const std::string error = m.value("error", std::string());

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
        for (const auto& fr : details_of(d).value("decisions", json::array()))
          if (str(fr, "status") != "quantized" && str(fr, "reason").find(f.reason) != std::string::npos) {
            matching = node_ref(fr) + ": " + str(fr, "reason");
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

  if (outcome != "ran") {
    r.status = Status::Error;
    r.reason = (outcome == "rejected" ? "the pipeline rejected the model: " : "error: ") + error;
    return r;
  }

  Checker checker(d);
  if (expect.structure) checker.structure("structure", "reference", *expect.structure);
  if (expect.lowered) checker.structure("lowered", "lowered", *expect.lowered);
  for (const auto& q : expect.qparams) checker.qparams(q);
  for (std::size_t i = 0; i < expect.shared.size(); ++i) checker.shared(expect.shared[i], i);
  if (expect.bias) checker.bias(*expect.bias);
  if (expect.numerics) checker.numerics(*expect.numerics);
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

CaseResult case_from_json(const json& j) {
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
  return r;
}

}  // namespace qsdk::conformance
