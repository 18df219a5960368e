// build_zoo_model's dispatcher and the helpers every model file shares.
#include <torch/torch.h>

#include <map>

#include "capture/zoo/zoo_internal.h"
#include "common/error.h"

namespace qsdk::zoo {

namespace detail {

void finish_model(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules()) {
    // The zoo's models use only 1d/2d BatchNorm; the Impl types are distinct,
    // so each is checked for separately.
    auto* bn2d = child->as<torch::nn::BatchNorm2dImpl>();
    auto* bn1d = child->as<torch::nn::BatchNorm1dImpl>();
    if (bn2d == nullptr && bn1d == nullptr) continue;
    auto& running_mean = bn2d ? bn2d->running_mean : bn1d->running_mean;
    auto& running_var = bn2d ? bn2d->running_var : bn1d->running_var;
    auto& weight = bn2d ? bn2d->weight : bn1d->weight;
    auto& bias = bn2d ? bn2d->bias : bn1d->bias;
    running_mean.copy_(torch::randn_like(running_mean) * 0.1);
    running_var.copy_(torch::rand_like(running_var) + 0.5);
    if (weight.defined()) weight.copy_(torch::rand_like(weight) + 0.5);
    if (bias.defined()) bias.copy_(torch::randn_like(bias) * 0.1);
  }
  for (auto& param : module.parameters()) param.set_requires_grad(false);
  module.eval();
}

const torch::Tensor& single_input(const std::vector<torch::Tensor>& inputs, const std::string& model) {
  if (inputs.size() != 1) {
    throw InputError("zoo:" + model, "expects 1 input tensor, got " + std::to_string(inputs.size()));
  }
  return inputs[0];
}

torch::Tensor ScopedSequentialImpl::forward(torch::Tensor x) {
  std::size_t index = 0;
  for (auto& child : *this) {
    x = scoped(std::to_string(index++), [&] { return child.forward(x); });
  }
  return x;
}

}  // namespace detail

ZooModel build_zoo_model(const std::string& name, std::uint64_t seed) {
  using Builder = ZooModel (*)();
  static const std::map<std::string, Builder> builders = {
      {"conv_bn_relu", detail::build_conv_bn_relu},
      {"linear_relu", detail::build_linear_relu},
      {"residual_add", detail::build_residual_add},
      {"conv_cat", detail::build_conv_cat},
      {"pooling", detail::build_pooling},
      {"mbv3_block", detail::build_mbv3_block},
      {"resnet18", detail::build_resnet18},
      {"mnist_cnn", detail::build_mnist_cnn},
      {"transformer_block", detail::build_transformer_block},
      {"tiny_lm", detail::build_tiny_lm},
  };
  // Trained models take the seed itself: it seeds their training data order
  // and names their cache file.
  using SeededBuilder = ZooModel (*)(std::uint64_t);
  static const std::map<std::string, SeededBuilder> seeded = {
      {"mnist_cnn_trained", detail::build_mnist_cnn_trained},
      {"tiny_lm_trained", detail::build_tiny_lm_trained},
  };
  auto it = builders.find(name);
  auto trained = seeded.find(name);
  if (it == builders.end() && trained == seeded.end()) {
    std::string known;
    for (const auto& info : zoo_models()) known += (known.empty() ? "" : ", ") + info.name;
    throw InputError("zoo:" + name, "unknown zoo model; known: " + known);
  }
  // Weights come from torch's default init and finish_model's BN values, all
  // from the global generator: seeding it here makes the model a function of
  // (name, seed).
  torch::manual_seed(seed);
  return it != builders.end() ? it->second() : trained->second(seed);
}

}  // namespace qsdk::zoo
