// QAT: the training model (qat_model.h) and train_qat (qat.h).
#include "qat/qat.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "common/error.h"
#include "data/data_source.h"
#include "graph/bn_folding.h"
#include "graph/graph.h"
#include "prepare/observe_op.h"
#include "prepare/prepare.h"
#include "qat/qat_model.h"
#include "train/classifier_training.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// `a` (made on `from`) re-pointed at the nodes of `to`, a clone of `from`:
// op node i of one is op node i of the other.
Annotation remap(const Annotation& a, const Graph& from, const Graph& to) {
  auto node = [&](const Node* n) -> const Node* {
    if (!n) return nullptr;
    const Node* m = to.node(from.id(n));
    if (!m) throw std::logic_error("QAT: annotation refers to a node that is not an op of its graph");
    return m;
  };
  auto edge = [&](EdgeKey e) {
    e.node = node(e.node);
    return e;
  };
  Annotation out = a;
  for (auto& m : out.matches) {
    for (auto& n : m.nodes) n = node(n);
    for (auto& ae : m.edges) {
      ae.edge = edge(ae.edge);
      for (auto& s : ae.sources) s = edge(s);
    }
  }
  for (auto& r : out.nodes) r.node = node(r.node);
  for (auto& group : out.shared_groups)
    for (auto& e : group) e = edge(e);
  return out;
}

enum class Role { None, Parameter, Buffer };

// What a constant float tensor at input `i` of `n` is in the model it was
// frozen from.
Role role_of(const Node* n, std::size_t i) {
  static const std::set<c10::Symbol> weighted = {
      c10::Symbol::fromQualString("aten::conv1d"),           c10::Symbol::fromQualString("aten::conv2d"),
      c10::Symbol::fromQualString("aten::conv3d"),           c10::Symbol::fromQualString("aten::linear"),
      c10::Symbol::fromQualString("aten::conv_transpose1d"), c10::Symbol::fromQualString("aten::conv_transpose2d"),
      c10::Symbol::fromQualString("aten::conv_transpose3d")};
  const auto k = n->kind();
  if (weighted.count(k)) return i == 1 || i == 2 ? Role::Parameter : Role::None;
  if (k == c10::aten::batch_norm)
    return i == 1 || i == 2 ? Role::Parameter : (i == 3 || i == 4 ? Role::Buffer : Role::None);
  if (k == c10::aten::layer_norm || k == c10::aten::group_norm) return i == 2 || i == 3 ? Role::Parameter : Role::None;
  return Role::None;
}

Value* insert_fake_quant(torch::jit::Graph& g, Value* v, int slot) {
  Value* id = g.insertConstant(static_cast<std::int64_t>(slot));
  Node* fq = g.create(fake_quant_symbol(), {v, id}, 1);
  g.insertNode(fq);
  fq->output()->setType(v->type());
  return fq->output();
}

Value* int_list(torch::jit::Graph& g, std::int64_t rank, std::size_t channel_dim) {
  std::vector<std::int64_t> shape(static_cast<std::size_t>(rank), 1);
  shape.at(channel_dim) = -1;
  return g.insertConstant(c10::IValue(shape));
}

std::int64_t rank_of(const Value* v) {
  auto t = v->type()->cast<c10::TensorType>();
  if (!t || !t->dim()) throw std::logic_error("QAT: conv-bn operand of unknown rank");
  return static_cast<std::int64_t>(*t->dim());
}

// PyTorch's _ConvBnNd forward (see qat_model.h): `op` takes the BN-scaled
// weight and no bias; scale and bias are undone before `bn`.
void rewrite_conv_bn(torch::jit::Graph& g, Node* op, Node* bn) {
  Value* w = op->input(1);
  Value* b = op->input(2);
  Value* gamma = bn->input(1);
  Value* var = bn->input(4);
  Value* eps = bn->input(7);
  Value* scale = nullptr;
  {
    torch::jit::WithInsertPoint guard(op);
    Value* stddev = g.insert(c10::aten::sqrt, {g.insert(c10::aten::add, {var, eps})});
    scale = gamma->mustBeNone() ? g.insert(c10::aten::reciprocal, {stddev}) : g.insert(c10::aten::div, {gamma, stddev});
    Value* scaled = g.insert(c10::aten::mul, {w, g.insert(c10::aten::reshape, {scale, int_list(g, rank_of(w), 0)})});
    op->replaceInput(1, scaled);
    op->replaceInput(2, g.insertConstant(c10::IValue()));
  }
  torch::jit::WithInsertPoint guard(bn);
  const std::int64_t rank = rank_of(op->output());
  Value* y = g.insert(c10::aten::div, {op->output(), g.insert(c10::aten::reshape, {scale, int_list(g, rank, 1)})});
  if (!b->mustBeNone()) y = g.insert(c10::aten::add, {y, g.insert(c10::aten::reshape, {b, int_list(g, rank, 1)})});
  bn->replaceInput(0, y);
}

}  // namespace

