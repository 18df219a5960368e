#include <ATen/ATen.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/optim/adam.h>

#include <cmath>
#include <sstream>

#include "algorithms/ptq_algorithms.h"
#include "graph/graph.h"
#include "prepare/prepare.h"

namespace qsdk {
namespace {

using torch::jit::Node;

// The rectified sigmoid's stretch (the paper's zeta and gamma): h(V) reaches
// exactly 0 and 1 for finite V.
constexpr double kZeta = 1.1, kGamma = -0.1;
// Regularizer annealing (the paper's and AIMET's): beta from 20 to 2, after
// a warm-up of a fifth of the steps without it.
constexpr double kBetaStart = 20, kBetaEnd = 2, kWarmup = 0.2;
constexpr double kLearningRate = 1e-2;
constexpr std::uint64_t kSeed = 0x5eed;

at::Tensor rectified_sigmoid(const at::Tensor& v) { return (at::sigmoid(v) * (kZeta - kGamma) + kGamma).clamp(0, 1); }

// A relu right after the layer is part of what it reconstructs (the
// paper's f(Wx)): errors the relu hides do not count.
bool relu_follows(const Node* n) {
  const auto& uses = n->output(0)->uses();
  return uses.size() == 1 && (uses[0].user->kind() == c10::aten::relu || uses[0].user->kind() == c10::aten::relu_);
}

}  // namespace

std::vector<QuantizedLayer> quantized_layers(const PreparedModel& prepared, std::vector<AlgorithmDecision>* skipped,
                                             const char* algorithm) {
  std::vector<QuantizedLayer> layers;
  const Graph& graph = prepared.graph();
  for (const auto& slot : prepared.slots()) {
    if (slot.kind != SlotKind::Weight || !slot.observer || !slot.observer->has_data()) continue;
    const EdgeKey& e = slot.edges.front();
    Node* n = const_cast<Node*>(e.node);
    if (e.is_output() || e.operand != 1 || !is_weight_layer(n)) continue;  // embeddings
    if (slot.edges.size() > 1) {
      if (skipped) skipped->push_back({algorithm, layer_name(graph, n), "skipped: its weight is shared", {}});
      continue;
    }
    const QParams q = slot.observer->qparams();
    if (q.axis > 0) {
      if (skipped) skipped->push_back({algorithm, layer_name(graph, n), "skipped: weight channel axis is not 0", {}});
      continue;
    }
    layers.push_back({n, graph.id(n), q});
  }
  std::sort(layers.begin(), layers.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return layers;
}

std::vector<AlgorithmDecision> adaround(PreparedModel& prepared, const Graph& float_graph, const Batches& batches,
                                        const AlgorithmOptions& options) {
  std::vector<AlgorithmDecision> decisions;
  const auto layers = quantized_layers(prepared, &decisions, "adaround");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(kSeed);
  for (std::size_t li = 0; li < layers.size(); ++li) {
    const QuantizedLayer& layer = layers[li];
    Node* n = layer.node;
    const at::Tensor w = layer_weight(n).to(at::kFloat);
    const auto bias = layer_bias(n);
    // One layer's inputs at a time: a large model's would not all fit.
    at::Tensor x;
    {
      torch::NoGradGuard no_grad;
      x = probe_values(float_graph, {{layer.id, 0}}, batches).at(0).to(at::kFloat);
    }
    const bool relu = relu_follows(n);
    const auto f = [&](const at::Tensor& y) { return relu ? at::relu(y) : y; };
    at::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = f(apply_layer(n, x, w, bias));
    }
    const auto [scale, zp] = broadcast_qparams(w, layer.qparams, w.scalar_type());
    const double qmin = double(layer.qparams.quant_min), qmax = double(layer.qparams.quant_max);
    const at::Tensor lower = (w / scale).floor();
    const at::Tensor rest = w / scale - lower;
    // Start where h(V) equals the fractional part: the soft weight is W itself.
    const at::Tensor v0 = -at::log((kZeta - kGamma) / (rest - kGamma) - 1);
    at::Tensor v = v0.clone().set_requires_grad(true);
    const auto soft_weight = [&](const at::Tensor& h) { return ((lower + h + zp).clamp(qmin, qmax) - zp) * scale; };
    const auto output_error = [&](const at::Tensor& weight, const at::Tensor& in, const at::Tensor& want) {
      const at::Tensor out = f(apply_layer(n, in, weight, bias));
      return (out - want).pow(2).sum(channel_dim(n, out)).mean();
    };

    torch::optim::Adam adam({v}, torch::optim::AdamOptions(kLearningRate));
    const std::int64_t count = x.size(0);
    const std::int64_t batch = std::min<std::int64_t>(options.adaround_batch, count);
    const int steps = options.adaround_iterations;
    const int warmup = static_cast<int>(kWarmup * steps);
    for (int step = 0; step < steps; ++step) {
      const at::Tensor pick = at::randperm(count, generator, at::kLong).narrow(0, 0, batch);
      const at::Tensor h = rectified_sigmoid(v);
      at::Tensor loss = output_error(soft_weight(h), x.index_select(0, pick), target.index_select(0, pick));
      if (step >= warmup) {
        const double t = double(step - warmup) / double(std::max(1, steps - warmup));
        const double beta = kBetaStart + (kBetaEnd - kBetaStart) * t;
        loss = loss + options.adaround_regularization * (1 - (2 * h - 1).abs().pow(beta)).sum();
      }
      adam.zero_grad();
      loss.backward();
      adam.step();
    }

    torch::NoGradGuard no_grad;
    const at::Tensor up = v.detach().ge(0).to(at::kFloat);  // h(V) >= 0.5
    const at::Tensor codes = (lower + up + zp).clamp(qmin, qmax);
    const at::Tensor nearest_codes = ((w / scale).round() + zp).clamp(qmin, qmax);
    // In double, as convert divides by the scale again: it gets these codes back exactly.
    const at::Tensor learned =
        ((codes.to(at::kDouble) - zp.to(at::kDouble)) * scale.to(at::kDouble)).to(layer_weight(n).scalar_type());
    const at::Tensor nearest = fake_quantize_weight(w, layer.qparams);
    const double error_nearest = output_error(nearest, x, target).item<double>();
    const double error_learned = output_error(learned.to(at::kFloat), x, target).item<double>();
    AlgorithmDecision d{"adaround", layer_name(prepared.graph(), n), "", {}};
    const double flipped = codes.ne(nearest_codes).to(at::kDouble).mean().item<double>();
    // Keep nearest rounding where learning did not beat it on these samples.
    const bool keep = error_learned < error_nearest;
    std::ostringstream text;
    text.precision(3);
    if (keep) {
      set_constant_input(n, 1, learned);
      text << "learned rounding: " << 100 * flipped << "% of weights round the other way; output error "
           << error_nearest << " -> " << error_learned;
    } else {
      text << "kept nearest rounding: learned rounding's output error " << error_learned << " is not below "
           << error_nearest;
    }
    d.decision = text.str();
    d.values["output_error_nearest"] = error_nearest;
    d.values["output_error"] = keep ? error_learned : error_nearest;
    d.values["flipped_fraction"] = keep ? flipped : 0.0;
    d.values["samples"] = double(count);
    d.values["iterations"] = steps;
    decisions.push_back(std::move(d));
  }
  prepared.graph().invalidate_compiled();
  return decisions;
}

}  // namespace qsdk
