// The zoo's small single-pattern models: each exercises one thing a quantizer
// rule must match (conv-bn-relu, linear, residual add, concat, pooling).
#include <torch/torch.h>

#include "capture/zoo/zoo_internal.h"

namespace qsdk::zoo::detail {

namespace nn = torch::nn;

namespace {

struct ConvBnReluImpl : nn::Module {
  ConvBnReluImpl()
      : conv(register_module("conv", nn::Conv2d(nn::Conv2dOptions(3, 16, 3).padding(1)))),
        bn(register_module("bn", nn::BatchNorm2d(16))),
        relu(register_module("relu", nn::ReLU())) {}

  torch::Tensor forward(torch::Tensor x) {
    x = scoped("conv", [&] { return conv(x); });
    x = scoped("bn", [&] { return bn(x); });
    return scoped("relu", [&] { return relu(x); });
  }

  nn::Conv2d conv;
  nn::BatchNorm2d bn;
  nn::ReLU relu;
};
TORCH_MODULE(ConvBnRelu);

struct LinearReluImpl : nn::Module {
  LinearReluImpl()
      : fc1(register_module("fc1", nn::Linear(64, 32))),
        relu(register_module("relu", nn::ReLU())),
        fc2(register_module("fc2", nn::Linear(32, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = scoped("fc1", [&] { return fc1(x); });
    x = scoped("relu", [&] { return relu(x); });
    return scoped("fc2", [&] { return fc2(x); });
  }

  nn::Linear fc1;
  nn::ReLU relu;
  nn::Linear fc2;
};
TORCH_MODULE(LinearRelu);

struct ConvCatImpl : nn::Module {
  ConvCatImpl()
      : branch1(register_module("branch1", nn::Conv2d(nn::Conv2dOptions(8, 16, 3).padding(1)))),
        branch2(register_module("branch2", nn::Conv2d(nn::Conv2dOptions(8, 16, 1)))),
        conv(register_module("conv", nn::Conv2d(nn::Conv2dOptions(32, 16, 3).padding(1)))) {}

  torch::Tensor forward(torch::Tensor x) {
    auto a = scoped("branch1", [&] { return branch1(x); });
    auto b = scoped("branch2", [&] { return branch2(x); });
    auto y = torch::cat({a, b}, 1);
    return scoped("conv", [&] { return conv(y); });
  }

  nn::Conv2d branch1, branch2, conv;
};
TORCH_MODULE(ConvCat);

struct PoolingImpl : nn::Module {
  PoolingImpl()
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 16, 3).padding(1)))),
        maxpool(register_module("maxpool", nn::MaxPool2d(2))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)))),
        avgpool(register_module("avgpool", nn::AvgPool2d(2))),
        gap(register_module("gap", nn::AdaptiveAvgPool2d(1))),
        fc(register_module("fc", nn::Linear(32, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = scoped("conv1", [&] { return conv1(x); });
    x = scoped("maxpool", [&] { return maxpool(x); });
    x = scoped("conv2", [&] { return conv2(x); });
    x = scoped("avgpool", [&] { return avgpool(x); });
    x = scoped("gap", [&] { return gap(x); });
    x = torch::flatten(x, 1);
    return scoped("fc", [&] { return fc(x); });
  }

  nn::Conv2d conv1;
  nn::MaxPool2d maxpool;
  nn::Conv2d conv2;
  nn::AvgPool2d avgpool;
  nn::AdaptiveAvgPool2d gap;
  nn::Linear fc;
};
TORCH_MODULE(Pooling);

}  // namespace

ZooModel build_conv_bn_relu() { return make_zoo_model(ConvBnRelu(), "conv_bn_relu"); }
ZooModel build_linear_relu() { return make_zoo_model(LinearRelu(), "linear_relu"); }
// The block is the whole model, so its add sits at the root scope, as it
// would when tracing a lone torchvision BasicBlock.
ZooModel build_residual_add() { return make_zoo_model(BasicBlock(16, 16, 1), "residual_add"); }
ZooModel build_conv_cat() { return make_zoo_model(ConvCat(), "conv_cat"); }
ZooModel build_pooling() { return make_zoo_model(Pooling(), "pooling"); }

}  // namespace qsdk::zoo::detail
