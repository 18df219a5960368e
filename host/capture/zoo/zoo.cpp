// The zoo's table: kept torch-free so `qsdk inspect --list-zoo` and docs
// code need not pull in LibTorch headers.
#include "capture/zoo/zoo.h"

namespace qsdk::zoo {

const std::vector<ZooInfo>& zoo_models() {
  static const std::vector<ZooInfo> models = {
      {"conv_bn_relu", "Conv2d(3,16,3x3) -> BatchNorm2d -> ReLU", {{1, 3, 32, 32}}},
      {"linear_relu", "Linear(64,32) -> ReLU -> Linear(32,10)", {{4, 64}}},
      {"residual_add", "ResNet BasicBlock with identity shortcut: conv-bn-relu, conv-bn, add, relu", {{1, 16, 32, 32}}},
      {"conv_cat", "two conv branches on one input, concatenated on channels, then a conv", {{1, 8, 32, 32}}},
      {"pooling",
       "conv -> max_pool2d -> conv -> avg_pool2d -> adaptive_avg_pool2d -> flatten -> linear",
       {{1, 3, 32, 32}}},
      {"mbv3_block",
       "MobileNetV3 inverted residual: expand (hardswish), depthwise, squeeze-excite (hardsigmoid), project, add",
       {{1, 16, 56, 56}}},
      {"resnet18", "torchvision ResNet-18 layout and module names, 1000 classes", {{1, 3, 224, 224}}},
      {"mnist_cnn", "LeNet-style MNIST classifier: two conv-bn-relu-maxpool stages, three linears", {{1, 1, 28, 28}}},
      {"mnist_cnn_trained",
       "mnist_cnn trained on real MNIST (calibration split, 5 epochs of SGD; needs scripts/setup.sh; cached in "
       "$QSDK_DATA_DIR/zoo)",
       {{1, 1, 28, 28}}},
      {"transformer_block",
       "pre-norm transformer encoder block: q/k/v/out linears, 4 heads, softmax attention, gelu MLP (d_model 64)",
       {{1, 16, 64}}},
      {"tiny_lm",
       "byte-level GPT-style language model: token + position embeddings, 2 causally masked attention blocks "
       "(4 heads, gelu MLP, d_model 64), layer norm, linear head over 256 bytes; input int64 token ids",
       {InputSpec({1, 32}, InputDtype::int64, 0, 256)}},
      {"tiny_lm_trained",
       "tiny_lm trained on English text (the fortunes package's quotations, 1000 Adam steps; needs scripts/setup.sh; "
       "cached in $QSDK_DATA_DIR/zoo)",
       {InputSpec({1, 32}, InputDtype::int64, 0, 256)}},
  };
  return models;
}

const ZooInfo* find_zoo_model(const std::string& name) {
  for (const auto& info : zoo_models()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

}  // namespace qsdk::zoo
