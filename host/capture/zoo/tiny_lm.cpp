// A small byte-level GPT-style language model: token and position
// embeddings, two pre-norm blocks of causally masked attention and a gelu
// MLP, a final layer norm and a linear head over the 256 byte values. Its
// input is token ids (int64 [batch, seq]), the case float-only capture could
// not take. Written op by op, as transformer_block is, so rules see the
// linears, matmuls, the mask and the softmax.
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <sstream>

#include "capture/zoo/zoo_internal.h"
#include "common/error.h"
#include "data/data_source.h"
#include "train/classifier_training.h"

namespace qsdk::zoo::detail {

namespace nn = torch::nn;

namespace {

constexpr std::int64_t kVocab = 256, kModel = 64, kHeads = 4, kHidden = 256, kLayers = 2, kMaxSeq = 128;

struct CausalAttentionImpl : nn::Module {
  CausalAttentionImpl()
      : qkv(register_module("qkv", nn::Linear(kModel, 3 * kModel))),
        proj(register_module("proj", nn::Linear(kModel, kModel))) {
    // True above the diagonal: position i may not look at j > i.
    future = register_buffer("future", torch::ones({kMaxSeq, kMaxSeq}, torch::kBool).triu(1));
  }

  torch::Tensor forward(torch::Tensor x) {
    const auto seq = x.size(1);
    constexpr std::int64_t head_dim = kModel / kHeads;
    auto all = scoped("qkv", [&] { return qkv(x); });
    // [batch, seq, 3 * model] -> three [batch, heads, seq, head_dim]
    auto parts = all.reshape({-1, seq, 3, kHeads, head_dim}).permute({2, 0, 3, 1, 4});
    auto q = parts[0], k = parts[1], v = parts[2];
    auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
    scores = scores.masked_fill(future.slice(0, 0, seq).slice(1, 0, seq), -1e4);
    auto attn = torch::matmul(torch::softmax(scores, -1), v);
    attn = attn.transpose(1, 2).reshape({-1, seq, kModel});
    return scoped("proj", [&] { return proj(attn); });
  }

  nn::Linear qkv, proj;
  torch::Tensor future;
};
TORCH_MODULE(CausalAttention);

struct LmBlockImpl : nn::Module {
  LmBlockImpl()
      : ln1(register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({kModel})))),
        attn(register_module("attn", CausalAttention())),
        ln2(register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({kModel})))),
        fc1(register_module("fc1", nn::Linear(kModel, kHidden))),
        fc2(register_module("fc2", nn::Linear(kHidden, kModel))) {}

  torch::Tensor forward(torch::Tensor x) {
    auto h = scoped("ln1", [&] { return ln1(x); });
    x = x + scoped("attn", [&] { return attn(h); });
    h = scoped("ln2", [&] { return ln2(x); });
    h = torch::gelu(scoped("fc1", [&] { return fc1(h); }));
    return x + scoped("fc2", [&] { return fc2(h); });
  }

  nn::LayerNorm ln1;
  CausalAttention attn;
  nn::LayerNorm ln2;
  nn::Linear fc1, fc2;
};
TORCH_MODULE(LmBlock);

struct TinyLmImpl : nn::Module {
  TinyLmImpl()
      : tok(register_module("tok", nn::Embedding(kVocab, kModel))),
        pos(register_module("pos", nn::Embedding(kMaxSeq, kModel))),
        blocks(register_module("blocks", nn::ModuleList())),
        ln_f(register_module("ln_f", nn::LayerNorm(nn::LayerNormOptions({kModel})))),
        head(register_module("head", nn::Linear(kModel, kVocab))) {
    for (std::int64_t i = 0; i < kLayers; ++i) blocks->push_back(LmBlock());
  }

  torch::Tensor forward(torch::Tensor ids) {
    const auto seq = ids.size(1);
    auto x = scoped("tok", [&] { return tok(ids); });
    x = x + scoped("pos", [&] { return pos(torch::arange(seq, torch::kLong)); });
    for (std::size_t i = 0; i < blocks->size(); ++i)
      x = scoped("blocks." + std::to_string(i), [&] { return blocks->at<LmBlockImpl>(i).forward(x); });
    x = scoped("ln_f", [&] { return ln_f(x); });
    return scoped("head", [&] { return head(x); });
  }

  nn::Embedding tok, pos;
  nn::ModuleList blocks;
  nn::LayerNorm ln_f;
  nn::Linear head;
};
TORCH_MODULE(TinyLm);

// zoo:tiny_lm_trained's recipe. Bump kTrainedVersion whenever anything in
// it changes: the version names the cache file, so a new recipe retrains.
constexpr const char* kTrainedVersion = "v1";
constexpr int kTrainedSteps = 1000;
constexpr int kTrainedBatchSize = 32;
constexpr std::int64_t kTrainedSeq = 32;
constexpr double kTrainedLr = 3e-3;

std::string trained_recipe(std::uint64_t seed) {
  std::ostringstream s;
  s << "tiny_lm_trained " << kTrainedVersion << ": seed " << seed << ", adam lr " << kTrainedLr << " cosine, "
    << kTrainedSteps << " steps of " << kTrainedBatchSize << " windows of " << kTrainedSeq
    << " bytes from the fortunes calibration split";
  return s.str();
}

void train_lm(TinyLm& model, std::uint64_t seed) {
  CalibrationConfig config;
  config.source = "fortunes";
  config.batch_size = kTrainedBatchSize;
  config.batches = kTrainedSteps;
  config.seed = seed;
  std::unique_ptr<DataSource> data;
  try {
    data = open_data_source(config, {InputSpec({1, kTrainedSeq}, InputDtype::int64, 0, kVocab)});
  } catch (const InputError& e) {
    throw InputError("zoo:tiny_lm_trained", std::string("trains on the fortunes text: ") + e.what());
  }
  TrainOptions options;
  options.steps = kTrainedSteps;
  options.optimizer = OptimizerKind::Adam;
  options.lr = kTrainedLr;
  options.schedule = LrSchedule::Cosine;
  options.label = "train zoo:tiny_lm_trained";
  model->train();
  train_classifier([&](const std::vector<torch::Tensor>& in) { return model->forward(in.at(0)); }, model->parameters(),
                   *data, options);
}

}  // namespace

ZooModel build_tiny_lm() { return make_zoo_model(TinyLm(), "tiny_lm"); }

ZooModel build_tiny_lm_trained(std::uint64_t seed) {
  TinyLm model;  // initialised from the generator the dispatcher seeded
  const auto path = qsdk_data_dir() / "zoo" /
                    ("tiny_lm_trained-" + std::string(kTrainedVersion) + "-seed" + std::to_string(seed) + ".pt");
  const std::string recipe = trained_recipe(seed);
  load_or_train(*model, path, recipe, "tiny_lm_trained", "the fortunes text", [&] { train_lm(model, seed); });
  return wrap_zoo_model(model, "tiny_lm_trained");
}

}  // namespace qsdk::zoo::detail
