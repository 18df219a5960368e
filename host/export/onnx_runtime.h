// ONNX Runtime as an engine in the loop: an exported model run on the same
// inputs as qsdk's reference. ONNX Runtime 1.30 comes from the npm package
// onnxruntime-node (scripts/setup.sh puts it in
// $QSDK_DATA_DIR/onnxruntime-1.30.0); its package ships libonnxruntime but
// no C headers, so qsdk runs it through node and tools/ort_run.js (the
// protocol is in that file), as a child process with a timeout.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qsdk {

struct OrtRunOptions {
  bool optimize = true;            // graph optimizations "all" (QDQ fused into QLinear kernels) or "disabled"
  std::vector<std::string> fetch;  // output names; empty: the model's outputs
  int repeat = 0;                  // > 0: also time this many runs after the first
  int threads = 1;                 // intra-op threads
};

struct OrtRunResult {
  std::vector<std::string> names;
  std::vector<at::Tensor> outputs;  // in the order of `names`
  std::vector<double> latency_ms;   // when repeat > 0
};

// A scratch directory of qsdk's own under `parent` (mkdtemp), removed with
// everything in it when this goes out of scope.
class ScratchDir {
 public:
  explicit ScratchDir(const std::filesystem::path& parent = {});
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Where ONNX Runtime is looked for: $QSDK_ORT_DIR, else
// $QSDK_DATA_DIR/onnxruntime-1.30.0/node_modules. Empty when it, node or the
// runner script is missing; `why` then says which and how to fix it.
struct OrtInstall {
  std::filesystem::path node, runner, packages;
};
std::optional<OrtInstall> find_onnx_runtime(std::string* why = nullptr);

// Runs `model` on `inputs` (float tensors, in the model's input order) in a
// scratch directory under `work_dir`. Throws InputError naming the model when
// ONNX Runtime refuses it or is missing.
OrtRunResult run_onnx_runtime(const std::filesystem::path& model, const std::vector<std::string>& input_names,
                              const std::vector<at::Tensor>& inputs, const OrtRunOptions& options,
                              const std::filesystem::path& work_dir);

}  // namespace qsdk
