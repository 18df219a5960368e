#include "engine/engine_check.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "convert/convert.h"
#include "convert/lowering.h"
#include "engine/integer_reference.h"
#include "export/onnx_engine_model.h"
#include "export/onnx_export.h"
#include "export/onnx_runtime.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using json = nlohmann::json;

EngineTensor to_engine(const at::Tensor& t, const std::string& name) {
  at::Tensor c = t.contiguous();
  ElementType type = ElementType::Float32;
  switch (c.scalar_type()) {
    case at::kByte: type = ElementType::UInt8; break;
    case at::kChar: type = ElementType::Int8; break;
    case at::kInt: type = ElementType::Int32; break;
    case at::kLong: type = ElementType::Int64; break;
    default: c = c.to(at::kFloat);
  }
  EngineTensor e{name, type, c.sizes().vec(), {}};
  const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
  e.data.assign(bytes, bytes + c.nbytes());
  return e;
}

at::Tensor to_aten(const EngineTensor& t) { return at::tensor(t.values<double>(), at::kDouble).reshape(t.shape); }

// The ONNX nodes that compute `target` from the nearest tensors in `stops`
// (the op's quantized inputs), graph inputs and initializers: the op's
// subgraph, in file order.
std::vector<std::size_t> subgraph(const EngineModel& m, const std::string& target, const std::set<std::string>& stops) {
  std::map<std::string, std::size_t> producer;
  for (std::size_t i = 0; i < m.nodes.size(); ++i)
    for (const auto& o : m.nodes[i].outputs) producer[o] = i;
  std::set<std::size_t> picked;
  std::vector<std::string> todo{target};
  while (!todo.empty() && picked.size() < 64) {
    const std::string t = todo.back();
    todo.pop_back();
    const auto it = producer.find(t);
    if (it == producer.end() || (t != target && stops.count(t)) || !picked.insert(it->second).second) continue;
    for (const auto& in : m.nodes[it->second].inputs)
      if (!in.empty() && !m.initializers.count(in)) todo.push_back(in);
  }
  return {picked.begin(), picked.end()};
}

json integers(const at::Tensor& values) {
  const at::Tensor v = values.to(at::kLong).contiguous().reshape({-1});
  return std::vector<std::int64_t>(v.data_ptr<std::int64_t>(), v.data_ptr<std::int64_t>() + v.numel());
}

json tensor_json(const EngineTensor& t) {
  json j{{"name", t.name}, {"dtype", to_string(t.type)}, {"shape", t.shape}};
  if (t.type == ElementType::Float32)
    j["values"] = t.values<double>();
  else
    j["values"] = t.values<std::int64_t>();
  return j;
}

