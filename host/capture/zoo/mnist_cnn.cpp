// LeNet-style MNIST classifier. Activations and pooling are functional (as in
// PyTorch's MNIST example), so they trace at the root scope.
#include <torch/torch.h>

#include "capture/zoo/zoo_internal.h"

namespace qsdk::zoo::detail {

namespace nn = torch::nn;

namespace {

struct MnistCnnImpl : nn::Module {
  MnistCnnImpl()
      : conv1(register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 16, 5).padding(2)))),
        bn1(register_module("bn1", nn::BatchNorm2d(16))),
        conv2(register_module("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 5)))),
        bn2(register_module("bn2", nn::BatchNorm2d(32))),
        fc1(register_module("fc1", nn::Linear(32 * 5 * 5, 120))),
        fc2(register_module("fc2", nn::Linear(120, 84))),
        fc3(register_module("fc3", nn::Linear(84, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    // 28x28 -> conv1 (pad 2) 28x28 -> pool 14x14 -> conv2 10x10 -> pool 5x5.
    x = scoped("conv1", [&] { return conv1(x); });
    x = torch::max_pool2d(torch::relu(scoped("bn1", [&] { return bn1(x); })), 2);
    x = scoped("conv2", [&] { return conv2(x); });
    x = torch::max_pool2d(torch::relu(scoped("bn2", [&] { return bn2(x); })), 2);
    x = torch::flatten(x, 1);
    x = torch::relu(scoped("fc1", [&] { return fc1(x); }));
    x = torch::relu(scoped("fc2", [&] { return fc2(x); }));
    return scoped("fc3", [&] { return fc3(x); });
  }

  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(MnistCnn);

}  // namespace

ZooModel build_mnist_cnn() { return make_zoo_model(MnistCnn(), "mnist_cnn"); }

}  // namespace qsdk::zoo::detail
