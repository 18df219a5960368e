// A pre-norm transformer encoder block written out op by op, so the traced
// graph shows the linears, matmuls and softmax that quantizer rules match
// (rather than one fused attention op).
#include <torch/torch.h>

#include <cmath>

#include "capture/zoo/zoo_internal.h"

namespace qsdk::zoo::detail {

namespace nn = torch::nn;

namespace {

constexpr std::int64_t kModel = 64, kHeads = 4, kHidden = 256;

struct SelfAttentionImpl : nn::Module {
  SelfAttentionImpl()
      : q_proj(register_module("q_proj", nn::Linear(kModel, kModel))),
        k_proj(register_module("k_proj", nn::Linear(kModel, kModel))),
        v_proj(register_module("v_proj", nn::Linear(kModel, kModel))),
        out_proj(register_module("out_proj", nn::Linear(kModel, kModel))) {}

  torch::Tensor forward(torch::Tensor x) {
    // -1 for the batch: the tracer bakes sizes in, and calibration batches are larger than the example.
    const auto seq = x.size(1);
    constexpr std::int64_t head_dim = kModel / kHeads;
    // [batch, seq, model] -> [batch, heads, seq, head_dim]
    auto heads = [&](torch::Tensor t) { return t.reshape({-1, seq, kHeads, head_dim}).transpose(1, 2); };
    auto q = heads(scoped("q_proj", [&] { return q_proj(x); }));
    auto k = heads(scoped("k_proj", [&] { return k_proj(x); }));
    auto v = heads(scoped("v_proj", [&] { return v_proj(x); }));
    auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
    auto attn = torch::matmul(torch::softmax(scores, -1), v);
    attn = attn.transpose(1, 2).reshape({-1, seq, kModel});
    return scoped("out_proj", [&] { return out_proj(attn); });
  }

  nn::Linear q_proj, k_proj, v_proj, out_proj;
};
TORCH_MODULE(SelfAttention);

struct MlpImpl : nn::Module {
  MlpImpl()
      : fc1(register_module("fc1", nn::Linear(kModel, kHidden))),
        act(register_module("act", nn::GELU())),
        fc2(register_module("fc2", nn::Linear(kHidden, kModel))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = scoped("fc1", [&] { return fc1(x); });
    x = scoped("act", [&] { return act(x); });
    return scoped("fc2", [&] { return fc2(x); });
  }

  nn::Linear fc1;
  nn::GELU act;
  nn::Linear fc2;
};
TORCH_MODULE(Mlp);

struct TransformerBlockImpl : nn::Module {
  TransformerBlockImpl()
      : ln1(register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({kModel})))),
        attn(register_module("attn", SelfAttention())),
        ln2(register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({kModel})))),
        mlp(register_module("mlp", Mlp())) {}

  torch::Tensor forward(torch::Tensor x) {
    auto h = scoped("ln1", [&] { return ln1(x); });
    x = x + scoped("attn", [&] { return attn(h); });
    h = scoped("ln2", [&] { return ln2(x); });
    return x + scoped("mlp", [&] { return mlp(h); });
  }

  nn::LayerNorm ln1;
  SelfAttention attn;
  nn::LayerNorm ln2;
  Mlp mlp;
};
TORCH_MODULE(TransformerBlock);

}  // namespace

ZooModel build_transformer_block() { return make_zoo_model(TransformerBlock(), "transformer_block"); }

}  // namespace qsdk::zoo::detail