// The replay of the first divergent op (CONTRIBUTING.md, "Checking your engine").
// `read` holds the values the op read (the engine's, where it returned them).
std::string replay_of(const EngineModel& m, const OnnxQuantizedTensor& target, const IntegerTensor& reference,
                      const at::Tensor& engine_values, const std::map<int, at::Tensor>& read,
                      const std::map<int, const OnnxQuantizedTensor*>& by_node, const EngineTensorAgreement& a,
                      const Arithmetic& arithmetic) {
  std::set<std::string> stops;
  json inputs = json::array();
  for (int id : reference.sources) {
    const auto t = by_node.find(id);
    const auto r = read.find(id);
    if (t == by_node.end() || r == read.end()) continue;
    stops.insert(t->second->quantized_tensor);
    inputs.push_back({{"name", t->second->quantized_tensor},
                      {"dtype", t->second->dtype},
                      {"shape", r->second.sizes().vec()},
                      {"scale", t->second->scale},
                      {"zero_point", t->second->zero_point},
                      {"values", integers(r->second)}});
  }
  json nodes = json::array(), initializers = json::array();
  std::set<std::string> used;
  for (std::size_t i : subgraph(m, target.quantized_tensor, stops)) {
    const OnnxNode& n = m.nodes[i];
    json attrs = json::object();
    for (const auto& at : n.attributes) {
      switch (at.type) {
        case QSDK_ATTRIBUTE_INT: attrs[at.name] = at.i; break;
        case QSDK_ATTRIBUTE_FLOAT: attrs[at.name] = at.f; break;
        case QSDK_ATTRIBUTE_STRING: attrs[at.name] = at.s; break;
        case QSDK_ATTRIBUTE_INTS: attrs[at.name] = at.ints; break;
        default: attrs[at.name] = at.floats;
      }
    }
    nodes.push_back({{"name", n.name},
                     {"op_type", n.op_type},
                     {"inputs", n.inputs},
                     {"outputs", n.outputs},
                     {"attributes", attrs}});
    for (const auto& in : n.inputs)
      if (auto it = m.initializers.find(in); it != m.initializers.end() && used.insert(in).second)
        initializers.push_back(tensor_json(it->second));
  }
  json mismatches = json::array();
  const at::Tensor r = reference.values.reshape({-1}), e = engine_values.to(at::kLong).reshape({-1});
  const at::Tensor where = (r != e).nonzero().reshape({-1});
  for (std::int64_t k = 0; k < std::min<std::int64_t>(where.numel(), 20); ++k) {
    const std::int64_t i = where[k].item<std::int64_t>();
    mismatches.push_back(
        {{"index", i}, {"reference", r[i].item<std::int64_t>()}, {"engine", e[i].item<std::int64_t>()}});
  }
  const json replay{{"schema", "qsdk-engine-replay"},
                    {"version", 1},
                    {"tensor", target.quantized_tensor},
                    {"op", a.op},
                    {"op_type", a.op_type},
                    {"max_lsb", a.max_lsb},
                    {"mismatched", a.mismatched},
                    {"elements", a.elements},
                    {"arithmetic", arithmetic_text(arithmetic)},
                    {"reference_computes", reference.how},
                    {"inputs", inputs},
                    {"nodes", nodes},
                    {"initializers", initializers},
                    {"output",
                     {{"name", target.quantized_tensor},
                      {"dtype", target.dtype},
                      {"shape", reference.values.sizes().vec()},
                      {"scale", target.scale},
                      {"zero_point", target.zero_point}}},
                    {"reference", integers(reference.values)},
                    {"engine", integers(engine_values)},
                    {"first_mismatches", mismatches}};
  return replay.dump();
}

// Engine vs reference on one tensor of dequantized (`real`) and integer values.
void compare(EngineTensorAgreement& a, const at::Tensor& reference, const at::Tensor& engine, double scale,
             bool integers_given) {
  a.elements = static_cast<std::size_t>(reference.numel());
  const at::Tensor ref = reference.to(at::kDouble), got = engine.to(at::kDouble).reshape(reference.sizes());
  const at::Tensor diff = (ref - got).abs();
  a.max_abs = a.elements ? diff.max().item<double>() : 0;
  const double peak = a.elements ? ref.abs().max().item<double>() : 0;
  a.max_rel = peak > 0 ? a.max_abs / peak : a.max_abs;
  a.sqnr_db = sqnr_db(ref, got);
  if (integers_given) {
    a.mismatched = static_cast<std::size_t>(diff.gt(0).sum().item<std::int64_t>());
    a.max_lsb = static_cast<std::int64_t>(a.max_abs);
  } else if (scale > 0) {
    const at::Tensor steps = at::round(diff / scale);
    a.mismatched = static_cast<std::size_t>(steps.gt(0).sum().item<std::int64_t>());
    a.max_lsb = a.elements ? steps.max().item<std::int64_t>() : 0;
  } else {
    a.mismatched = static_cast<std::size_t>(diff.gt(0).sum().item<std::int64_t>());
    a.max_lsb = -1;
  }
}

