#include "convert/convert.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <cmath>
#include <limits>
#include <random>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "graph/bn_folding.h"
#include "graph/graph.h"
#include "prepare/observe_op.h"
#include "prepare/prepare.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Can a LibTorch quantized dtype hold this spec's range exactly?
std::optional<at::ScalarType> native_qdtype(const QParams& q) {
  if (q.dtype == DType::UInt8 && q.quant_min == 0 && q.quant_max == 255) return at::kQUInt8;
  if (q.dtype == DType::Int8 && q.quant_min == -128 && q.quant_max == 127) return at::kQInt8;
  return std::nullopt;
}

// quantize -> dequantize (or fake_quantize) of `v`, inserted after
// `after`; returns the float value consumers should use.
Value* insert_activation_qdq(torch::jit::Graph& g, Value* v, const QParams& q, Node* after) {
  torch::jit::WithInsertPoint guard(after->next());
  const double scale = q.scale.at(0);
  const std::int64_t zp = q.zero_point.at(0);
  if (auto dtype = native_qdtype(q)) {
    Value* quantized = g.insert(c10::aten::quantize_per_tensor, {v, scale, zp, *dtype});
    return g.insert(c10::aten::dequantize, {quantized});
  }
  return g.insert(c10::aten::fake_quantize_per_tensor_affine, {v, scale, zp, q.quant_min, q.quant_max});
}

// The weight as a quantized constant (values clamped to the spec's range),
// or fake-quantized float where the range is narrower than qint8's.
at::Tensor quantize_weight(const at::Tensor& w, const QParams& q, bool& is_quantized) {
  const bool per_channel = q.axis >= 0;
  at::Tensor scales = at::tensor(q.scale, at::kDouble);
  at::Tensor zps = at::tensor(q.zero_point, at::kLong);
  at::Tensor ints;
  if (per_channel) {
    std::vector<std::int64_t> shape(static_cast<std::size_t>(w.dim()), 1);
    shape[static_cast<std::size_t>(q.axis)] = -1;
    ints = (w.to(at::kDouble) / scales.reshape(shape)).round() + zps.reshape(shape).to(at::kDouble);
  } else {
    ints = (w.to(at::kDouble) / q.scale[0]).round() + double(q.zero_point[0]);
  }
  ints = ints.clamp(double(q.quant_min), double(q.quant_max));
  const bool int8_storage = q.dtype == DType::Int8 || q.dtype == DType::UInt8;
  is_quantized = int8_storage;
  if (int8_storage) {
    const auto storage = q.dtype == DType::Int8 ? at::kChar : at::kByte;
    const auto qdtype = q.dtype == DType::Int8 ? at::kQInt8 : at::kQUInt8;
    if (per_channel) return at::_make_per_channel_quantized_tensor(ints.to(storage), scales, zps, q.axis).to(qdtype);
    return at::_make_per_tensor_quantized_tensor(ints.to(storage), q.scale[0], q.zero_point[0]);
  }
  // Wider storage (int16/int32 weights): keep the dequantized values in float.
  if (per_channel) {
    std::vector<std::int64_t> shape(static_cast<std::size_t>(w.dim()), 1);
    shape[static_cast<std::size_t>(q.axis)] = -1;
    return ((ints - zps.reshape(shape).to(at::kDouble)) * scales.reshape(shape)).to(w.scalar_type());
  }
  return ((ints - double(q.zero_point[0])) * q.scale[0]).to(w.scalar_type());
}

}  // namespace

double sqnr_db(const at::Tensor& reference, const at::Tensor& quantized) {
  const double signal = reference.to(at::kDouble).norm().item<double>();
  const double noise = (reference.to(at::kDouble) - quantized.to(at::kDouble)).norm().item<double>();
  if (noise == 0) return std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(signal / noise);
}

double noise_margin_db(const at::Tensor& reference, const at::Tensor& candidate, const at::Tensor& float_out) {
  const double noise = (reference.to(at::kDouble) - float_out.to(at::kDouble)).norm().item<double>();
  const double difference = (candidate.to(at::kDouble) - reference.to(at::kDouble)).norm().item<double>();
  if (difference == 0) return std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(noise / difference);
}

