// arm: QNNPACK/XNNPACK-style int8. uint8 affine activations, int8 symmetric
// per-tensor weights, hardswish, layer_norm, standalone batch_norm (+ relu),
// fixed-range sigmoid/hardsigmoid, add, mul, cat, and pooling, reshapes, gelu
// and mean that keep their input's qparams.
#include "../common/rule_families.h"

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& options) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "arm";
  b->version = kVersion;  // bundled: qsdk's own version
  b->vendor = "qsdk";
  b->description = "ARM CPUs: qnnpack int8 kernels, per-tensor weights";
  b->lowering = Lowering::QNNPACK;
  // qnnpack's int8 kernels requantize in float32 and round ties to even
  // (pooling too): measured against the integer reference under every
  // declaration in bench/RESULTS_engine.md (bench/engine.sh).
  b->arithmetic.multiplier = Multiplier::Float32;
  b->arithmetic.rounding = b->arithmetic.pooling_rounding = b->arithmetic.elementwise_rounding = Rounding::HalfToEven;

  b->options = {bundled::linear_option()};

  bundled::FamilySpecs s;
  s.activation = spec::uint8_affine().with_observer(ObserverKind::MovingAverageMinMax);
  s.weight = spec::int8_symmetric();

  auto add = [&](std::vector<Rule> rules) {
    for (auto& r : rules) b->rules.push_back(std::move(r));
  };
  auto weighted = bundled::weighted_op_rules(s, {"aten::relu", "aten::hardtanh"});
  // linear=dynamic lowers to quantized::linear_dynamic (qnnpack has it).
  bundled::apply_linear_option(*b, options, s.weight, weighted);
  add(std::move(weighted));
  add(bundled::libtorch_quantized_op_rules(s));
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