QatModel::QatModel(const Graph& graph, const Annotation& annotation) : train_(graph.clone()) {
  layout_ = std::make_unique<PreparedModel>(*train_, remap(annotation, graph, *train_));
  auto& g = train_->ir();

  // Pairs convert will fold (decided on the prepared copy, as convert
  // decides on the prepared graph) whose weight is fake-quantized.
  std::set<const Node*> quantized_weight;
  for (const auto& s : layout_->slots())
    if (s.kind == SlotKind::Weight)
      for (const auto& e : s.edges)
        if (!e.is_output() && e.operand == 1) quantized_weight.insert(e.node);
  std::vector<std::pair<Node*, Node*>> conv_bn;
  for (Node* n : train_->nodes())
    if (quantized_weight.count(n))
      if (Node* bn = foldable_batch_norm(n)) conv_bn.emplace_back(n, bn);

  // Constants -> graph inputs, one per use.
  for (int id = 0; id < static_cast<int>(train_->nodes().size()); ++id) {
    Node* n = train_->node(id);
    for (std::size_t i = 0; i < n->inputs().size(); ++i) {
      const Role role = role_of(n, i);
      if (role == Role::None) continue;
      auto c = torch::jit::toIValue(n->input(i));
      if (!c || !c->isTensor() || !c->toTensor().is_floating_point()) continue;
      Value* in = g.addInput("qat_" + std::to_string(uses_.size()));
      in->setType(n->input(i)->type());
      n->replaceInput(i, in);
      at::Tensor owned = c->toTensor().detach().clone();
      if (role == Role::Parameter) owned.requires_grad_(true);
      uses_.push_back({id, i, owned});
    }
  }

  // batch_norm's `training` flag: an input, so one graph serves train and eval.
  Value* bn_training = g.addInput("qat_bn_training");
  bn_training->setType(c10::BoolType::get());
  for (Node* n : g.nodes())
    if (n->kind() == c10::aten::batch_norm) n->replaceInput(5, bn_training);

  for (auto [op, bn] : conv_bn) rewrite_conv_bn(g, op, bn);
  conv_bn_pairs_ = static_cast<int>(conv_bn.size());

  for (const auto& s : layout_->slots()) {
    switch (s.kind) {
      case SlotKind::Weight:
        // Before the consumer, on that use only: the weight (BN-scaled for a pair).
        for (const auto& e : s.edges) {
          if (e.is_output() || e.element >= 0) continue;
          Node* consumer = const_cast<Node*>(e.node);
          torch::jit::WithInsertPoint guard(consumer);
          const auto operand = static_cast<std::size_t>(e.operand);
          consumer->replaceInput(operand, insert_fake_quant(g, consumer->input(operand), s.id));
          ++fake_quant_nodes_;
        }
        break;
      case SlotKind::Fixed: {
        // Where prepare would observe an activation: after its producer, for every use.
        std::set<const Value*> done;
        for (const auto& e : s.edges) {
          Value* v = const_cast<Value*>(edge_value(e));
          if (!done.insert(v).second || torch::jit::toIValue(v)) continue;
          Node* at = v->node()->kind() == c10::prim::Param ? *g.nodes().begin() : v->node()->next();
          torch::jit::WithInsertPoint guard(at);
          Value* fq = insert_fake_quant(g, v, s.id);
          v->replaceAllUsesAfterNodeWith(fq->node(), fq);
          ++fake_quant_nodes_;
        }
        break;
      }
      case SlotKind::Activation:
      case SlotKind::Dynamic: break;
    }
  }
  // Observe nodes become fake_quant nodes of the same slot.
  std::vector<Node*> observes;
  for (Node* n : g.nodes())
    if (n->kind() == observe_symbol()) observes.push_back(n);
  for (Node* obs : observes) {
    Node* fq = g.create(fake_quant_symbol(), {obs->input(0), obs->input(1)}, 1);
    fq->insertBefore(obs);
    fq->output()->setType(obs->output()->type());
    obs->output()->replaceAllUsesWith(fq->output());
    obs->destroy();
    ++fake_quant_nodes_;
  }

  for (const auto& s : layout_->slots()) {
    std::unique_ptr<FakeQuantize> fq;
    try {
      switch (s.kind) {
        case SlotKind::Activation: fq = std::make_unique<FakeQuantize>(s.spec, FakeQuantize::Mode::Observed); break;
        case SlotKind::Weight: fq = std::make_unique<FakeQuantize>(s.spec, FakeQuantize::Mode::Weight); break;
        case SlotKind::Fixed: fq = std::make_unique<FakeQuantize>(s.spec, FakeQuantize::Mode::Fixed); break;
        case SlotKind::Dynamic: break;
      }
    } catch (const InputError& e) {
      throw InputError("backend '" + annotation.backends + "'", s.label + ": " + e.what());
    }
    fq_.push_back(std::move(fq));
  }
  code_ = std::make_shared<torch::jit::Code>(train_->ir_ptr(), "qat_training");
}

QatModel::~QatModel() = default;

