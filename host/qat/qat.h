// Quantization-aware training (PT2E's prepare_qat_pt2e + a training loop):
// fake-quantize where the annotation asks for quantization, fine-tune with
// LibTorch autograd, and hand back a PreparedModel that the PTQ convert
// stage converts unchanged.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "annotate/annotation.h"

namespace qsdk {

class Graph;
class DataSource;
class PreparedModel;

// The config's `qat:` section.
struct QatOptions {
  int steps = 200;
  int epochs = 0;                 // > 0: this many passes over the data instead of `steps`
  std::string optimizer = "sgd";  // "sgd" (with momentum) or "adam"
  double lr = 0.01;
  double momentum = 0.9;  // sgd only
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
// (classification, cross-entropy). On return `graph` has the same nodes and
// ids, with the trained weights and BatchNorm statistics as constants.
QatResult train_qat(Graph& graph, const Annotation& annotation, const QatOptions& options, const DataSource& data,
                    bool progress);

}  // namespace qsdk
