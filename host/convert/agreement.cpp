#include "convert/agreement.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/script.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "convert/convert.h"
#include "convert/lowering.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

using Key = std::tuple<double, std::int64_t, std::vector<std::int64_t>>;

Key key_of(const at::Tensor& q) { return {q.q_scale(), q.q_zero_point(), q.sizes().vec()}; }

// Runs a copy of `graph` with every tensor value as an extra output and
// returns the quantized (per-tensor) runtime values, keyed by the original
// graph's Values.
std::unordered_map<const Value*, at::Tensor> quantized_values(const Graph& graph, Lowering target,
                                                              const std::vector<at::Tensor>& inputs) {
  auto copy = graph.ir().copy();
  std::vector<const Value*> originals;
  std::vector<Value*> copies;
  auto a = graph.ir().nodes().begin();
  auto b = copy->nodes().begin();
  for (; a != graph.ir().nodes().end(); ++a, ++b)
    for (std::size_t i = 0; i < a->outputs().size(); ++i)
      if (a->outputs()[i]->type()->cast<c10::TensorType>()) {
        originals.push_back(a->outputs()[i]);
        copies.push_back(b->outputs()[i]);
      }
  const std::size_t own_outputs = graph.ir().outputs().size();
  for (Value* v : copies) copy->registerOutput(v);
  Graph runnable(copy, "agreement probe");
  const auto values = run_with_engine(runnable, target, inputs);
  std::unordered_map<const Value*, at::Tensor> out;
  // run() flattens the graph's own outputs first (assumed plain tensors here).
  for (std::size_t i = 0; i < originals.size() && own_outputs + i < values.size(); ++i) {
    const at::Tensor& t = values[own_outputs + i];
    if (t.defined() && t.is_quantized() && t.qscheme() == at::kPerTensorAffine) out[originals[i]] = t;
  }
  return out;
}

}  // namespace

const OpAgreement* AgreementReport::first_over(double limit) const {
  for (const auto& c : checked)
    if (c.steps > limit + 1e-3) return &c;
  return nullptr;
}

namespace {

AgreementReport agreement_on_slice(const Graph& reference, const Graph& lowered, Lowering target,
                                   const std::vector<at::Tensor>& inputs) {
  AgreementReport report;
  // Reference quantized tensors by place; ambiguous places are dropped.
  std::map<Key, at::Tensor> by_place;
  std::map<Key, int> uses;
  for (const auto& [v, t] : quantized_values(reference, Lowering::Reference, inputs)) {
    const Key k = key_of(t);
    if (++uses[k] == 1) by_place[k] = t;
  }
  auto reference_at = [&](const at::Tensor& lowered_value) -> std::optional<at::Tensor> {
    const Key k = key_of(lowered_value);
    if (uses[k] != 1) return std::nullopt;
    return by_place[k];
  };

  const auto lowered_values = quantized_values(lowered, target, inputs);
  int position = 0;
  for (Node* k : lowered.ir().nodes()) {
    ++position;
    // Every kernel with a quantized output: quantized::* and the aten ops
    // LibTorch runs on quantized tensors (pooling, sigmoid, gelu, views).
    const std::string kind = k->kind().toQualString();
    if (kind.rfind("prim::", 0) == 0 || k->kind() == c10::aten::quantize_per_tensor) continue;
    if (k->outputs().size() != 1 || !lowered_values.count(k->output(0))) continue;
    const auto expected = reference_at(lowered_values.at(k->output(0)));
    // Build a graph holding just this kernel (and the constants it reads).
    auto g = std::make_shared<torch::jit::Graph>();
    std::unordered_map<const Value*, Value*> env;
    std::vector<at::Tensor> args;
    bool ok = expected.has_value();
    std::function<bool(Value*)> bring = [&](Value* v) -> bool {
      if (env.count(v)) return true;
      if (auto it = lowered_values.find(v); it != lowered_values.end()) {
        auto ref = reference_at(it->second);
        if (!ref) return false;
        env[v] = g->addInput()->setType(v->type());
        args.push_back(*ref);
        return true;
      }
      Node* p = v->node();
      if (p->kind() == c10::prim::Param) return false;
      if (p->kind() != c10::prim::Constant && p->kind() != c10::prim::ListConstruct) return false;
      for (Value* in : p->inputs())
        if (!bring(in)) return false;
      Node* c = g->createClone(p, [&](Value* x) { return env.at(x); });
      g->insertNode(c);
      for (std::size_t i = 0; i < p->outputs().size(); ++i) env[p->outputs()[i]] = c->outputs()[i];
      return true;
    };
    for (Value* in : k->inputs()) ok = ok && bring(in);
    if (!ok) {
      ++report.skipped;
      continue;
    }
    Node* alone = g->createClone(k, [&](Value* x) { return env.at(x); });
    g->insertNode(alone);
    g->registerOutput(alone->output(0));
    Graph single(g, k->kind().toQualString());
    const at::Tensor got = run_with_engine(single, target, args).at(0);
    const at::Tensor diff = (got.int_repr().to(at::kLong) - expected->int_repr().to(at::kLong)).abs();
    report.checked.push_back({position, k->kind().toQualString(), diff.max().item<double>(),
                              diff.gt(0).to(at::kDouble).mean().item<double>()});
  }
  return report;
}

}  // namespace

AgreementReport op_by_op_agreement(const Graph& reference, const Graph& lowered, Lowering target,
                                   const std::vector<at::Tensor>& inputs) {
  // Slice by slice (every quantized value of both models is held at once
  // within a slice); a kernel's result is its worst difference over all.
  AgreementReport report;
  for (const auto& slice : batch_slices(inputs)) {
    AgreementReport part = agreement_on_slice(reference, lowered, target, slice);
    if (report.checked.empty() && report.skipped == 0) {
      report = std::move(part);
      continue;
    }
    for (const auto& c : part.checked) {
      auto same = std::find_if(report.checked.begin(), report.checked.end(),
                               [&](const OpAgreement& r) { return r.position == c.position; });
      if (same == report.checked.end())
        report.checked.push_back(c);
      else {
        same->steps = std::max(same->steps, c.steps);
        same->differing = std::max(same->differing, c.differing);
      }
    }
  }
  std::sort(report.checked.begin(), report.checked.end(),
            [](const OpAgreement& a, const OpAgreement& b) { return a.position < b.position; });
  return report;
}

}  // namespace qsdk
