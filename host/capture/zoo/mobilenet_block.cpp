// One MobileNetV3 inverted residual block, named as torchvision's
// InvertedResidual ("block.0.0" expand conv, "block.2.fc1" squeeze-excite).
#include <torch/torch.h>

#include "capture/zoo/zoo_internal.h"

namespace qsdk::zoo::detail {

namespace nn = torch::nn;

namespace {

// The C++ API has no Hardswish/Hardsigmoid modules; these give the
// activations a module (and so a scope) as in torchvision.
struct HardswishImpl : nn::Cloneable<HardswishImpl> {
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::hardswish(x); }
};
TORCH_MODULE(Hardswish);

struct HardsigmoidImpl : nn::Cloneable<HardsigmoidImpl> {
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return torch::hardsigmoid(x); }
};
TORCH_MODULE(Hardsigmoid);

// torchvision's Conv2dNormActivation: conv (no bias), bn, optional activation.
ScopedSequential conv_bn(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t groups, bool hardswish) {
  ScopedSequential seq(nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).groups(groups).bias(false)),
                       nn::BatchNorm2d(out));
  if (hardswish) seq->push_back(Hardswish());
  return seq;
}

struct SqueezeExcitationImpl : nn::Module {
  SqueezeExcitationImpl(std::int64_t channels, std::int64_t squeeze)
      : avgpool(register_module("avgpool", nn::AdaptiveAvgPool2d(1))),
        fc1(register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, squeeze, 1)))),
        activation(register_module("activation", nn::ReLU())),
        fc2(register_module("fc2", nn::Conv2d(nn::Conv2dOptions(squeeze, channels, 1)))),
        scale_activation(register_module("scale_activation", Hardsigmoid())) {}

  torch::Tensor forward(torch::Tensor x) {
    auto scale = scoped("avgpool", [&] { return avgpool(x); });
    scale = scoped("fc1", [&] { return fc1(scale); });
    scale = scoped("activation", [&] { return activation(scale); });
    scale = scoped("fc2", [&] { return fc2(scale); });
    scale = scoped("scale_activation", [&] { return scale_activation(scale); });
    return scale * x;
  }

  nn::AdaptiveAvgPool2d avgpool;
  nn::Conv2d fc1;
  nn::ReLU activation;
  nn::Conv2d fc2;
  Hardsigmoid scale_activation;
};
TORCH_MODULE(SqueezeExcitation);

struct InvertedResidualImpl : nn::Module {
  // torchvision's mobilenet_v3 config row (in 16, kernel 3, expand 64, out
  // 16, SE, hardswish, stride 1); squeeze = make_divisible(64 / 4, 8) = 16.
  static constexpr std::int64_t kIn = 16, kExpand = 64, kSqueeze = 16;

  InvertedResidualImpl() {
    block = register_module(
        "block", ScopedSequential(conv_bn(kIn, kExpand, 1, 1, true), conv_bn(kExpand, kExpand, 3, kExpand, true),
                                  SqueezeExcitation(kExpand, kSqueeze), conv_bn(kExpand, kIn, 1, 1, false)));
  }

  torch::Tensor forward(torch::Tensor x) {
    auto out = scoped("block", [&] { return block(x); });
    return out + x;
  }

  ScopedSequential block{nullptr};
};
TORCH_MODULE(InvertedResidual);

}  // namespace

ZooModel build_mbv3_block() { return make_zoo_model(InvertedResidual(), "mbv3_block"); }

}  // namespace qsdk::zoo::detail