at::Tensor dequantized(const at::Tensor& ints, const OnnxQuantizedTensor& t) {
  return (ints.to(at::kDouble) - double(t.zero_point.at(0))) * double(static_cast<float>(t.scale.at(0)));
}

}  // namespace

std::string arithmetic_text(const Arithmetic& a) {
  return std::string("rounding ") + to_string(a.rounding) + ", multiplier " + to_string(a.multiplier) +
         ", accumulator " + std::to_string(a.accumulator_bits) + "-bit " + to_string(a.accumulator_overflow) +
         ", pooling " + to_string(a.pooling_rounding) + ", element-wise " + to_string(a.elementwise_rounding);
}

EngineAgreement check_engine(const std::string& name, const Engine& engine, const Graph& reference,
                             const OnnxModel& onnx, const Arithmetic& arithmetic,
                             const std::vector<at::Tensor>& inputs) {
  EngineAgreement out;
  out.engine = name;
  out.arithmetic = arithmetic_text(arithmetic);
  out.samples = inputs.empty() || inputs[0].dim() == 0 ? 0 : static_cast<std::size_t>(inputs[0].size(0));

  const ScratchDir scratch;
  const auto file = scratch.path() / "model.onnx";
  std::ofstream(file, std::ios::binary) << onnx.bytes;
  const EngineModel model = engine_model_from_onnx(onnx.bytes, file.string(), "model.onnx");
  std::vector<EngineTensor> engine_inputs;
  for (std::size_t i = 0; i < inputs.size() && i < model.inputs.size(); ++i)
    engine_inputs.push_back(to_engine(inputs[i], model.inputs[i]));

  EngineResult result;
  try {
    result = engine(model, engine_inputs);
  } catch (const std::exception& e) {
    const std::string message = e.what();
    if (message.rfind(kEngineUnsupportedPrefix, 0) == 0) {
      const auto start = message.find_first_not_of(' ', std::string(kEngineUnsupportedPrefix).size());
      out.unsupported = start == std::string::npos ? message : message.substr(start);
    } else {
      out.error = message.empty() ? "the engine failed without a message" : message;
    }
    return out;
  }
  if (result.outputs.size() < model.outputs.size()) {
    out.error = "the engine returned " + std::to_string(result.outputs.size()) + " outputs for a model with " +
                std::to_string(model.outputs.size());
    return out;
  }

  std::map<std::string, const EngineTensor*> returned;
  for (const auto& t : result.intermediates) returned[t.name] = &t;
  std::map<int, const OnnxQuantizedTensor*> by_node;
  for (const auto& t : onnx.quantized)
    if (t.reference_node >= 0 && t.tensor != t.quantized_tensor) by_node[t.reference_node] = &t;
  std::map<int, const OnnxOpRecord*> ops;
  for (const auto& op : onnx.ops) ops.emplace(op.reference_node, &op);

  // The reference twice: from the model's input on its own (the chain), and
  // op by op from the engine's values wherever it returned them (so each
  // tensor's difference is that op's own, not what came before).
  std::map<int, at::Tensor> engine_values;
  for (const auto& [id, t] : by_node)
    if (const auto it = returned.find(t->quantized_tensor); it != returned.end())
      engine_values[id] = to_aten(*it->second);
  const IntegerReference chain = run_integer_reference(reference, arithmetic, inputs);
  const IntegerReference ref =
      engine_values.empty() ? chain : run_integer_reference(reference, arithmetic, inputs, engine_values);
  std::map<int, at::Tensor> read;  // what each op read: the engine's values, else the reference's
  for (const auto& [id, r] : ref.quantized) read[id] = engine_values.count(id) ? engine_values[id] : r.values;

  for (const auto& [id, t] : by_node) {  // graph order
    const auto r = ref.quantized.find(id);
    if (r == ref.quantized.end()) continue;
    EngineTensorAgreement a;
    a.tensor = t->quantized_tensor;
    a.source = t->tensor;
    a.reference = r->second.how;
    if (const auto op = ops.find(r->second.producer); op != ops.end()) {
      a.op = op->second->node;
      a.op_type = op->second->op_type;
    }
    const auto got = returned.find(t->quantized_tensor);
    if (got == returned.end()) {
      a.returned = false;
      out.tensors.push_back(a);
      continue;
    }
    const at::Tensor& got_values = engine_values.at(id);
    if (got_values.numel() != r->second.values.numel()) {
      out.error = "the engine's tensor '" + a.tensor + "' has " + std::to_string(got_values.numel()) +
                  " elements; the reference's has " + std::to_string(r->second.values.numel());
      return out;
    }
    const at::Tensor engine_ints = got_values.reshape(r->second.values.sizes());
    compare(a, r->second.values, engine_ints, 1, true);
    a.sqnr_db = sqnr_db(dequantized(r->second.values, *t), dequantized(engine_ints, *t));
    a.max_abs = static_cast<double>(a.max_lsb) * double(static_cast<float>(t->scale.at(0)));
    if (const auto c = chain.quantized.find(id); c != chain.quantized.end())
      a.chain_max_lsb = (c->second.values - engine_ints).abs().max().item<std::int64_t>();
    if (a.max_lsb > 0 && out.first_divergent.empty()) {
      out.first_divergent = a.tensor;
      out.replay = replay_of(model, *t, r->second, engine_ints, read, by_node, a, arithmetic);
    }
    out.tensors.push_back(a);
  }

  EngineTensorAgreement& o = out.output;
  o.tensor = o.source = model.outputs.at(0);
  o.reference = "the graph's output";
  // End to end: the engine's output against the reference's own chain, as
  // the float32 the file's output is (a dequantized output then compares
  // exactly; float ops computed in float32 show their last bits).
  compare(o, chain.outputs.at(0).to(at::kFloat), to_aten(result.outputs.at(0)), std::max(0.0, output_scale(reference)),
          false);
  o.chain_max_lsb = o.max_lsb;
  return out;
}

