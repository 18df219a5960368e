// The QAT training model behind train_qat (qat.h): a differentiable copy of
// a captured graph with fake-quantize where the annotation quantizes.
// Exposed for tests and tools; the pipeline calls train_qat.
//
// Built from a copy of the captured graph (the caller's graph is untouched
// until write_back):
//   - constants become graph inputs: weight and bias of conv/linear and the
//     affine parameters of batch_norm/layer_norm/group_norm are trainable
//     parameters (requires_grad); batch_norm's running mean/var are buffers
//     batch_norm updates in place. One input per use, so a constant the
//     graph pools for two ops trains separately for each.
//   - batch_norm's `training` argument becomes a graph input: train() and
//     eval() switch every BatchNorm between batch statistics (updating the
//     running ones) and running statistics. Capture removes dropout, so a
//     captured graph has none to switch.
//   - fake-quantize nodes (qsdk::fake_quant, fake_quant.h) exactly where
//     PTQ's prepare puts observers and convert puts quantize/dequantize: a
//     PreparedModel built on the copy decides the slots (shared groups are
//     one slot, so one observer), its observe nodes become fake_quant
//     nodes of the same slot (Observed: moving-average min/max), fixed
//     specs get their fixed qparams, weight edges get per-call weight
//     qparams (FakeQuantize::Mode::Weight), derived (bias) and dynamic
//     specs are left to convert, as PT2E's QAT leaves them.
//   - conv/linear -> batch_norm pairs that convert will fold, with a
//     quantized weight, are rewritten the way PyTorch's _ConvBnNd (and
//     PT2E's QAT conv-bn pattern) does:
//         scale = gamma / sqrt(running_var + eps)
//         y = conv(x, fake_quant(W * scale), None) / scale + b
//         batch_norm(y, gamma, beta, running_mean, running_var, training)
//     so the fake-quantized weight is the BN-scaled weight convert will
//     quantize, while BatchNorm keeps normalising with (and updating) batch
//     statistics. With BatchNorm frozen (eval), this is exactly the folded
//     conv of the converted model.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "annotate/annotation.h"
#include "qat/fake_quant.h"

namespace torch::jit {
struct Code;
}

namespace qsdk {

class Graph;
class PreparedModel;

class QatModel final : public FakeQuantSink {
 public:
  // `annotation` must have been made on `graph`. Throws InputError for a
  // spec no fake-quantizer can serve.
  QatModel(const Graph& graph, const Annotation& annotation);
  ~QatModel() override;
  QatModel(const QatModel&) = delete;
  QatModel& operator=(const QatModel&) = delete;

  // The graph's outputs (tuples flattened). Differentiable w.r.t.
  // parameters() when grad mode is on.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs);

  // Train mode (the default): BatchNorm uses and updates batch statistics
  // unless frozen; activation observers update unless frozen. Eval mode:
  // running statistics, observers off.
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  // PyTorch's freeze_bn_stats / disable_observer: from now on BatchNorm
  // uses running statistics and ranges stay put, in train mode too.
  void freeze_bn_stats();
  void freeze_observers();
  bool bn_frozen() const { return bn_frozen_; }
  bool observers_frozen() const { return observers_frozen_; }

  // Trainable tensors (requires_grad), for an optimizer.
  std::vector<at::Tensor> parameters() const;
  // The training graph (for inspection; run it through forward()).
  const Graph& training_graph() const { return *train_; }
  // Number of fake_quant nodes in the training graph.
  int fake_quant_nodes() const { return fake_quant_nodes_; }
  int conv_bn_pairs() const { return conv_bn_pairs_; }
  // Slot `slot`'s fake-quantizer (slot ids are the PreparedModel's), or
  // nullptr for slots without one (dynamic).
  const FakeQuantize* fake_quantizer(int slot) const;

  // Writes the trained parameters and BatchNorm statistics into `graph`
  // (the graph this model was built from, unchanged since) as constants.
  // Op nodes, ids and module paths stay as they are.
  void write_back(Graph& graph) const;
  // Loads the learned activation ranges into `prepared` (built on the
  // written-back graph with the same annotation): its activation slots
  // become moving-average min/max observers holding the trained state.
  void load_ranges_into(PreparedModel& prepared) const;

  at::Tensor fake_quant(std::int64_t slot, const at::Tensor& x) override;

 private:
  struct Use {
    int node = 0;  // op node id (the same in the copy and the original)
    std::size_t input = 0;
    at::Tensor tensor;
  };
  std::unique_ptr<Graph> train_;
  std::unique_ptr<PreparedModel> layout_;          // slots on the copy
  std::vector<Use> uses_;                          // graph inputs after the model's own, in order
  std::vector<std::unique_ptr<FakeQuantize>> fq_;  // by slot id
  std::shared_ptr<torch::jit::Code> code_;
  bool training_ = true, bn_frozen_ = false, observers_frozen_ = false;
  int fake_quant_nodes_ = 0, conv_bn_pairs_ = 0;
};

}  // namespace qsdk
