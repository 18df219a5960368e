// my-npu: a small example backend. An imaginary NPU that runs int8
// convolutions (with a fused ReLU) and linear layers: uint8 affine
// activations, int8 symmetric per-channel weights, int32 biases derived from
// input and weight scales. Everything else stays in float.
//
// The backend declares the integer arithmetic of the NPU and brings its
// engine (my_npu_engine.cpp): a bit-accurate C model of the hardware that
// runs the quantized model, so that conformance checks it against the host's
// integer-exact reference.
//
// Copy this directory to start a real backend: rename the target and the
// backend, declare your ops, then write specs for them (specs/).
#include <qsdk/sdk.h>

#include "my_npu_engine.h"

// Tests only: 1 builds an engine that rounds ties the wrong way (CMake
// option MY_NPU_TIES_TO_EVEN_BUG), to see conformance catch it.
#ifndef MY_NPU_TIES_TO_EVEN_BUG
#define MY_NPU_TIES_TO_EVEN_BUG 0
#endif

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& /*options*/) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "my-npu";
  b->version = "1.0.0";
  b->vendor = "Example Silicon";
  b->description = "Example NPU: int8 conv(+relu) and linear";
  b->lowering = Lowering::Reference;  // no LibTorch kernels for this NPU: the Q/DQ model is the result
  b->arithmetic = my_npu::declared_arithmetic();
  b->engine = [](const EngineModel& m, const std::vector<EngineTensor>& in) {
    return my_npu::run(m, in, MY_NPU_TIES_TO_EVEN_BUG);
  };

  const QuantSpec act = spec::uint8_affine();
  const QuantSpec weight = spec::int8_symmetric_per_channel(/*axis=*/0);

  // Depthwise convolutions (groups > 1) are not supported by this NPU. A
  // condition is data: the host checks `groups` by its name in the op's
  // schema, and describe, diff and the rule hash all see it.
  const Condition dense = cond::arg("groups").eq(1);
  // The NPU fuses conv (+ batch_norm, folded at convert) + relu: one rule per
  // chain. At equal priority the longer pattern wins anyway; priorities make
  // the intent explicit.
  for (const std::vector<std::string>& chain :
       {std::vector<std::string>{"aten::conv2d", "aten::batch_norm", "aten::relu"},
        std::vector<std::string>{"aten::conv2d", "aten::batch_norm"},
        std::vector<std::string>{"aten::conv2d", "aten::relu"}, std::vector<std::string>{"aten::conv2d"}}) {
    std::string name;
    for (const auto& op : chain) name += (name.empty() ? "" : "_") + op.substr(6);  // "conv2d_batch_norm_relu"
    b->rules.push_back(Rule(name)
                           .match(chain)
                           .with_priority(static_cast<int>(chain.size()))
                           .input(act)
                           .weight(weight)
                           .bias(spec::derived_bias())
                           .output(act)
                           .when(dense));
  }
  b->rules.push_back(
      Rule("linear").match({"aten::linear"}).input(act).weight(weight).bias(spec::derived_bias()).output(act));
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