Engine onnx_runtime_engine(bool optimized) {
  return [optimized](const EngineModel& model, const std::vector<EngineTensor>& inputs) {
    std::string why;
    if (!find_onnx_runtime(&why)) throw std::runtime_error(std::string(kEngineUnsupportedPrefix) + " " + why);
    std::vector<std::string> fetch = model.outputs, intermediates;
    // The integers: QuantizeLinear outputs, and the Clip after one (narrow ranges).
    std::set<std::string> quantized;
    if (!optimized)
      for (const auto& n : model.nodes)
        if (n.op_type == "QuantizeLinear" || (n.op_type == "Clip" && quantized.count(n.inputs.at(0)))) {
          intermediates.push_back(n.outputs.at(0));
          quantized.insert(n.outputs.at(0));
        }
    fetch.insert(fetch.end(), intermediates.begin(), intermediates.end());
    // The host's file as it is, unless intermediates must become outputs.
    const ScratchDir scratch;
    std::filesystem::path file = model.onnx_path;
    if (!intermediates.empty() || file.empty()) {
      file = scratch.path() / "model.onnx";
      std::ofstream(file, std::ios::binary)
          << (intermediates.empty() ? model.onnx_bytes : with_outputs(model.onnx_bytes, intermediates));
    }
    std::vector<at::Tensor> in;
    for (const auto& t : inputs) in.push_back(to_aten(t).to(at::kFloat));
    OrtRunOptions options;
    options.optimize = optimized;
    options.fetch = fetch;
    const OrtRunResult r = run_onnx_runtime(file, model.inputs, in, options, scratch.path());
    EngineResult out;
    for (std::size_t i = 0; i < r.outputs.size(); ++i)
      (i < model.outputs.size() ? out.outputs : out.intermediates).push_back(to_engine(r.outputs[i], r.names.at(i)));
    return out;
  };
}

}  // namespace qsdk
