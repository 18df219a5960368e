// ResNet-18 with torchvision's layout and module names, so paths such as
// "layer2.0.downsample.0" mean the same here as in an exported torchvision
// model.
#include <torch/torch.h>

#include "capture/zoo/zoo_internal.h"

namespace qsdk::zoo::detail {

namespace nn = torch::nn;

namespace {

nn::Conv2d conv3x3(std::int64_t in, std::int64_t out, std::int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride) {
  conv1 = register_module("conv1", conv3x3(in_channels, out_channels, stride));
  bn1 = register_module("bn1", nn::BatchNorm2d(out_channels));
  relu = register_module("relu", nn::ReLU());
  conv2 = register_module("conv2", conv3x3(out_channels, out_channels, 1));
  bn2 = register_module("bn2", nn::BatchNorm2d(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    downsample = register_module(
        "downsample",
        ScopedSequential(nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false)),
                         nn::BatchNorm2d(out_channels)));
  }
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto identity = x;
  auto out = scoped("conv1", [&] { return conv1(x); });
  out = scoped("bn1", [&] { return bn1(out); });
  out = scoped("relu", [&] { return relu(out); });
  out = scoped("conv2", [&] { return conv2(out); });
  out = scoped("bn2", [&] { return bn2(out); });
  if (downsample) identity = scoped("downsample", [&] { return downsample(x); });
  out = out + identity;
  return scoped("relu", [&] { return relu(out); });
}

namespace {

struct ResNet18Impl : nn::Module {
  ResNet18Impl() {
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(64));
    relu = register_module("relu", nn::ReLU());
    maxpool = register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
    const std::int64_t widths[] = {64, 128, 256, 512};
    std::int64_t in = 64;
    for (int i = 0; i < 4; ++i) {
      const std::int64_t stride = i == 0 ? 1 : 2;
      layers[i] =
          register_module("layer" + std::to_string(i + 1),
                          ScopedSequential(BasicBlock(in, widths[i], stride), BasicBlock(widths[i], widths[i], 1)));
      in = widths[i];
    }
    avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(1));
    fc = register_module("fc", nn::Linear(512, 1000));
  }

  torch::Tensor forward(torch::Tensor x) {
    x = scoped("conv1", [&] { return conv1(x); });
    x = scoped("bn1", [&] { return bn1(x); });
    x = scoped("relu", [&] { return relu(x); });
    x = scoped("maxpool", [&] { return maxpool(x); });
    for (int i = 0; i < 4; ++i) {
      x = scoped("layer" + std::to_string(i + 1), [&] { return layers[i](x); });
    }
    x = scoped("avgpool", [&] { return avgpool(x); });
    x = torch::flatten(x, 1);
    return scoped("fc", [&] { return fc(x); });
  }

  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  nn::ReLU relu{nullptr};
  nn::MaxPool2d maxpool{nullptr};
  ScopedSequential layers[4] = {nullptr, nullptr, nullptr, nullptr};
  nn::AdaptiveAvgPool2d avgpool{nullptr};
  nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet18);

}  // namespace

ZooModel build_resnet18() { return make_zoo_model(ResNet18(), "resnet18"); }

}  // namespace qsdk::zoo::detail
