// Rule validation: every way a plugin's declared rules can be wrong is
// caught at load, with a message naming the rule.
#include <doctest/doctest.h>

#include <algorithm>

#include "plugins/rule_validation.h"

using namespace qsdk;

namespace {

// A stand-in op registry, so these tests need no LibTorch ops.
std::optional<OpSchema> fake_schema(const std::string& op) {
  if (op == "aten::conv2d") return OpSchema{7, {"input", "weight", "bias", "stride", "padding", "dilation", "groups"}};
  if (op == "aten::relu") return OpSchema{1, {"self"}};
  if (op == "aten::add") return OpSchema{3, {"self", "other", "alpha"}};
  if (op == "aten::max_pool2d")
    return OpSchema{6, {"self", "kernel_size", "stride", "padding", "dilation", "ceil_mode"}};
  return std::nullopt;
}

Backend valid_backend() {
  Backend b;
  b.name = "test-backend";
  b.version = "1.0";
  Rule conv("conv_relu");
  conv.match({"aten::conv2d", "aten::relu"})
      .input(spec::uint8_affine())
      .weight(spec::int8_symmetric_per_channel(0))
      .bias(spec::derived_bias())
      .output(spec::uint8_affine());
  Rule pool("pool");
  pool.match({"aten::max_pool2d"}).input(spec::uint8_affine()).output(spec::shared_with(in(0, 0)));
  b.rules = {conv, pool};
  return b;
}

std::string only_problem(const Backend& b) {
  auto problems = validate_backend(b, fake_schema);
  REQUIRE(problems.size() == 1);
  return problems.front();
}

}  // namespace

TEST_CASE("a well-formed backend has no problems") { CHECK(validate_backend(valid_backend(), fake_schema).empty()); }

TEST_CASE("empty pattern") {
  auto b = valid_backend();
  b.rules[1].pattern.clear();
  CHECK(only_problem(b) == "rule 1 'pool' has an empty pattern");
}

TEST_CASE("per-channel spec without an axis") {
  auto b = valid_backend();
  b.rules[0].annotations[1].spec.axis = -1;
  CHECK(only_problem(b) == "rule 0 'conv_relu' spec for in(0,1): per-channel spec needs a channel axis (axis >= 0)");
}

TEST_CASE("quant_min >= quant_max") {
  auto b = valid_backend();
  b.rules[0].annotations[0].spec.with_range(10, 10);
  CHECK(only_problem(b) == "rule 0 'conv_relu' spec for in(0,0): quant_min (10) must be below quant_max (10)");
}

TEST_CASE("range outside the storage type") {
  auto b = valid_backend();
  b.rules[0].annotations[0].spec.with_range(0, 300);
  CHECK(only_problem(b) == "rule 0 'conv_relu' spec for in(0,0): range [0, 300] does not fit uint8 [0, 255]");
}

TEST_CASE("unknown op name") {
  auto b = valid_backend();
  b.rules[0].pattern[1] = "aten::relu7";
  CHECK(only_problem(b) ==
        "rule 0 'conv_relu' pattern names unknown op 'aten::relu7' (expected a qualified LibTorch op such as "
        "aten::conv2d)");
}

TEST_CASE("edges outside the pattern or inside it") {
  auto b = valid_backend();
  SUBCASE("node index past the end") {
    b.rules[0].annotate(in(5, 1), spec::uint8_affine());
    CHECK(only_problem(b).find("node 5 is outside the pattern (0..1)") != std::string::npos);
  }
  SUBCASE("inner output") {
    b.rules[0].annotate(out(0), spec::uint8_affine());
    CHECK(only_problem(b).find("only the last op's output leaves a pattern") != std::string::npos);
  }
  SUBCASE("operand index past the op's arity") {
    b.rules[0].annotate(in(1, 3), spec::uint8_affine());
    CHECK(only_problem(b).find("aten::relu has only 1 inputs") != std::string::npos);
  }
  SUBCASE("the chained value") {
    b.rules[0].annotate(in(1, 0), spec::uint8_affine());
    CHECK(only_problem(b).find("previous op's output") != std::string::npos);
  }
}

