// LeNet-style MNIST classifier. Activations and pooling are functional (as in
// PyTorch's MNIST example), so they trace at the root scope.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "capture/zoo/zoo_internal.h"
#include "common/error.h"
#include "data/data_source.h"
#include "train/classifier_training.h"

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

// zoo:mnist_cnn_trained's recipe. Bump kTrainedVersion whenever anything
// in it changes: the version names the cache file, so a new recipe retrains.
constexpr const char* kTrainedVersion = "v1";
constexpr int kTrainedEpochs = 5;
constexpr int kTrainedBatchSize = 64;
constexpr double kTrainedLr = 0.02;
constexpr double kTrainedMomentum = 0.9;
constexpr double kTrainedWeightDecay = 5e-4;

std::string trained_recipe(std::uint64_t seed) {
  std::ostringstream s;
  s << "mnist_cnn_trained " << kTrainedVersion << ": seed " << seed << ", sgd lr " << kTrainedLr << " momentum "
    << kTrainedMomentum << " weight decay " << kTrainedWeightDecay << ", " << kTrainedEpochs << " epochs of batch "
    << kTrainedBatchSize << " on the mnist calibration split, reshuffled each epoch";
  return s.str();
}

// Epoch e is one pass over the calibration split in the order seeded by
// (seed, e): a fresh shuffle every epoch.
class EpochsSource : public DataSource {
 public:
  EpochsSource(std::uint64_t seed, int epochs) {
    CalibrationConfig config;
    config.source = "mnist";
    config.split = "calibration";
    config.batch_size = kTrainedBatchSize;
    config.batches = 0;  // one pass
    for (int e = 0; e < epochs; ++e) {
      config.seed = seed * 1000 + std::uint64_t(e);
      epochs_.push_back(open_data_source(config, {{1, 1, 28, 28}}));
    }
  }
  std::string describe() const override { return epochs_.front()->describe(); }
  std::size_t num_batches() const override { return epochs_.size() * per_epoch(); }
  Batch batch(std::size_t i) const override { return epochs_.at(i / per_epoch())->batch(i % per_epoch()); }

 private:
  std::size_t per_epoch() const { return epochs_.front()->num_batches(); }
  std::vector<std::unique_ptr<DataSource>> epochs_;
};

void train_mnist(MnistCnn& model, std::uint64_t seed) {
  std::unique_ptr<DataSource> data;
  try {
    data = std::make_unique<EpochsSource>(seed, kTrainedEpochs);
  } catch (const InputError& e) {
    throw InputError("zoo:mnist_cnn_trained", std::string("trains on real MNIST digits: ") + e.what());
  }
  TrainOptions options;
  options.epochs = 1;  // over all epochs' batches
  options.lr = kTrainedLr;
  options.momentum = kTrainedMomentum;
  options.weight_decay = kTrainedWeightDecay;
  options.label = "train zoo:mnist_cnn_trained";
  model->train();
  train_classifier([&](const std::vector<torch::Tensor>& in) { return model->forward(in.at(0)); }, model->parameters(),
                   *data, options);
}

}  // namespace

ZooModel build_mnist_cnn() { return make_zoo_model(MnistCnn(), "mnist_cnn"); }

std::filesystem::path trained_mnist_cache_path(std::uint64_t seed) {
  return qsdk_data_dir() / "zoo" /
         ("mnist_cnn_trained-" + std::string(kTrainedVersion) + "-seed" + std::to_string(seed) + ".pt");
}

ZooModel build_mnist_cnn_trained(std::uint64_t seed) {
  MnistCnn model;  // initialised from the generator the dispatcher seeded
  const auto path = trained_mnist_cache_path(seed);
  const std::string recipe = trained_recipe(seed);
  load_or_train(*model, path, recipe, "mnist_cnn_trained", "MNIST", [&] { train_mnist(model, seed); });
  return wrap_zoo_model(model, "mnist_cnn_trained");
}

}  // namespace qsdk::zoo::detail
