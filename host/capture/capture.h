// Capture: a model (TorchScript file or zoo:<name>) to the canonical graph
// every backend's rules are matched against. The C++ counterpart of PT2E's
// graph capture:
//   eval mode, frozen (weights are constants), inlined, dropout removed,
//   aten::_convolution -> conv2d/conv1d, t+addmm / matmul+add -> linear,
//   in-place ops made functional, no control flow, and every tensor value
//   typed with the shape and dtype it has on the example inputs.
// BatchNorm stays a node (rules match conv-bn-relu; convert folds it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/model_inputs.h"
#include "graph/graph.h"

namespace qsdk {

struct CaptureOptions {
  // One per model input: shape, dtype, integer range. Required for files;
  // overrides a zoo entry's.
  std::vector<InputSpec> inputs;
  std::uint64_t seed = 0;  // weights of zoo models and the example inputs
};

struct CapturedModel {
  std::unique_ptr<Graph> graph;
  std::vector<at::Tensor> example_inputs;
  // The inputs as captured: the graph's input names, and every integer
  // input's range (declared, or the rows of the embedding it indexes).
  std::vector<InputSpec> inputs;
  // The model before capture (the loaded module or the C++ zoo module), for
  // checking that capture preserved its function.
  std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)> original;
  // Empty when the graph also runs at another batch size, its outputs'
  // batch dim following (checked at capture with one more sample); else
  // why not, naming the node that fixes it ("%12 aten::view (fc) takes the
  // constant shape [1, 400]"). The pipeline refuses calibration at another
  // batch size with it, before calibrating.
  std::string fixed_batch;
  std::int64_t trace_batch = 0;  // the example inputs' first dim
};

// `model` is "zoo:<name>" or a path to a TorchScript file. Throws InputError
// naming the model and the cause: missing or unreadable file, not a
// TorchScript archive, truncated archive, control flow left after freezing,
// input shapes that do not fit, an input whose dtype the model does not take
// ("input 0 (idx) of the model wants int64 token ids").
CapturedModel capture_model(const std::string& model, const CaptureOptions& options = {});

// Parses "1,3,224,224" (as given to --input-shape). Throws InputError.
std::vector<std::int64_t> parse_shape(const std::string& text);

}  // namespace qsdk
