// Shared pieces of the zoo's model files: one builder per model (the
// dispatcher seeds torch's generator before calling it), the finishing step
// every model goes through, and blocks used by more than one model. Private
// to host/capture/zoo/.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "capture/zoo/zoo_models.h"

namespace qsdk::zoo::detail {

ZooModel build_conv_bn_relu();
ZooModel build_linear_relu();
ZooModel build_residual_add();
ZooModel build_conv_cat();
ZooModel build_pooling();
ZooModel build_mbv3_block();
ZooModel build_resnet18();
ZooModel build_mnist_cnn();
ZooModel build_transformer_block();
ZooModel build_tiny_lm();

// zoo:mnist_cnn_trained: mnist_cnn trained on the calibration split of real
// MNIST (a few epochs of SGD, seeded by `seed`), BatchNorm statistics from
// training. Trains once and caches the state in trained_mnist_cache_path;
// later builds load it. InputError (run scripts/setup.sh) without MNIST.
ZooModel build_mnist_cnn_trained(std::uint64_t seed);
// $QSDK_DATA_DIR/zoo/mnist_cnn_trained-<recipe version>-seed<seed>.pt
std::filesystem::path trained_mnist_cache_path(std::uint64_t seed);

// zoo:tiny_lm_trained: tiny_lm trained on the calibration split of the
// fortunes text (Adam, a few thousand steps, seeded by `seed`), cached as
// mnist_cnn_trained is. InputError without the fortunes package.
ZooModel build_tiny_lm_trained(std::uint64_t seed);

// A trained model's state: loaded from the cache at `path` when `recipe`
// made it; otherwise `train()` runs (announced on stderr: "zoo:NAME:
// training on WHAT once (RECIPE); cached at PATH") and the state is saved
// there. A cache that is unreadable or from another recipe is retrained
// over. Then eval mode, no grad on parameters.
void load_or_train(torch::nn::Module& module, const std::filesystem::path& path, const std::string& recipe,
                   const std::string& name, const std::string& what, const std::function<void()>& train);

// Eval mode, no grad on parameters (the tracer refuses to bake in tensors
// that require grad), and BatchNorm statistics/affine set to seeded random
// values: default ones (mean 0, var 1, weight 1, bias 0) make BN folding a
// no-op that no test could tell from a broken fold. Uses the global RNG, so
// call it right after constructing under torch::manual_seed(seed).
void finish_model(torch::nn::Module& module);

// The model's single input, or InputError naming the model.
const torch::Tensor& single_input(const std::vector<torch::Tensor>& inputs, const std::string& model);

// A Sequential whose forward runs each child inside its index's scope, so
// traced nodes get paths like "block.0.1". Unlike nn::Sequential, whose
// forward is a template, it can be a child of another Sequential.
struct ScopedSequentialImpl : torch::nn::SequentialImpl {
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(ScopedSequential);

// Wraps `module` (which must have a Tensor forward(Tensor)) as a ZooModel
// taking one input.
template <typename Holder>
ZooModel wrap_zoo_model(Holder module, const std::string& name) {
  return ZooModel{module.ptr(), [module, name](const std::vector<torch::Tensor>& inputs) mutable {
                    return module->forward(single_input(inputs, name));
                  }};
}

// Finishes `module` (finish_model) and wraps it.
template <typename Holder>
ZooModel make_zoo_model(Holder module, const std::string& name) {
  finish_model(*module);
  return wrap_zoo_model(module, name);
}

// torchvision's BasicBlock: conv3x3-bn-relu, conv3x3-bn, add the shortcut
// (identity, or `downsample` = conv1x1+bn when shape changes), relu.
struct BasicBlockImpl : torch::nn::Module {
  BasicBlockImpl(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::ReLU relu{nullptr};
  ScopedSequential downsample{nullptr};  // null for an identity shortcut
};
TORCH_MODULE(BasicBlock);

}  // namespace qsdk::zoo::detail