TEST_CASE("shared and derived specs must point at quantized edges of the same rule") {
  auto b = valid_backend();
  SUBCASE("shared with an unannotated edge") {
    b.rules[1].annotations[1].spec = spec::shared_with(in(0, 1));
    CHECK(only_problem(b).find("shares with in(0,1), which the rule does not annotate") != std::string::npos);
  }
  SUBCASE("derived from a float edge") {
    b.rules[0].annotations[0].spec = spec::float_();
    auto problems = validate_backend(b, fake_schema);
    CHECK(std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("derives from in(0,0), which the rule does not quantize") != std::string::npos;
    }));
  }
}

TEST_CASE("fixed qparams need a positive scale and an in-range zero point") {
  auto b = valid_backend();
  b.rules[1].annotations[1].spec = spec::fixed(0.0, 300);
  auto problems = validate_backend(b, fake_schema);
  CHECK(problems.size() == 2);
}

TEST_CASE("backend identity and duplicate rule names") {
  auto b = valid_backend();
  b.name = "Bad Name";
  b.rules[1].name = "conv_relu";
  auto problems = validate_backend(b, fake_schema);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find("backend name 'Bad Name'") == 0);
  CHECK(problems[1] == "rule 1 'conv_relu': name used by an earlier rule");
}

TEST_CASE("normalized specs drop fields their kind ignores") {
  QuantSpec shared = spec::shared_with(in(0, 0));
  shared.quant_max = 17;  // meaningless for a shared spec
  CHECK(normalized(shared) == spec::shared_with(in(0, 0)));
  QuantSpec per_tensor = spec::uint8_affine();
  per_tensor.axis = 3;  // meaningless per-tensor
  CHECK(normalized(per_tensor) == spec::uint8_affine());
}

TEST_CASE("LibTorch's registry knows aten ops and not invented ones") {
  const auto conv = torch_op_schema("aten::conv2d");
  REQUIRE(conv.has_value());
  CHECK(conv->arity == 7);
  CHECK(conv->argument_names ==
        std::vector<std::string>{"input", "weight", "bias", "stride", "padding", "dilation", "groups"});
  // Overloads' arguments are merged: add.Tensor and add.Scalar both have alpha.
  const auto add = torch_op_schema("aten::add");
  REQUIRE(add.has_value());
  CHECK(std::find(add->argument_names.begin(), add->argument_names.end(), "alpha") != add->argument_names.end());
  CHECK_FALSE(torch_op_schema("aten::conv9d").has_value());
  CHECK_FALSE(torch_op_schema("conv2d").has_value());
  CHECK_FALSE(torch_op_schema("::").has_value());
}

TEST_CASE("100,000 copies of one rule: the problems are counted, and only the first few are listed") {
  Backend b = valid_backend();
  const Rule conv = b.rules[0];
  b.rules.assign(100000, conv);
  const auto problems = validate_backend(b, fake_schema);
  // Each copy after the first: its name is taken, and it conflicts with rule 0.
  REQUIRE(problems.size() == kMaxListedProblems + 1);
  CHECK(problems[0] == "rule 1 'conv_relu': name used by an earlier rule");
  CHECK(problems[1].find("rule 1 'conv_relu' conflicts with rule 0 'conv_relu'") == 0);
  CHECK(problems.back() == "and 199978 more problems (199998 in all)");
  std::size_t length = 0;
  for (const auto& p : problems) length += p.size();
  CHECK(length < 4000);
}

TEST_CASE("100,000 distinct rules are valid, and a huge rule name is cut short in messages") {
  Backend b = valid_backend();
  const Rule conv = b.rules[0];
  b.rules.clear();
  for (int i = 0; i < 100000; ++i) {
    Rule r = conv;
    r.name = "conv_" + std::to_string(i);
    r.priority = i;  // distinct, so no two rules conflict
    b.rules.push_back(r);
  }
  CHECK(validate_backend(b, fake_schema).empty());

  b.rules.resize(2);
  b.rules[1].name = std::string(1 << 20, 'x');
  b.rules[1].pattern = {"aten::frobnicate"};
  const auto problems = validate_backend(b, fake_schema);
  REQUIRE_FALSE(problems.empty());
  CHECK(problems[0].find("rule 1 '" + std::string(80, 'x') + "...' pattern names unknown op") == 0);
  CHECK(problems[0].size() < 300);
}

