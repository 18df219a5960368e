// A backend written the way PT2E quantizers are: rules for conv and linear
// with their fused activations (relu, relu6 as hardtanh) and nothing for
// BatchNorm. Post-training, qsdk folds conv -> batch_norm before annotation,
// so these rules cover conv-BN blocks too (tests/specs/pt2e_conv_bn_relu6.yaml).
#include "qsdk/sdk.h"

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions&) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "pt2e-conv";
  b->version = "1.0.0";
  b->description = "conv/linear (+ relu, hardtanh) only, as a PT2E quantizer declares them";
  const QuantSpec act = spec::uint8_affine();
  for (const std::vector<std::string>& chain :
       {std::vector<std::string>{"aten::conv2d"}, std::vector<std::string>{"aten::conv2d", "aten::relu"},
        std::vector<std::string>{"aten::conv2d", "aten::hardtanh"}, std::vector<std::string>{"aten::linear"}}) {
    std::string name;
    for (const auto& op : chain) name += (name.empty() ? "" : "_") + op.substr(6);
    b->rules.push_back(Rule(name)
                           .match(chain)
                           .with_priority(static_cast<int>(chain.size()))
                           .input(act)
                           .weight(spec::int8_symmetric_per_channel(0))
                           .bias(spec::derived_bias())
                           .output(act));
  }
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
