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

// The whole rule list at one width.
std::vector<qsdk::Rule> rules_at(const qsdk::Backend& b, const qsdk::BackendOptions& options, int weight_bits,
                                 int activation_bits) {
  using namespace qsdk;
  bundled::FamilySpecs s;
  s.activation = activation_bits > 8 ? spec::int_affine(activation_bits) : spec::uint8_affine(activation_bits);
  s.weight = spec::int8_symmetric_per_channel(0, weight_bits);

  std::vector<Rule> out;
  auto add = [&](std::vector<Rule> rules) {
    for (auto& r : rules) out.push_back(std::move(r));
  };
  auto weighted = bundled::weighted_op_rules(s, {"aten::relu"});
  bundled::apply_linear_option(b, options, s.weight, weighted);
  add(std::move(weighted));
  if (const auto bits = option_value(b, options, "embedding_bits"); bits != "float") {
    // Weight-only: the table quantized per row (one scale per token), the
    // looked-up rows dequantized, ids and output left as they are.
    Rule emb("embedding");
    emb.match({"aten::embedding"}).annotate(in(0, 0), spec::int8_symmetric_per_channel(0, std::stoi(bits)));
    out.push_back(std::move(emb));
  }
  add(bundled::binary_rules(s, {"aten::add", "aten::mul", "aten::matmul"}, /*with_relu=*/false));
  add(bundled::unary_rules(s, {"aten::hardswish", "aten::gelu", "aten::layer_norm"}));
  add(bundled::batch_norm_rules(s));
  add(bundled::shared_qparams_rules(s, {"aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_avg_pool2d",
                                        "aten::flatten", "aten::reshape", "aten::view", "aten::cat", "aten::mean"}));
  add(bundled::shared_qparams_rules(s, bundled::kViewOps));
  return out;
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
  b->rules = rules_at(*b, options, weight_bits, activation_bits);
  // Wider widths for mixed precision, narrowest first: 8-bit weights, 8-bit
  // activations, both, and 16-bit activations with 8-bit weights. Each is
  // the same rule list built at that width, so rule i of one is rule i of
  // the other; a rule offers a width only where its specs differ.
  std::vector<std::pair<int, int>> wider;
  for (const auto& [w, a] : std::vector<std::pair<int, int>>{{8, activation_bits}, {weight_bits, 8}, {8, 8}, {8, 16}})
    if (w >= weight_bits && a >= activation_bits && (w > weight_bits || a > activation_bits) &&
        std::find(wider.begin(), wider.end(), std::make_pair(w, a)) == wider.end())
      wider.emplace_back(w, a);
  std::stable_sort(wider.begin(), wider.end(),
                   [](const auto& x, const auto& y) { return x.first + x.second < y.first + y.second; });
  for (const auto& [w, a] : wider) {
    const auto alternative = rules_at(*b, options, w, a);
    for (std::size_t i = 0; i < b->rules.size(); ++i)
      if (alternative[i].annotations != b->rules[i].annotations)
        b->rules[i].offer_width("w" + std::to_string(w) + "a" + std::to_string(a), alternative[i]);
  }
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