std::vector<std::vector<at::Tensor>> batch_slices(const std::vector<at::Tensor>& inputs, std::int64_t max_samples) {
  if (inputs.empty() || inputs[0].dim() == 0) return {inputs};
  const std::int64_t n = inputs[0].size(0);
  for (const auto& t : inputs)
    if (t.dim() == 0 || t.size(0) != n) return {inputs};
  std::vector<std::vector<at::Tensor>> slices;
  for (std::int64_t start = 0; start < n; start += max_samples) {
    std::vector<at::Tensor> slice;
    for (const auto& t : inputs) slice.push_back(t.narrow(0, start, std::min(max_samples, n - start)));
    slices.push_back(std::move(slice));
  }
  return slices;
}

ConversionSummary convert_to_reference(PreparedModel& prepared) {
  ConversionSummary summary;
  Graph& graph = prepared.graph();
  auto& g = graph.ir();
  const auto& slots = prepared.slots();

  // Quantizing nodes by slot, numbered once the graph is renumbered.
  std::vector<std::pair<Node*, int>> quantizing_nodes;
  auto qparams_of = [&](int slot_id) {
    const auto& s = slots.at(static_cast<std::size_t>(slot_id));
    if (!s.observer || !s.observer->has_data())
      throw InputError("slot " + std::to_string(slot_id) + " (" + s.label + ")",
                       "no statistics: calibrate (or --load-stats) before converting");
    return s.observer->qparams();
  };

  // Weight and bias edges refer to conv/linear nodes, which folding keeps
  // (and embedding tables, operand 0).
  struct WeightEdge {
    Node* node;
    int slot;
    std::size_t operand;
  };
  std::vector<WeightEdge> weights;
  for (const auto& s : slots)
    if (s.kind == SlotKind::Weight)
      for (const auto& e : s.edges)
        if (!e.is_output()) weights.push_back({const_cast<Node*>(e.node), s.id, std::size_t(e.operand)});

  // 1. Fold every conv/linear -> batch_norm pair (prepare observed the folded weights).
  std::vector<Node*> candidates;
  for (Node* n : g.nodes())
    if (foldable_batch_norm(n)) candidates.push_back(n);
  for (Node* n : candidates) summary.folded_batch_norms += fold_batch_norm(n) ? 1 : 0;
  // BatchNorms left: quantized on their own where a backend's batch_norm rule
  // took them (DenseNet's pre-activation BN -> ReLU), else float. One note
  // per kind, naming the first few (DenseNet has 61).
  std::vector<std::string> alone[2];  // [left in float, quantized on its own]
  for (Node* n : g.nodes())
    if (n->kind() == c10::aten::batch_norm) {
      const std::string& path = graph.module_path(n);
      const bool quantized = n->input(0)->node()->kind() == c10::aten::dequantize;
      alone[quantized].push_back("%" + std::to_string(graph.id(n)) + (path.empty() ? "" : " " + path));
    }
  for (const bool quantized : {false, true}) {
    const auto& list = alone[quantized];
    if (list.empty()) continue;
    std::string note = "aten::batch_norm x" + std::to_string(list.size()) +
                       (quantized ? " quantized on its own" : " left in float") +
                       " (no conv/linear before it whose output only it uses): ";
    for (std::size_t i = 0; i < list.size() && i < 3; ++i) note += (i ? ", " : "") + list[i];
    if (list.size() > 3) note += ", and " + std::to_string(list.size() - 3) + " more";
    summary.notes.push_back(note);
  }

  // 2. Weights: quantized constant -> dequantize.
  for (const auto& w : weights) {
    auto current = torch::jit::toIValue(w.node->input(w.operand));
    if (!current || !current->isTensor()) continue;
    bool is_quantized = false;
    const at::Tensor stored = quantize_weight(current->toTensor(), qparams_of(w.slot), is_quantized);
    torch::jit::WithInsertPoint guard(w.node);
    Value* c = g.insertConstant(stored);
    if (is_quantized) {
      Value* dq = g.insert(c10::aten::dequantize, {c});
      quantizing_nodes.emplace_back(dq->node(), w.slot);
      w.node->replaceInput(w.operand, dq);
    } else {
      w.node->replaceInput(w.operand, c);
    }
    ++summary.quantized_weights;
  }

  // 3. Derived (bias): round to int32 steps of input scale x weight scale.
  for (const auto& d : prepared.derived()) {
    Node* node = const_cast<Node*>(d.edge.node);
    auto current = torch::jit::toIValue(node->input(static_cast<std::size_t>(d.edge.operand)));
    if (!current || !current->isTensor()) continue;
    at::Tensor scale = at::ones({1}, at::kDouble);
    for (int src : d.source_slots) scale = scale * at::tensor(qparams_of(src).scale, at::kDouble);
    const at::Tensor b = current->toTensor().to(at::kDouble);
    const at::Tensor q = (b / scale).round().clamp(double(d.spec.quant_min), double(d.spec.quant_max));
    torch::jit::WithInsertPoint guard(node);
    node->replaceInput(static_cast<std::size_t>(d.edge.operand),
                       g.insertConstant((q * scale).to(current->toTensor().scalar_type())));
    ++summary.quantized_biases;
  }

  // 4. Activations: each observe node becomes quantize -> dequantize.
  std::vector<Node*> observes;
  for (Node* n : g.nodes())
    if (n->kind() == observe_symbol()) observes.push_back(n);
  for (Node* obs : observes) {
    const int slot = static_cast<int>(torch::jit::toIValue(obs->input(1))->toInt());
    Value* in = obs->input(0);
    Value* replacement = insert_activation_qdq(g, in, qparams_of(slot), obs);
    Node* quantizing = replacement->node()->kind() == c10::aten::dequantize ? replacement->node()->input(0)->node()
                                                                            : replacement->node();
    quantizing_nodes.emplace_back(quantizing, slot);
    obs->output()->replaceAllUsesWith(replacement);
    obs->destroy();
    ++summary.quantized_activations;
  }

  // 5. Dynamic inputs: qparams computed from each batch at run time.
  for (const auto& s : slots) {
    if (s.kind != SlotKind::Dynamic) continue;
    for (const auto& e : s.edges) {
      if (e.is_output()) continue;
      Node* consumer = const_cast<Node*>(e.node);
      Value* v = consumer->input(static_cast<std::size_t>(e.operand));
      torch::jit::WithInsertPoint guard(consumer);
      const at::ScalarType dtype = s.spec.dtype == DType::Int8 ? at::kQInt8 : at::kQUInt8;
      Value* q =
          g.insert(c10::Symbol::fromQualString("aten::quantize_per_tensor_dynamic"), {v, dtype, s.spec.reduce_range});
      consumer->replaceInput(static_cast<std::size_t>(e.operand), g.insert(c10::aten::dequantize, {q}));
      ++summary.dynamic_inputs;
    }
  }
  graph.renumber();
  for (const auto& [node, slot_id] : quantizing_nodes) {
    const auto& s = slots.at(static_cast<std::size_t>(slot_id));
    const QParams q = qparams_of(slot_id);  // its range is the effective one (after reduce_range)
    summary.quantized_tensors.push_back({graph.id(node), slot_id, to_string(s.kind), to_string(q.dtype), q.quant_min,
                                         q.quant_max, s.spec.scheme == Scheme::Symmetric, s.label});
  }
  return summary;
}

