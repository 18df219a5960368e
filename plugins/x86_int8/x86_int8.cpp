// x86-int8: what LibTorch 1.13's onednn int8 kernels take. uint8 affine
// activations, int8 symmetric per-channel weights, conv/linear with fused
// relu, add/mul (+ relu), hardswish, layer_norm, standalone batch_norm
// (+ relu), fixed-range sigmoid/hardsigmoid, and pooling, reshapes, gelu
// and mean that keep their input's qparams. (silu has no quantized kernel in
// LibTorch 1.13 and stays float.)
// No conv + add (+ relu) fusion: LibTorch 1.13 has no quantized::conv2d_add
// kernel, so a residual tail is conv (quantized output) then add_relu, as
// PyTorch's own onednn backend config does in 1.13.
//
// Target option `isa` (auto | vnni | avx2; the host resolves auto from the
// CPU, see qsdk/backend.h). Without VNNI, onednn's int8 conv and linear sum
// u8 x s8 pairs in saturating 16-bit lanes: with 8-bit weights a pair
// reaches 2 x 255 x 127 = 64770 > 32767, and outputs were measured up to 151
// steps off. isa=avx2 gives weights 7 bits ([-63, 63]): every pair then
// stays within int16 (2 x 255 x 63 = 32130) whatever the activations are,
// because weights are constants. (PyTorch's reduce_range narrows the
// activations instead; LibTorch has no 7-bit activation dtype, so inputs
// beyond the calibrated range still reach 255 there and overflow.)
#include "../common/rule_families.h"

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& options) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "x86-int8";
  b->version = kVersion;  // bundled: qsdk's own version
  b->vendor = "qsdk";
  b->description = "x86-64 CPUs: onednn int8 kernels, per-channel weights (7-bit without VNNI)";
  b->lowering = Lowering::OneDNN;
  // onednn's int8 kernels requantize in float32 and round ties to even
  // (pooling too): measured against the integer reference under every
  // declaration in bench/RESULTS_engine.md (bench/engine.sh).
  b->arithmetic.multiplier = Multiplier::Float32;
  b->arithmetic.rounding = b->arithmetic.pooling_rounding = b->arithmetic.elementwise_rounding = Rounding::HalfToEven;
  b->options = {{kTargetOptionName,
                 "int8 arithmetic of the CPU: vnni (8-bit weights), avx2 (7-bit weights, exact on 16-bit pair "
                 "sums); auto: detected",
                 kTargetOptionAuto,
                 {kTargetOptionAuto, "vnni", "avx2"}},
                bundled::linear_option()};
  // Anything but an explicit vnni (including auto from an older host) takes
  // the range that is exact on every x86-64 CPU.
  const bool vnni = option_value(*b, options, kTargetOptionName) == "vnni";

  bundled::FamilySpecs s;
  // PyTorch's x86 activations use a histogram observer that minimises L2
  // quantization error; MSE is its counterpart here.
  s.activation = spec::uint8_affine().with_observer(ObserverKind::MSE);
  s.weight = spec::int8_symmetric_per_channel(0, vnni ? 8 : 7);

  auto add = [&](std::vector<Rule> rules) {
    for (auto& r : rules) b->rules.push_back(std::move(r));
  };
  auto weighted = bundled::weighted_op_rules(s, {"aten::relu"});
  // linear=dynamic lowers to quantized::linear_dynamic (onednn has it).
  bundled::apply_linear_option(*b, options, s.weight, weighted);
  add(std::move(weighted));
  add(bundled::libtorch_quantized_op_rules(s));
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
