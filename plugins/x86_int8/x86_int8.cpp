// x86-int8: what LibTorch 1.13's onednn int8 kernels take. uint8 affine
// activations, int8 symmetric per-channel weights, conv/linear with fused
// relu, add (+ relu), pooling and reshapes that keep their input's qparams.
// No conv + add (+ relu) fusion: LibTorch 1.13 has no quantized::conv2d_add
// kernel, so a residual tail is conv (quantized output) then add_relu, as
// PyTorch's own onednn backend config does in 1.13.
#include "../common/rule_families.h"

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& /*options*/) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "x86-int8";
  b->version = "0.1.0";
  b->vendor = "qsdk";
  b->description = "x86 CPUs with VNNI: onednn int8 kernels, per-channel weights";
  b->lowering = Lowering::OneDNN;

  bundled::FamilySpecs s;
  // PyTorch's x86 activations use a histogram observer that minimises L2
  // quantization error; MSE is its counterpart here.
  s.activation = spec::uint8_affine().with_observer(ObserverKind::MSE);
  s.weight = spec::int8_symmetric_per_channel(0);

  auto add = [&](std::vector<Rule> rules) {
    for (auto& r : rules) b->rules.push_back(std::move(r));
  };
  add(bundled::weighted_op_rules(s, {"aten::relu"}));
  add(bundled::binary_rules(s, {"aten::add"}, /*with_relu=*/true));
  add(bundled::shared_qparams_rules(s, {"aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_avg_pool2d",
                                        "aten::flatten", "aten::reshape", "aten::view", "aten::cat"}));
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