namespace {

// The graph as a TorchScript module with one method, forward.
torch::jit::Module as_module(const Graph& graph) {
  torch::jit::Module module("qsdk_quantized_model");
  auto g = graph.ir().copy();
  // A method's graph takes `self` first.
  g->insertInput(0, "self")->setType(module.type());
  auto cu = module._ivalue()->compilation_unit();
  auto* fn = cu->create_function(c10::QualifiedName(*module.type()->name(), "forward"), g);
  module.type()->addMethod(fn);
  return module;
}

// Saved through a stream, so the bytes are the same wherever they go (a
// file-name save would put the file's name into the archive) and the write
// is checked like every other output (common/atomic_file.h).
void save_module(const torch::jit::Module& module, std::ostream& out) {
  try {
    module.save(out);
  } catch (const c10::Error& e) {
    throw InputError("", std::string("cannot serialize model: ") + e.what_without_backtrace());
  }
}

}  // namespace

void export_torchscript(const Graph& graph, const std::filesystem::path& path) {
  const torch::jit::Module module = as_module(graph);
  write_file_atomically(path, [&](std::ostream& out) { save_module(module, out); });
}

std::uintmax_t exported_file_size(const Graph& graph) {
  std::ostringstream out(std::ios::binary);
  save_module(as_module(graph), out);
  return out.str().size();
}

}  // namespace qsdk
