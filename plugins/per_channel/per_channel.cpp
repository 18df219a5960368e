// per-channel: a reference backend (quantize/dequantize only, no kernels)
// for studying widths: symmetric per-channel weights of 8, 4, 3 or 2 bits
// and activations of 16, 8, 4, 3 or 2 bits, chosen per run in the config:
//   backends: {per-channel: {weight_bits: 4, activation_bits: 8, linear: dynamic}}
#include <algorithm>
#include <stdexcept>

#include "../common/rule_families.h"

namespace {

int bits_option(const qsdk::Backend& b, const qsdk::BackendOptions& options, const std::string& name) {
  const std::string value = qsdk::option_value(b, options, name);
  for (const auto& o : b.options)
    if (o.name == name)
      for (const auto& allowed : o.allowed)
        if (allowed == value) return std::stoi(value);
  throw std::invalid_argument("option " + name + ": '" + value + "' is not one of the allowed widths");
}

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& options) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "per-channel";
  b->version = kVersion;  // bundled: qsdk's own version
  b->vendor = "qsdk";
  b->description = "reference Q/DQ with per-channel symmetric weights of selectable width";
  b->lowering = Lowering::Reference;
  // No kernels of its own: the float Q/DQ reference's arithmetic (float32, ties to even).
  b->arithmetic.multiplier = Multiplier::Float32;
  b->arithmetic.rounding = b->arithmetic.pooling_rounding = b->arithmetic.elementwise_rounding = Rounding::HalfToEven;
  b->options = {{"weight_bits", "weight width in bits (int8 storage)", "8", {"8", "4", "3", "2"}},
                {"activation_bits", "activation width in bits", "8", {"16", "8", "4", "3", "2"}},
                {"linear",
                 "static: calibrated activation qparams; dynamic: computed per batch at run time",
                 "static",
                 {"static", "dynamic"}}};

  const int weight_bits = bits_option(*b, options, "weight_bits");
  const int activation_bits = bits_option(*b, options, "activation_bits");

  bundled::FamilySpecs s;
  s.activation = activation_bits > 8 ? spec::int_affine(activation_bits) : spec::uint8_affine(activation_bits);
  s.weight = spec::int8_symmetric_per_channel(0, weight_bits);

  auto add = [&](std::vector<Rule> rules) {
    for (auto& r : rules) b->rules.push_back(std::move(r));
  };
  auto weighted = bundled::weighted_op_rules(s, {"aten::relu"});
  if (option_value(*b, options, "linear") == "dynamic") {
    // Dynamic linear (PyTorch's dynamic quantization): weights quantized
    // ahead of time, input qparams computed per batch, output in float.
    weighted.erase(std::remove_if(weighted.begin(), weighted.end(),
                                  [](const Rule& r) { return r.pattern.front() == "aten::linear"; }),
                   weighted.end());
    Rule dyn("linear_dynamic");
    dyn.match({"aten::linear"}).input(spec::dynamic_uint8()).weight(s.weight);
    weighted.push_back(dyn);
  }
  add(std::move(weighted));
  add(bundled::binary_rules(s, {"aten::add", "aten::mul", "aten::matmul"}, /*with_relu=*/false));
  add(bundled::unary_rules(s, {"aten::hardswish", "aten::gelu", "aten::layer_norm"}));
  add(bundled::shared_qparams_rules(
      s, {"aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_avg_pool2d", "aten::flatten", "aten::reshape",
          "aten::view", "aten::permute", "aten::transpose", "aten::cat"}));
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
