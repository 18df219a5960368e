#include "convert/numeric_debugger.h"

#include <torch/csrc/jit/ir/ir.h>

#include <cmath>
#include <limits>
#include <unordered_map>

#include "convert/convert.h"
#include "graph/bn_folding.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

bool is_quantize(const Node* n) {
  return n->kind() == c10::aten::quantize_per_tensor || n->kind() == c10::aten::quantize_per_channel ||
         n->kind() == c10::aten::fake_quantize_per_tensor_affine ||
         n->kind() == c10::aten::fake_quantize_per_channel_affine;
}

// Activation values of `reference` that are quantized, each with the value
// its consumers read (dequantize's output, or fake-quant's), by IR name.
std::vector<std::pair<std::string, const Value*>> quantized_activations(const Graph& reference) {
  std::vector<std::pair<std::string, const Value*>> out;
  for (const Node* q : reference.ir().nodes()) {
    if (!is_quantize(q)) continue;
    const Value* source = q->input(0);
    if (source->node()->kind() == c10::prim::Constant || !source->hasDebugName()) continue;  // weights
    const Value* seen = q->output();
    if (q->kind() == c10::aten::quantize_per_tensor || q->kind() == c10::aten::quantize_per_channel) {
      const Value* dq = nullptr;
      for (const auto& use : q->output()->uses())
        if (use.user->kind() == c10::aten::dequantize) dq = use.user->output();
      if (!dq) continue;
      seen = dq;
    }
    out.emplace_back(source->debugName(), seen);
  }
  return out;
}

// Runs a copy of `graph` with `values` (of `graph`) as extra outputs, and
// returns those.
std::vector<at::Tensor> run_exposing(const Graph& graph, const std::vector<const Value*>& values,
                                     const std::vector<at::Tensor>& inputs) {
  auto copy = graph.ir().copy();
  // copy() keeps node and output order: find each value by its position.
  std::unordered_map<const Value*, Value*> map;
  for (std::size_t i = 0; i < graph.ir().inputs().size(); ++i) map[graph.ir().inputs()[i]] = copy->inputs()[i];
  auto theirs = copy->nodes().begin();
  for (const Node* n : graph.ir().nodes()) {
    for (std::size_t i = 0; i < n->outputs().size(); ++i) map[n->outputs()[i]] = (*theirs)->outputs()[i];
    ++theirs;
  }
  // In front of the model's own outputs, so their flattened count does not matter.
  for (std::size_t i = 0; i < values.size(); ++i) copy->block()->insertOutput(i, map.at(values[i]));
  auto all = Graph(copy, graph.source()).run(inputs);
  all.resize(values.size());
  return all;
}

}  // namespace

void name_values(Graph& graph) {
  for (Node* n : graph.nodes())
    for (std::size_t i = 0; i < n->outputs().size(); ++i)
      n->outputs()[i]->setDebugName("n" + std::to_string(graph.id(n)) + "_" + std::to_string(i));
}

std::vector<LayerSqnr> per_layer_sqnr(const Graph& float_graph, const Graph& reference,
                                      const std::vector<at::Tensor>& inputs) {
  const auto activations = quantized_activations(reference);
  // Float side with BatchNorm folded, so a conv's output means the same in both.
  auto folded = float_graph.clone();
  std::unordered_map<std::string, const Node*> producer_in_float;
  for (const Node* n : float_graph.nodes())
    for (const Value* o : n->outputs())
      if (o->hasDebugName()) producer_in_float[o->debugName()] = n;
  std::vector<Node*> foldable;
  for (Node* n : folded->nodes())
    if (foldable_batch_norm(n)) foldable.push_back(n);
  for (Node* n : foldable) fold_batch_norm(n);
  folded->renumber();
  std::unordered_map<std::string, const Value*> in_folded;
  for (const Node* n : folded->ir().nodes())
    for (const Value* o : n->outputs())
      if (o->hasDebugName()) in_folded[o->debugName()] = o;

  std::vector<const Value*> float_values, quant_values;
  std::vector<LayerSqnr> layers;
  for (const auto& [name, seen] : activations) {
    auto f = in_folded.find(name);
    auto p = producer_in_float.find(name);
    if (f == in_folded.end() || p == producer_in_float.end()) continue;
    float_values.push_back(f->second);
    quant_values.push_back(seen);
    layers.push_back(
        {float_graph.id(p->second), float_graph.module_path(p->second), p->second->kind().toQualString(), 0.0});
  }
  if (layers.empty()) return layers;
  // Slice by slice, summing signal and noise energy per layer: the same
  // SQNR as on the whole batch, with one slice's activations in memory.
  std::vector<double> signal(layers.size()), noise(layers.size());
  for (const auto& slice : batch_slices(inputs)) {
    const auto float_out = run_exposing(*folded, float_values, slice);
    const auto quant_out = run_exposing(reference, quant_values, slice);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const auto f = float_out.at(i).to(at::kDouble), q = quant_out.at(i).to(at::kDouble);
      signal[i] += f.square().sum().item<double>();
      noise[i] += f.sub(q).square().sum().item<double>();
    }
  }
  for (std::size_t i = 0; i < layers.size(); ++i)
    layers[i].sqnr_db =
        noise[i] == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal[i] / noise[i]);
  return layers;
}

}  // namespace qsdk
