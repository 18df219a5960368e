#include "train/classifier_training.h"

#include <torch/torch.h>

#include <cmath>
#include <iomanip>
#include <memory>
#include <sstream>
#include <utility>

#include "common/error.h"
#include "common/progress.h"
#include "data/data_source.h"

namespace qsdk {

const char* to_string(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::Sgd: return "sgd";
    case OptimizerKind::Adam: return "adam";
  }
  return "?";
}

OptimizerKind parse_optimizer(const std::string& name, const std::string& where) {
  if (name == "sgd") return OptimizerKind::Sgd;
  if (name == "adam") return OptimizerKind::Adam;
  throw InputError(where, "unknown optimizer '" + name + "'; expected sgd or adam");
}

LrSchedule parse_lr_schedule(const std::string& name, const std::string& where) {
  if (name == "constant") return LrSchedule::Constant;
  if (name == "cosine") return LrSchedule::Cosine;
  throw InputError(where, "unknown learning-rate schedule '" + name + "'; expected constant or cosine");
}

namespace {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& parameters,
                                                        const TrainOptions& o) {
  if (o.optimizer == OptimizerKind::Adam)
    return std::make_unique<torch::optim::Adam>(parameters,
                                                torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      parameters, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
}

const at::Tensor& labels_of(const Batch& b, const DataSource& data, std::size_t i) {
  if (!b.labels.defined())
    throw InputError(data.describe(), "batch " + std::to_string(i) +
                                          " has no labels; training a classifier needs a labelled source (mnist)");
  return b.labels;
}

// Sequence models give logits [batch, seq, classes] for labels [batch,
// seq]: every position is a sample. Flattened to [N, classes] and [N].
std::pair<at::Tensor, at::Tensor> flat_samples(const at::Tensor& logits, const at::Tensor& labels,
                                               const DataSource& data) {
  const bool per_position = logits.dim() == labels.dim() + 1 && labels.dim() >= 1 &&
                            logits.sizes().slice(0, std::size_t(labels.dim())).vec() == labels.sizes().vec();
  if (!per_position)
    throw InputError(data.describe(), "the model's output is not [batch, classes] logits for the batch's " +
                                          std::to_string(labels.size(0)) + " labels");
  const auto classes = logits.size(-1);
  const auto top = labels.max().item<std::int64_t>();
  if (labels.min().item<std::int64_t>() < 0 || top >= classes)
    throw InputError(data.describe(), "label " + std::to_string(top) + " is outside the model's " +
                                          std::to_string(classes) + " classes");
  return {logits.reshape({-1, classes}), labels.reshape({-1})};
}

}  // namespace

TrainResult train_classifier(const ClassifierForward& forward, const std::vector<at::Tensor>& parameters,
                             const DataSource& data, const TrainOptions& options, const StepHook& before_step) {
  const std::string where = "training (" + options.label + ")";
  if (options.steps < 0) throw InputError(where, "steps must be 0 (use epochs) or more");
  if (options.steps == 0 && options.epochs < 1) throw InputError(where, "epochs must be at least 1 when steps is 0");
  if (!(options.lr > 0) || !std::isfinite(options.lr)) throw InputError(where, "learning rate must be positive");
  if (options.momentum < 0 || options.weight_decay < 0)
    throw InputError(where, "momentum and weight decay must not be negative");
  const std::size_t batches = data.num_batches();
  if (batches == 0) throw InputError(data.describe(), "no batches to train on");
  const std::size_t steps = options.steps > 0 ? std::size_t(options.steps) : std::size_t(options.epochs) * batches;

  torch::AutoGradMode grad(true);
  auto optimizer = make_optimizer(parameters, options);
  std::unique_ptr<Progress> bar;
  if (options.progress) bar = std::make_unique<Progress>(options.label, steps);
  TrainResult result;
  result.losses.reserve(steps);
  double running = 0;  // exponential average of the loss, for the progress bar
  for (std::size_t step = 0; step < steps; ++step) {
    if (before_step) before_step(int(step));
    if (options.schedule == LrSchedule::Cosine) {
      const double lr = options.lr * 0.5 * (1 + std::cos(M_PI * double(step) / double(steps)));
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
    }
    const std::size_t index = step % batches;
    const Batch batch = data.batch(index);
    const at::Tensor& labels = labels_of(batch, data, index);
    optimizer->zero_grad();
    const auto [logits, targets] = flat_samples(forward(batch.inputs), labels, data);
    at::Tensor loss = torch::nn::functional::cross_entropy(logits, targets);
    const double value = loss.item<double>();
    if (!std::isfinite(value))
      throw InputError(where, "loss is not finite at step " + std::to_string(step + 1) +
                                  "; lower the learning rate (now " + std::to_string(options.lr) + ")");
    loss.backward();
    optimizer->step();
    result.losses.push_back(value);
    running = step == 0 ? value : 0.9 * running + 0.1 * value;
    if (bar) {
      std::ostringstream s;
      s << "loss " << std::fixed << std::setprecision(4) << running;
      bar->set_suffix(s.str());
      bar->step();
    }
  }
  if (bar) bar->finish();
  return result;
}

double classifier_accuracy(const ClassifierForward& forward, const DataSource& data) {
  torch::NoGradGuard no_grad;
  std::int64_t correct = 0, total = 0;
  for (std::size_t i = 0; i < data.num_batches(); ++i) {
    const Batch batch = data.batch(i);
    const at::Tensor& labels = labels_of(batch, data, i);
    const auto [logits, targets] = flat_samples(forward(batch.inputs), labels, data);
    correct += logits.argmax(1).eq(targets).sum().item<std::int64_t>();
    total += targets.size(0);
  }
  return total ? double(correct) / double(total) : 0.0;
}

}  // namespace qsdk
