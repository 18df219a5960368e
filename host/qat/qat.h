// Quantization-aware training (PT2E's prepare_qat_pt2e + a training loop):
// fake-quantize where the annotation asks for quantization, fine-tune with
// LibTorch autograd, and hand back a PreparedModel that the PTQ convert
// stage converts unchanged.
//
// Decisions (details in qat_model.h and fake_quant.h):
//   - Training runs on a copy of the captured graph whose constants are
//     graph inputs (one per use), through LibTorch's TorchScript
//     interpreter, which records autograd like eager code. The captured
//     graph itself only receives the results (write-back), so its node ids,
//     which the annotation refers to, never change.
//   - Fake-quantize sits exactly where prepare would observe and convert
//     would quantize: a PreparedModel on the copy decides it, so shared
//     groups share one fake-quantizer and the QAT-converted model has the
//     PTQ-converted structure.
//   - Activations: moving-average min/max (PyTorch's QAT default). Weights:
//     qparams of the current weight each step, the qparams prepare will
//     compute from the final constant. Fixed specs: their qparams. Derived
//     (bias) and dynamic specs: left to convert.
//   - conv/linear -> BatchNorm pairs that convert folds train in PyTorch's
//     _ConvBnNd form: the BN-scaled weight is fake-quantized, BN keeps
//     updating its statistics until freeze_bn_after.
//   - The learned ranges reach convert as saved observer state
//     (PreparedModel::load_stats), with the activation slots switched to
//     moving-average min/max observers; no change to prepare or convert.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "annotate/annotation.h"

namespace qsdk {

class Graph;
class DataSource;
class PreparedModel;

// The config's `qat:` section. SGD with momentum (or Adam) on cross-entropy.
struct QatOptions {
  int steps = 200;
  int epochs = 0;                 // > 0: this many passes over the data instead of `steps`
  std::string optimizer = "sgd";  // "sgd" (with momentum) or "adam"
  double lr = 0.01;
  std::string lr_schedule = "cosine";  // "cosine" (lr down to ~0 at the last step) or "constant"
  double momentum = 0.9;               // sgd only
  double weight_decay = 0;
  // The batch size the caller opens the training source with; train_qat
  // trains on the source's batches as they are.
  int batch_size = 32;
  // Steps after which BatchNorm statistics / observers stop updating
  // (-1: never), as PyTorch's QAT recipes do near the end of training.
  int freeze_bn_after = -1;
  int freeze_observers_after = -1;
};

struct QatResult {
  // Built on the graph passed to train_qat; activation slots hold the ranges
  // the fake-quantize observers learned. Ready for convert_to_reference.
  std::unique_ptr<PreparedModel> prepared;
  std::vector<double> losses;  // one per step
};

// Fine-tunes `graph` (a captured float graph, which `annotation` was made
// on) with fake-quantize per the annotation, on labelled batches of `data`
// (classification, cross-entropy; step i trains on batch i mod
// data.num_batches(), so open the source with batches = steps). On return
// `graph` has the same nodes and ids, with the trained weights and
// BatchNorm statistics as constants, plus the observe nodes `prepared`
// inserted (as after PTQ's prepare). With an empty annotation this is plain
// float fine-tuning of the captured graph. A progress bar with the loss goes
// to stderr when `progress`. Throws InputError for bad options (names the
// field), unlabelled data, a non-finite loss, or a spec no fake-quantizer
// can serve.
QatResult train_qat(Graph& graph, const Annotation& annotation, const QatOptions& options, const DataSource& data,
                    bool progress);

}  // namespace qsdk
