// per-channel: a reference backend (quantize/dequantize only, no kernels)
// for studying widths: symmetric per-channel weights of 8, 4, 3 or 2 bits
// and activations of 16, 8, 4, 3 or 2 bits, chosen per run in the config:
//   backends: {per-channel: {weight_bits: 4, activation_bits: 8, linear: dynamic, embedding_bits: 4}}
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
                bundled::linear_option(),
                {"embedding_bits",
                 "embedding tables, weight-only per row (int8 storage); float: leave them",
                 "8",
                 {"8", "4", "float"}}};

  const int weight_bits = bits_option(*b, options, "weight_bits");
  const int activation_bits = bits_option(*b, options, "activation_bits");

  bundled::FamilySpecs s;
  s.activation = activation_bits > 8 ? spec::int_affine(activation_bits) : spec::uint8_affine(activation_bits);
  s.weight = spec::int8_symmetric_per_channel(0, weight_bits);

  auto add = [&](std::vector<Rule> rules) {
    for (auto& r : rules) b->rules.push_back(std::move(r));
  };
  auto weighted = bundled::weighted_op_rules(s, {"aten::relu"});
  bundled::apply_linear_option(*b, options, s.weight, weighted);
  add(std::move(weighted));
  if (const auto bits = option_value(*b, options, "embedding_bits"); bits != "float") {
    // Weight-only: the table quantized per row (one scale per token), the
    // looked-up rows dequantized, ids and output left as they are.
    Rule emb("embedding");
    emb.match({"aten::embedding"}).annotate(in(0, 0), spec::int8_symmetric_per_channel(0, std::stoi(bits)));
    b->rules.push_back(std::move(emb));
  }
  add(bundled::binary_rules(s, {"aten::add", "aten::mul", "aten::matmul"}, /*with_relu=*/false));
  add(bundled::unary_rules(s, {"aten::hardswish", "aten::gelu", "aten::layer_norm"}));
  add(bundled::batch_norm_rules(s));
  add(bundled::shared_qparams_rules(s, {"aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_avg_pool2d",
                                        "aten::flatten", "aten::reshape", "aten::view", "aten::cat", "aten::mean"}));
  add(bundled::shared_qparams_rules(s, bundled::kViewOps));
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
