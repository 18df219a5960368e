#include "rule_families.h"

#include <algorithm>

namespace qsdk::bundled {
namespace {

std::string short_name(const std::string& op) {
  auto pos = op.find("::");
  return pos == std::string::npos ? op : op.substr(pos + 2);
}

std::string chain_name(const std::vector<std::string>& ops) {
  std::string name;
  for (const auto& op : ops) name += (name.empty() ? "" : "_") + short_name(op);
  return name;
}

// conv2d also takes unbatched (C, H, W) input, which the int8 kernels do
// not; an unknown rank is left for the op to decide.
Condition input_is_4d() { return cond::input_rank(0).eq(4).or_unknown(); }

}  // namespace

std::vector<Rule> weighted_op_rules(const FamilySpecs& s, const std::vector<std::string>& fused_activations) {
  std::vector<Rule> rules;
  for (const std::string op : {"aten::conv2d", "aten::linear"}) {
    std::vector<std::vector<std::string>> chains{{op}};
    if (op == "aten::conv2d") chains.push_back({op, "aten::batch_norm"});
    const std::size_t base = chains.size();
    for (std::size_t i = 0; i < base; ++i)
      for (const auto& act : fused_activations) {
        auto chain = chains[i];
        chain.push_back(act);
        chains.push_back(chain);
      }
    for (const auto& chain : chains) {
      Rule r(chain_name(chain));
      r.match(chain).with_priority(static_cast<int>(chain.size()));
      r.input(s.activation).weight(s.weight).bias(s.bias).output(s.activation);
      if (op == "aten::conv2d") r.when(input_is_4d());
      rules.push_back(std::move(r));
    }
  }
  return rules;
}

std::vector<Rule> conv_add_rules(const FamilySpecs& s) {
  std::vector<Rule> rules;
  for (const auto& chain : {std::vector<std::string>{"aten::conv2d", "aten::add"},
                            std::vector<std::string>{"aten::conv2d", "aten::add", "aten::relu"},
                            std::vector<std::string>{"aten::conv2d", "aten::batch_norm", "aten::add"},
                            std::vector<std::string>{"aten::conv2d", "aten::batch_norm", "aten::add", "aten::relu"}}) {
    const int add_index = chain[1] == "aten::add" ? 1 : 2;
    Rule r(chain_name(chain));
    r.match(chain).with_priority(static_cast<int>(chain.size()));
    r.input(s.activation).weight(s.weight).bias(s.bias).output(s.activation);
    r.annotate(in(add_index, 1), s.activation);  // the residual operand
    r.when(input_is_4d());
    rules.push_back(std::move(r));
  }
  return rules;
}

std::vector<Rule> binary_rules(const FamilySpecs& s, const std::vector<std::string>& ops, bool with_relu) {
  std::vector<Rule> rules;
  for (const auto& op : ops) {
    std::vector<std::vector<std::string>> chains{{op}};
    if (with_relu) chains.push_back({op, "aten::relu"});
    for (const auto& chain : chains) {
      Rule r(chain_name(chain));
      r.match(chain).with_priority(static_cast<int>(chain.size()));
      r.annotate(in(0, 0), s.activation).annotate(in(0, 1), s.activation).output(s.activation);
      rules.push_back(std::move(r));
    }
  }
  return rules;
}

std::vector<Rule> shared_qparams_rules(const FamilySpecs& s, const std::vector<std::string>& ops) {
  std::vector<Rule> rules;
  for (const auto& op : ops) {
    Rule r(short_name(op));
    r.match({op}).input(s.activation).output(spec::shared_with(in(0, 0)));
    rules.push_back(std::move(r));
  }
  return rules;
}

std::vector<Rule> unary_rules(const FamilySpecs& s, const std::vector<std::string>& ops) {
  std::vector<Rule> rules;
  for (const auto& op : ops) {
    Rule r(short_name(op));
    r.match({op}).input(s.activation).output(s.activation);
    rules.push_back(std::move(r));
  }
  return rules;
}

std::vector<Rule> batch_norm_rules(const FamilySpecs& s) {
  std::vector<Rule> rules;
  for (const auto& chain :
       {std::vector<std::string>{"aten::batch_norm"}, std::vector<std::string>{"aten::batch_norm", "aten::relu"}}) {
    Rule r(chain_name(chain));
    r.match(chain).with_priority(static_cast<int>(chain.size()));
    r.input(s.activation).output(s.activation);
    r.when(input_is_4d());  // the kernels are 2d
    rules.push_back(std::move(r));
  }
  return rules;
}

std::vector<Rule> fixed_output_rules(const FamilySpecs& s, const std::vector<std::string>& ops) {
  std::vector<Rule> rules;
  for (const auto& op : ops) {
    Rule r(short_name(op));
    const bool is_tanh = op == "aten::tanh";
    r.match({op}).input(s.activation).output(is_tanh ? spec::fixed(2.0 / 256, 128) : spec::fixed(1.0 / 256, 0));
    rules.push_back(std::move(r));
  }
  return rules;
}

std::vector<Rule> libtorch_quantized_op_rules(const FamilySpecs& s) {
  std::vector<Rule> rules;
  auto add = [&](std::vector<Rule> more) {
    for (auto& r : more) rules.push_back(std::move(r));
  };
  add(binary_rules(s, {"aten::add", "aten::mul"}, /*with_relu=*/true));
  add(unary_rules(s, {"aten::hardswish", "aten::layer_norm"}));
  add(fixed_output_rules(s, {"aten::sigmoid", "aten::hardsigmoid"}));
  add(batch_norm_rules(s));
  add(shared_qparams_rules(s, {"aten::max_pool2d", "aten::avg_pool2d", "aten::adaptive_avg_pool2d", "aten::flatten",
                               "aten::reshape", "aten::view", "aten::cat", "aten::gelu", "aten::mean"}));
  add(shared_qparams_rules(s, kViewOps));
  return rules;
}

BackendOption linear_option() {
  return {"linear",
          "static: calibrated activation qparams; dynamic: computed per batch at run time",
          "static",
          {"static", "dynamic"}};
}

void apply_linear_option(const Backend& b, const BackendOptions& options, const QuantSpec& weight,
                         std::vector<Rule>& rules) {
  if (option_value(b, options, "linear") != "dynamic") return;
  rules.erase(
      std::remove_if(rules.begin(), rules.end(), [](const Rule& r) { return r.pattern.front() == "aten::linear"; }),
      rules.end());
  Rule dyn("linear_dynamic");
  dyn.match({"aten::linear"}).input(spec::dynamic_uint8()).weight(weight);
  rules.push_back(dyn);
}

}  // namespace qsdk::bundled