TEST_CASE("conditions are checked against the op's schema, with did-you-mean") {
  auto with = [](Condition c) {
    Backend b = valid_backend();
    b.rules[0].when(std::move(c));
    return b;
  };
  CHECK(validate_backend(with(cond::arg("groups").eq(1)), fake_schema).empty());
  CHECK(validate_backend(with(cond::arg("stride").in({1, 2})), fake_schema).empty());
  CHECK(validate_backend(with(cond::input_dtype(0).in({"float32", "float16"})), fake_schema).empty());
  CHECK(validate_backend(with(cond::arg("self").at_node(1).ne(0)), fake_schema).empty());

  CHECK(only_problem(with(cond::arg("group").eq(1))) ==
        "rule 0 'conv_relu' condition 0 (node(0).group == 1): aten::conv2d has no argument 'group' (did you mean "
        "'groups'?)");
  CHECK(only_problem(with(cond::arg("colour").eq(1))) ==
        "rule 0 'conv_relu' condition 0 (node(0).colour == 1): aten::conv2d has no argument 'colour' (known: input, "
        "weight, bias, stride, padding, dilation, groups)");
  // The argument is looked up on the op at the condition's node.
  CHECK(only_problem(with(cond::arg("groups").at_node(1).eq(1))).find("aten::relu has no argument 'groups'") !=
        std::string::npos);
  CHECK(only_problem(with(cond::arg("groups").at_node(2).eq(1))).find("node 2 is outside the pattern (0..1)") !=
        std::string::npos);
  CHECK(only_problem(with(cond::input_rank(9).eq(4))).find("aten::conv2d has no input 9 (it takes 7)") !=
        std::string::npos);
  CHECK(only_problem(with(cond::input_dtype(0).eq("float33")))
            .find("unknown dtype 'float33' (did you mean "
                  "'float32'?)") != std::string::npos);
  CHECK(only_problem(with(cond::input_dtype(0).eq(1))).find("a dtype is compared by name") != std::string::npos);
  CHECK(only_problem(with(cond::input_rank(0).eq("four"))).find("rank is compared with numbers") != std::string::npos);
  CHECK(only_problem(with(cond::input_dim(0, 1).between(8, 4))).find("range [8, 4] is empty") != std::string::npos);
  CHECK(only_problem(with(cond::input_is_constant(1).eq(2))).find("constant is 0 or 1") != std::string::npos);
  CHECK(only_problem(with(cond::arg("groups").in(std::vector<double>{}))).find("in needs a value") !=
        std::string::npos);
}

TEST_CASE("two rules that differ only in their conditions do not conflict") {
  Backend b = valid_backend();
  Rule depthwise = b.rules[0];
  depthwise.name = "conv_relu_depthwise";
  depthwise.when(cond::arg("groups").ne(1));
  b.rules[0].when(cond::arg("groups").eq(1));
  b.rules.push_back(depthwise);
  CHECK(validate_backend(b, fake_schema).empty());
}

TEST_CASE("a rule's wider widths: valid specs on the rule's own edges, each named once") {
  auto b = valid_backend();
  Rule wide = b.rules[0];
  b.rules[0].offer_width("w8a16", wide);
  CHECK(validate_backend(b, fake_schema).empty());

  auto other_edges = b;
  other_edges.rules[0].widths[0].annotations.pop_back();
  CHECK(only_problem(other_edges).find("width 'w8a16' annotates other edges than the rule") != std::string::npos);

  auto twice = b;
  twice.rules[0].offer_width("w8a16", wide);
  CHECK(only_problem(twice).find("width 'w8a16' is unnamed or declared twice") != std::string::npos);

  auto bad_spec = b;
  bad_spec.rules[0].widths[0].annotations[1].spec.axis = -1;
  CHECK(only_problem(bad_spec).find("width 'w8a16'") != std::string::npos);
  CHECK(only_problem(bad_spec).find("needs a channel axis") != std::string::npos);
}