std::vector<at::Tensor> QatModel::forward(const std::vector<at::Tensor>& inputs) {
  ScopedFakeQuantSink scope(*this);
  torch::jit::Stack stack(inputs.begin(), inputs.end());
  for (const auto& u : uses_) stack.emplace_back(u.tensor);
  stack.emplace_back(training_ && !bn_frozen_);
  torch::jit::InterpreterState(*code_).run(stack);
  return flatten_outputs(stack);
}

at::Tensor QatModel::fake_quant(std::int64_t slot, const at::Tensor& x) {
  auto& fq = fq_.at(static_cast<std::size_t>(slot));
  if (!fq) throw std::logic_error("QAT: fake_quant node for slot " + std::to_string(slot) + ", which has none");
  return fq->forward(x);
}

void QatModel::train(bool on) {
  training_ = on;
  for (auto& fq : fq_)
    if (fq && fq->mode() == FakeQuantize::Mode::Observed) fq->enable_observer(on && !observers_frozen_);
}

void QatModel::freeze_bn_stats() { bn_frozen_ = true; }

void QatModel::freeze_observers() {
  observers_frozen_ = true;
  train(training_);
}

std::vector<at::Tensor> QatModel::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& u : uses_)
    if (u.tensor.requires_grad()) out.push_back(u.tensor);
  return out;
}

const FakeQuantize* QatModel::fake_quantizer(int slot) const {
  return slot >= 0 && slot < static_cast<int>(fq_.size()) ? fq_[static_cast<std::size_t>(slot)].get() : nullptr;
}

void QatModel::write_back(Graph& graph) const {
  auto& g = graph.ir();
  for (const auto& u : uses_) {
    Node* n = graph.node(u.node);
    Node* mine = train_->node(u.node);
    if (!n || n->kind() != mine->kind() || u.input >= n->inputs().size())
      throw std::logic_error("QAT write_back: the graph changed since the QAT model was built from it");
    Value* old = n->input(u.input);
    Value* c = nullptr;
    {
      torch::jit::WithInsertPoint guard(n);
      c = g.insertConstant(u.tensor.detach().clone());
    }
    c->setType(old->type());
    n->replaceInput(u.input, c);
    if (!old->hasUses() && old->node()->kind() == c10::prim::Constant) old->node()->destroy();
  }
  graph.invalidate_compiled();
}

void QatModel::load_ranges_into(PreparedModel& prepared) const {
  const auto& slots = prepared.slots();
  if (slots.size() != fq_.size())
    throw std::logic_error("QAT: the prepared model has " + std::to_string(slots.size()) + " slots, training had " +
                           std::to_string(fq_.size()));
  prepared.override_activation_observer(ObserverKind::MovingAverageMinMax);
  auto stats = prepared.stats_document();
  auto& list = stats.at("slots");
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].kind != layout_->slots()[i].kind)
      throw std::logic_error("QAT: slot " + std::to_string(i) + " differs between training and the prepared model");
    if (slots[i].kind == SlotKind::Activation && fq_[i]) list[i]["state"] = fq_[i]->observer().save_state();
  }
  prepared.load_stats_document(stats, "QAT (learned activation ranges)");
}

QatResult train_qat(Graph& graph, const Annotation& annotation, const QatOptions& options, const DataSource& data,
                    bool progress) {
  const std::string where = "qat";
  if (options.epochs < 0) throw InputError(where, "epochs must be 0 (use steps) or more");
  if (options.epochs == 0 && options.steps < 1) throw InputError(where, "steps must be at least 1");
  if (options.batch_size < 1) throw InputError(where, "batch_size must be at least 1");
  if (options.freeze_bn_after < -1 || options.freeze_observers_after < -1)
    throw InputError(where, "freeze_bn_after and freeze_observers_after are a step number, or -1 for never");
  TrainOptions t;
  t.steps = options.epochs > 0 ? 0 : options.steps;
  t.epochs = options.epochs;
  t.optimizer = parse_optimizer(options.optimizer, "qat.optimizer");
  t.lr = options.lr;
  t.schedule = parse_lr_schedule(options.lr_schedule, "qat.lr_schedule");
  t.momentum = options.momentum;
  t.weight_decay = options.weight_decay;
  t.label = "qat";
  t.progress = progress;

  QatModel model(graph, annotation);
  model.train();
  auto trained = train_classifier(
      [&](const std::vector<at::Tensor>& inputs) {
        auto out = model.forward(inputs);
        if (out.empty()) throw InputError(graph.source(), "the model has no tensor output to train");
        return out.front();
      },
      model.parameters(), data, t,
      [&](int step) {
        if (options.freeze_bn_after >= 0 && step >= options.freeze_bn_after && !model.bn_frozen())
          model.freeze_bn_stats();
        if (options.freeze_observers_after >= 0 && step >= options.freeze_observers_after && !model.observers_frozen())
          model.freeze_observers();
      });
  model.eval();
  model.write_back(graph);
  QatResult result;
  result.prepared = std::make_unique<PreparedModel>(graph, annotation);
  model.load_ranges_into(*result.prepared);
  result.losses = std::move(trained.losses);
  return result;
}

}  // namespace qsdk
