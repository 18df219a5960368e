// Float training of a classifier with LibTorch autograd: cross-entropy on
// labelled batches of a DataSource, SGD (with momentum) or Adam, a progress
// bar showing the running loss. Used to train zoo:mnist_cnn_trained and
// zoo:tiny_lm_trained and, with fake-quantize in the forward function, by
// QAT (host/qat). Logits [batch, classes] with labels [batch], or for
// sequence models [batch, seq, classes] with labels [batch, seq] (every
// position is one sample).
//
// The model is whatever `forward` computes from a batch's inputs: a
// torch::nn module's forward, or a TorchScript graph run by LibTorch's
// interpreter with the parameters as extra inputs. The optimizer updates
// `parameters` in place (they must require grad).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace qsdk {

class DataSource;

enum class OptimizerKind { Sgd, Adam };
enum class LrSchedule {
  Constant,
  Cosine  // lr * (1 + cos(pi * step / steps)) / 2: from lr down to ~0 at the last step
};
const char* to_string(OptimizerKind);
// "sgd" or "adam"; InputError(where, ...) otherwise.
OptimizerKind parse_optimizer(const std::string& name, const std::string& where);
// "constant" or "cosine"; InputError(where, ...) otherwise.
LrSchedule parse_lr_schedule(const std::string& name, const std::string& where);

struct TrainOptions {
  // Steps (one batch each). 0: `epochs` passes over the source, i.e.
  // epochs * data.num_batches() steps. Step i trains on batch i mod
  // num_batches(), so a source opened with batches = steps is read once.
  int steps = 0;
  int epochs = 1;
  OptimizerKind optimizer = OptimizerKind::Sgd;
  double lr = 0.01;
  LrSchedule schedule = LrSchedule::Constant;
  double momentum = 0.9;  // SGD only
  double weight_decay = 0;
  std::string label = "train";  // progress bar label
  bool progress = true;         // progress bar with the loss on stderr
};

// Logits [batch, classes] (or [batch, seq, classes]) for one batch's inputs, differentiable w.r.t. the
// parameters.
using ClassifierForward = std::function<at::Tensor(const std::vector<at::Tensor>& inputs)>;
// Called before step `step` (0-based) runs: for schedules such as freezing
// BatchNorm statistics or observers.
using StepHook = std::function<void(int step)>;

struct TrainResult {
  std::vector<double> losses;  // one per step, mean cross-entropy of the step's batch
};

// Trains in place. Throws InputError when a batch has no labels, labels
// do not fit the logits, the options are out of range (steps, epochs, lr),
// or the loss stops being finite (names the step; lower the learning rate).
TrainResult train_classifier(const ClassifierForward& forward, const std::vector<at::Tensor>& parameters,
                             const DataSource& data, const TrainOptions& options, const StepHook& before_step = {});

// Fraction of samples whose top-1 prediction equals the label, over every
// batch of `data` (open it with batches = 0 for one pass), without grad.
double classifier_accuracy(const ClassifierForward& forward, const DataSource& data);

}  // namespace qsdk
