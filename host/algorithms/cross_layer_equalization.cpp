#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/ir.h>

#include <cmath>

#include "algorithms/ptq_algorithms.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

constexpr int kMaxSweeps = 20;
constexpr double kSettled = 1e-4;  // largest |log s| of a sweep below which the scales have settled

// Ops through which a positive per-channel scale passes unchanged:
// f(s * x) = s * f(x) for s > 0, channel by channel.
bool commutes_with_channel_scale(const Node* n) {
  static const std::vector<c10::Symbol> kinds{
      c10::aten::relu,       c10::aten::relu_,      c10::aten::leaky_relu,          c10::aten::max_pool2d,
      c10::aten::max_pool1d, c10::aten::avg_pool2d, c10::aten::adaptive_avg_pool2d, c10::aten::dropout};
  return std::find(kinds.begin(), kinds.end(), n->kind()) != kinds.end();
}

struct Pair {
  Node* a = nullptr;
  Node* b = nullptr;
  std::int64_t block = 1;  // B input columns per A channel (a flatten between them)
  std::vector<std::string> through;
};

// The one consumer of `v`, or null when it has several (or is a graph output).
Node* sole_user(const Value* v) { return v->uses().size() == 1 ? v->uses()[0].user : nullptr; }

std::optional<Pair> pair_from(Node* a, std::string* why) {
  if (layer_groups(a) != 1) {
    *why = "grouped convolution";
    return std::nullopt;
  }
  Pair p;
  p.a = a;
  const Value* v = a->output(0);
  bool flattened = false;
  while (Node* u = sole_user(v)) {
    if (u->input(0) != v) break;
    if (is_weight_layer(u)) {
      const at::Tensor wa = layer_weight(a), wb = layer_weight(u);
      const std::int64_t channels = wa.size(0), inputs = wb.size(1);
      if (layer_groups(u) != 1) {
        *why = "next layer is a grouped convolution";
        return std::nullopt;
      }
      if (flattened ? inputs % channels != 0 : inputs != channels) {
        *why = "channel count does not match the next layer's inputs";
        return std::nullopt;
      }
      if (flattened && is_conv(u)) return std::nullopt;
      p.b = u;
      p.block = inputs / channels;
      return p;
    }
    if (u->kind() == c10::aten::flatten && is_conv(a) && !flattened) {
      const auto start = torch::jit::toIValue(u->input(1));
      if (!start || !start->isInt() || start->toInt() != 1) break;
      flattened = true;
    } else if (!commutes_with_channel_scale(u)) {
      break;
    }
    p.through.push_back(u->kind().toUnqualString());
    v = u->output(0);
  }
  *why = "";
  return std::nullopt;
}

// Largest |weight| per output channel of A, and per input channel of B.
at::Tensor out_channel_range(const at::Tensor& w) { return w.abs().reshape({w.size(0), -1}).amax(1).to(at::kDouble); }
at::Tensor in_channel_range(const at::Tensor& w, std::int64_t channels) {
  return w.abs().transpose(0, 1).reshape({channels, -1}).amax(1).to(at::kDouble);
}

at::Tensor shaped(const at::Tensor& v, std::int64_t dims, std::int64_t axis) {
  std::vector<std::int64_t> shape(static_cast<std::size_t>(dims), 1);
  shape[static_cast<std::size_t>(axis)] = -1;
  return v.reshape(shape);
}

double spread(const at::Tensor& range) {
  const double lo = range.min().item<double>();
  return lo > 0 ? range.max().item<double>() / lo : INFINITY;
}

// One equalization step of a pair; returns the largest |log s|.
double equalize(const Pair& p) {
  const at::Tensor wa = layer_weight(p.a), wb = layer_weight(p.b);
  const std::int64_t channels = wa.size(0);
  // B's columns as [out, channel, block, ...]: a flatten puts channel i's
  // `block` values next to each other.
  const at::Tensor wb_channels = wb.reshape({wb.size(0), channels, -1});
  const at::Tensor ra = out_channel_range(wa), rb = in_channel_range(wb_channels, channels);
  at::Tensor s = (ra / rb).sqrt();
  s = at::where(ra.gt(0).logical_and(rb.gt(0)), s, at::ones_like(s));
  set_constant_input(p.a, 1, (wa.to(at::kDouble) / shaped(s, wa.dim(), 0)).to(wa.scalar_type()));
  if (const auto bias = layer_bias(p.a))
    set_constant_input(p.a, 2, (bias->to(at::kDouble) / s).to(bias->scalar_type()));
  const at::Tensor scaled = wb_channels.to(at::kDouble) * shaped(s, 3, 1);
  set_constant_input(p.b, 1, scaled.reshape(wb.sizes()).to(wb.scalar_type()));
  return s.log().abs().max().item<double>();
}

}  // namespace

std::vector<AlgorithmDecision> equalize_cross_layer(Graph& graph) {
  std::vector<AlgorithmDecision> decisions;
  std::vector<Pair> pairs;
  for (Node* n : graph.nodes()) {
    if (!is_weight_layer(n)) continue;
    std::string why;
    if (auto p = pair_from(n, &why))
      pairs.push_back(*p);
    else if (!why.empty())
      decisions.push_back({"cle", layer_name(graph, n), "skipped: " + why, {}});
  }
  std::vector<std::pair<double, double>> spreads;  // A's channel-range spread, B's, before
  for (const auto& p : pairs) {
    const at::Tensor wa = layer_weight(p.a), wb = layer_weight(p.b);
    spreads.push_back({spread(out_channel_range(wa)),
                       spread(in_channel_range(wb.reshape({wb.size(0), wa.size(0), -1}), wa.size(0)))});
  }
  int sweeps = 0;
  while (sweeps < kMaxSweeps && !pairs.empty()) {
    double largest = 0;
    for (const auto& p : pairs) largest = std::max(largest, equalize(p));
    ++sweeps;
    if (largest < kSettled) break;
  }
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    const at::Tensor wa = layer_weight(p.a);
    std::string via;
    for (const auto& t : p.through) via += (via.empty() ? " through " : ", ") + t;
    AlgorithmDecision d{"cle",
                        layer_name(graph, p.a) + " -> " + layer_name(graph, p.b),
                        "equalized " + std::to_string(wa.size(0)) + " channels" + via,
                        {}};
    d.values["channels"] = double(wa.size(0));
    d.values["range_spread_before"] = spreads[i].first;
    d.values["range_spread_after"] = spread(out_channel_range(wa));
    d.values["sweeps"] = sweeps;
    decisions.push_back(std::move(d));
  }
  graph.invalidate_compiled();
  return decisions;
}

}  // namespace qsdk
