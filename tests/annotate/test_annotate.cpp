// Annotate: the exact annotation of each pattern for each bundled backend,
// sharing, derived and fixed specs, overrides, constraints, composition.
#include <torch/csrc/jit/ir/irparser.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "annotate/annotator.h"
#include "annotate/report.h"
#include "capture/capture.h"
#include "common/error.h"
#include "plugins/plugin_registry.h"
#include "plugins/rule_validation.h"
#include "rule_families.h"
#include "support/process.h"
#include "support/torch_doctest.h"

using namespace qsdk;
using torch::jit::Node;

namespace {

const PluginRegistry& bundled_registry() {
  static PluginRegistry registry = [] {
    PluginRegistry r;
    r.load_directory(QSDK_TEST_BUNDLED_PLUGIN_DIR);
    return r;
  }();
  return registry;
}

const Backend& backend(const std::string& name) { return *bundled_registry().find(name)->backend; }

// The n-th node of a kind, in graph order.
const Node* nth(const Graph& g, const std::string& kind, int n = 0) {
  for (const Node* node : g.nodes())
    if (node->kind().toQualString() == kind && n-- == 0) return node;
  FAIL("no " << kind << " node");
  return nullptr;
}

const NodeReport& report(const Annotation& a, const Node* n) {
  for (const auto& r : a.nodes)
    if (r.node == n) return r;
  FAIL("node not in report");
  return a.nodes.front();
}

const QuantSpec& spec_of(const Annotation& a, EdgeKey e) {
  const AnnotatedEdge* ae = a.edge(e);
  REQUIRE(ae != nullptr);
  return ae->spec;
}

EdgeKey input(const Node* n, int operand, int element = -1) { return EdgeKey{n, operand, element}; }
EdgeKey output(const Node* n) { return EdgeKey{n, EdgeKey::kOutput, -1}; }

std::string rule_of(const Annotation& a, const Node* n) {
  const MatchRecord* m = a.match_of(n);
  return m ? m->rule : "";
}

}  // namespace

TEST_CASE("conv-bn-relu: one fused match, per backend weight specs, derived bias") {
  auto m = capture_model("zoo:conv_bn_relu");
  const Graph& g = *m.graph;
  const Node* conv = nth(g, "aten::conv2d");
  const Node* relu = nth(g, "aten::relu");

  SUBCASE("x86-int8: int8 symmetric per-channel weights on axis 0") {
    auto a = annotate(g, backend("x86-int8"));
    REQUIRE(a.matches.size() == 1);
    CHECK(a.matches[0].rule == "conv2d_batch_norm_relu");
    CHECK(a.matches[0].nodes.size() == 3);
    const auto& in = spec_of(a, input(conv, 0));
    CHECK(in.kind == SpecKind::Observed);
    CHECK(in.dtype == DType::UInt8);
    CHECK(in.quant_max == 255);
    const auto& w = spec_of(a, input(conv, 1));
    CHECK(w.dtype == DType::Int8);
    CHECK(w.scheme == Scheme::Symmetric);
    CHECK(w.granularity == Granularity::PerChannel);
    CHECK(w.axis == 0);
    const AnnotatedEdge* bias = a.edge(input(conv, 2));
    REQUIRE(bias != nullptr);
    CHECK(bias->spec.kind == SpecKind::Derived);
    CHECK(bias->spec.dtype == DType::Int32);
    REQUIRE(bias->sources.size() == 2);
    CHECK(bias->sources[0] == input(conv, 0));
    CHECK(bias->sources[1] == input(conv, 1));
    CHECK(spec_of(a, output(relu)).dtype == DType::UInt8);
    // The inner outputs of the fused chain carry no spec.
    CHECK(a.edge(output(conv)) == nullptr);
  }
  SUBCASE("arm: per-tensor weights") {
    auto a = annotate(g, backend("arm"));
    const auto& w = spec_of(a, input(conv, 1));
    CHECK(w.granularity == Granularity::PerTensor);
    CHECK(w.quant_min == -127);
  }
  SUBCASE("per-channel with 4-bit weights and 16-bit activations") {
    auto b = bundled_registry().instantiate("per-channel", {{"weight_bits", "4"}, {"activation_bits", "16"}});
    auto a = annotate(g, *b);
    CHECK(spec_of(a, input(conv, 1)).quant_min == -7);
    CHECK(spec_of(a, input(conv, 1)).quant_max == 7);
    CHECK(spec_of(a, input(conv, 0)).dtype == DType::Int16);
  }
}

TEST_CASE("cat of two conv branches: every tensor around the cat shares one group") {
  auto m = capture_model("zoo:conv_cat");
  const Graph& g = *m.graph;
  auto a = annotate(g, backend("x86-int8"));
  const Node* cat = nth(g, "aten::cat");
  CHECK(rule_of(a, cat) == "cat");
  CHECK(spec_of(a, input(cat, 0, 1)).kind == SpecKind::Shared);
  CHECK(spec_of(a, output(cat)).kind == SpecKind::Shared);
  const int group = a.group_of(input(cat, 0, 0));
  REQUIRE(group >= 0);
  CHECK(a.group_of(input(cat, 0, 1)) == group);
  CHECK(a.group_of(output(cat)) == group);
  // The branch convs' outputs are the cat's inputs: the same observer.
  CHECK(a.group_of(output(nth(g, "aten::conv2d", 0))) == group);
  CHECK(a.group_of(output(nth(g, "aten::conv2d", 1))) == group);
}

TEST_CASE("max_pool2d shares its input's qparams, after a float op it stays float") {
  auto m = capture_model("zoo:pooling");
  const Graph& g = *m.graph;
  auto a = annotate(g, backend("x86-int8"));
  const Node* pool = nth(g, "aten::max_pool2d");
  CHECK(spec_of(a, output(pool)).kind == SpecKind::Shared);
  CHECK(a.group_of(output(pool)) == a.group_of(input(pool, 0)));
  CHECK(a.group_of(output(pool)) == a.group_of(output(nth(g, "aten::conv2d", 0))));

  // Skip the conv that feeds the pool: the pool has nothing to pass through.
  Override skip;
  skip.node_id = g.id(nth(g, "aten::conv2d", 0));
  skip.quantize = false;
  auto b = annotate(g, backend("x86-int8"), {{skip}});
  CHECK(report(b, pool).status == NodeStatus::Float);
  CHECK(report(b, pool).reason.find("input not quantized: its producer %") == 0);
}

TEST_CASE("arm: hardsigmoid gets fixed qparams, hardswish and mul are quantized") {
  auto m = capture_model("zoo:mbv3_block");
  const Graph& g = *m.graph;
  auto a = annotate(g, backend("arm"));
  const auto& out = spec_of(a, output(nth(g, "aten::hardsigmoid")));
  CHECK(out.kind == SpecKind::Fixed);
  CHECK(out.scale == doctest::Approx(1.0 / 256));
  CHECK(out.zero_point == 0);
  CHECK(report(a, nth(g, "aten::hardswish")).status == NodeStatus::Quantized);
  CHECK(rule_of(a, nth(g, "aten::mul")) == "mul");
  // x86-int8 has the same squeeze-excite coverage (LibTorch's quantized kernels are engine-independent).
  auto x = annotate(g, backend("x86-int8"));
  CHECK(report(x, nth(g, "aten::hardswish")).status == NodeStatus::Quantized);
  CHECK(spec_of(x, output(nth(g, "aten::hardsigmoid"))).kind == SpecKind::Fixed);
  CHECK(rule_of(x, nth(g, "aten::mul")) == "mul");
}

TEST_CASE("an override skips one module, one that matches nothing warns") {
  auto m = capture_model("zoo:resnet18");
  const Graph& g = *m.graph;
  YAML::Node list = YAML::Load("- {module: 'layer4.*', quantize: false}\n- {module: 'layer9.*', quantize: false}\n");
  auto overrides = parse_overrides(list, "cfg.yaml");
  auto a = annotate(g, backend("x86-int8"), {overrides});
  int skipped = 0;
  for (const auto& r : a.nodes) {
    const bool in_layer4 = r.module_path.rfind("layer4.", 0) == 0;
    CHECK((r.status == NodeStatus::Skipped) == in_layer4);
    if (in_layer4) {
      ++skipped;
      CHECK(r.reason.find("skipped by override at cfg.yaml:1:3") == 0);
    }
  }
  CHECK(skipped > 10);
  REQUIRE(a.warnings.size() == 1);
  CHECK(a.warnings[0] == "override at cfg.yaml:2:3 (module 'layer9.*': quantize: false) matched no node");
  CHECK(a.overrides[0].node_ids.size() == std::size_t(skipped));
}

TEST_CASE("an override re-specs the activations of one op kind and says so") {
  auto m = capture_model("zoo:linear_relu");
  const Graph& g = *m.graph;
  auto overrides = parse_overrides(YAML::Load("- {op: aten::linear, activation: {quant_max: 15}}"), "cfg.yaml");
  auto a = annotate(g, backend("x86-int8"), {overrides});
  const Node* fc1 = nth(g, "aten::linear", 0);
  CHECK(spec_of(a, input(fc1, 0)).quant_max == 15);
  const auto plain = annotate(g, backend("x86-int8"), {});
  CHECK(spec_of(a, input(fc1, 1)) == spec_of(plain, input(fc1, 1)));  // weights untouched
  CHECK(a.edge(input(fc1, 0))->overridden_by == "cfg.yaml:1:3");
  CHECK(a.overrides[0].edges_changed > 0);
}

TEST_CASE("override YAML errors name file, line and column") {
  CHECK_THROWS_WITH(parse_overrides(YAML::Load("- {modul: 'x'}"), "c.yaml"),
                    doctest::Contains("c.yaml:1:4: unknown key 'modul' (did you mean 'module'?)"));
  CHECK_THROWS_WITH(parse_overrides(YAML::Load("- {module: x, quantize: false, weight: {dtype: int8}}"), "c.yaml"),
                    doctest::Contains("c.yaml:1:3: conflicting override"));
  CHECK_THROWS_WITH(parse_overrides(YAML::Load("- {op: conv2d, quantize: false}"), "c.yaml"),
                    doctest::Contains("op must be qualified, e.g. aten::conv2d"));
  CHECK_THROWS_WITH(parse_overrides(YAML::Load("- {node: 3, activation: {dtype: uint9}}"), "c.yaml"),
                    doctest::Contains("c.yaml:1:33: unknown dtype 'uint9'"));
}

namespace {

// A backend with one conv2d rule, restricted by `restrict` (a condition or
// a code constraint).
Backend restricted_conv_backend(const std::function<void(Rule&)>& restrict) {
  Backend b;
  b.name = "restricted";
  b.version = "1";
  Rule conv("conv2d");
  conv.match({"aten::conv2d"}).input(spec::uint8_affine()).weight(spec::int8_symmetric()).output(spec::uint8_affine());
  restrict(conv);
  b.rules = {conv};
  return b;
}

}  // namespace

TEST_CASE("conditions are evaluated on the captured graph, and a failed one is reported with its fact") {
  auto m = capture_model("zoo:mbv3_block");
  const Graph& g = *m.graph;
  const Node* pointwise = nth(g, "aten::conv2d", 0);  // 1x1, groups 1, input [1,16,56,56]
  const Node* depthwise = nth(g, "aten::conv2d", 1);  // 3x3, groups 64, input [1,64,56,56]
  // Each condition, whether it holds for the two convs, and the reason a
  // failing one gives.
  struct Case {
    Condition condition;
    bool pointwise_holds, depthwise_holds;
    std::string reason;  // of the first conv that fails
  };
  const Case cases[] = {
      {cond::arg("groups").eq(1), true, false, "node(0).groups == 1 (it is 64)"},
      {cond::arg("groups").ne(1), false, true, "node(0).groups != 1 (it is 1)"},
      {cond::arg("stride").eq({1, 1}), true, true, ""},
      {cond::arg("stride").eq({2, 2}), false, false, "node(0).stride == [2, 2] (it is [1, 1])"},
      {cond::arg("stride").in({1, 2}), true, true, ""},
      {cond::arg("padding").between(0, 0), true, false, "node(0).padding in [0, 0] (it is [1, 1])"},
      {cond::input_rank(0).eq(4), true, true, ""},
      {cond::input_rank(0).eq(3), false, false, "in(0,0).rank == 3 (it is 4)"},
      {cond::input_dim(0, 1).between(1, 16), true, false, "in(0,0).dim[1] in [1, 16] (it is 64)"},
      {cond::input_dim(0, -1).eq(56), true, true, ""},
      {cond::input_dtype(0).eq("float32"), true, true, ""},
      {cond::input_dtype(0).in({"float16", "bfloat16"}), false, false,
       "in(0,0).dtype in {float16, bfloat16} (it is float32)"},
      {cond::input_is_constant(1).eq(true), true, true, ""},
      {cond::input_is_constant(0).eq(true), false, false, "in(0,0).constant == 1 (it is 0)"},
      // A fact the graph does not have fails, unless the condition says otherwise.
      {cond::input_dim(0, 9).eq(1), false, false, "in(0,0).dim[9] == 1 (it is unknown)"},
      {cond::input_dim(0, 9).eq(1).or_unknown(), true, true, ""},
  };
  for (const auto& c : cases) {
    CAPTURE(to_string(c.condition));
    const Backend b = restricted_conv_backend([&](Rule& r) { r.when(c.condition); });
    REQUIRE(validate_backend(b).empty());
    auto a = annotate(g, b);
    CHECK((report(a, pointwise).status == NodeStatus::Quantized) == c.pointwise_holds);
    CHECK((report(a, depthwise).status == NodeStatus::Quantized) == c.depthwise_holds);
    const Node* failing = !c.pointwise_holds ? pointwise : !c.depthwise_holds ? depthwise : nullptr;
    if (failing) CHECK(report(a, failing).reason == "rule 'conv2d': condition failed: " + c.reason);
  }
}

TEST_CASE("a code constraint rejects grouped convs, and the report marks it as code") {
  const Backend b = restricted_conv_backend([](Rule& r) {
    r.require("groups == 1", [](const MatchView& mv) { return mv.node(0).int_arg(6).value_or(1) == 1; });
  });
  REQUIRE(validate_backend(b).empty());
  auto m = capture_model("zoo:mbv3_block");
  const Graph& g = *m.graph;
  auto a = annotate(g, b);
  const Node* depthwise = nth(g, "aten::conv2d", 1);
  CHECK(report(a, depthwise).status == NodeStatus::Float);
  CHECK(report(a, depthwise).reason == "rule 'conv2d': code constraint failed: groups == 1");
  CHECK(report(a, nth(g, "aten::conv2d", 0)).status == NodeStatus::Quantized);
}

TEST_CASE("a constraint that throws becomes an error naming backend, rule and node") {
  Backend b;
  b.name = "throws";
  b.version = "1";
  Rule relu("relu");
  relu.match({"aten::relu"}).input(spec::uint8_affine()).output(spec::uint8_affine());
  relu.require("explodes", [](const MatchView&) -> bool { throw std::runtime_error("boom"); });
  b.rules = {relu};
  auto m = capture_model("zoo:linear_relu");
  CHECK_THROWS_WITH(annotate(*m.graph, b),
                    "backend 'throws': rule 'relu' code constraint 'explodes' threw on %1 (aten::relu, relu): boom");
}

TEST_CASE("two conflicting rules fail validation") {
  Backend b;
  b.name = "conflict";
  b.version = "1";
  Rule first("add_u8"), second("add_i8");
  first.match({"aten::add"}).input(spec::uint8_affine()).output(spec::uint8_affine());
  second.match({"aten::add"}).input(spec::int_affine()).output(spec::int_affine());
  b.rules = {first, second};
  auto problems = validate_backend(b);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] ==
        "rule 1 'add_i8' conflicts with rule 0 'add_u8': same pattern, priority and conditions, so it can never "
        "apply; give one a priority or a condition");
}

TEST_CASE("priority decides between rules of one op, then pattern length") {
  Backend b;
  b.name = "prio";
  b.version = "1";
  Rule plain("conv_relu"), special("conv_alone");
  plain.match({"aten::conv2d", "aten::relu"}).input(spec::uint8_affine()).output(spec::uint8_affine());
  special.match({"aten::conv2d"}).with_priority(5).input(spec::uint8_affine()).output(spec::uint8_affine());
  b.rules = {plain, special};
  auto m = capture_model("zoo:mbv3_block");  // its squeeze-excite has conv -> relu
  const Graph& g = *m.graph;
  auto a = annotate(g, b);
  const Node* se_conv = nth(g, "aten::conv2d", 2);
  CHECK(rule_of(a, se_conv) == "conv_alone");
  b.rules[1].priority = 0;
  auto c = annotate(g, b);
  CHECK(rule_of(c, se_conv) == "conv_relu");  // equal priority: the longer pattern
}

TEST_CASE("a residual add whose operands arrive in either order matches conv-bn-add-relu") {
  // The conv + add family, for kernels that fuse a residual add into the conv.
  Backend fused;
  fused.name = "conv-add";
  fused.version = "1";
  bundled::FamilySpecs specs;
  specs.activation = spec::uint8_affine();
  specs.weight = spec::int8_symmetric_per_channel(0);
  fused.rules = bundled::conv_add_rules(specs);
  REQUIRE(validate_backend(fused).empty());
  auto m = capture_model("zoo:residual_add");
  const Graph& g = *m.graph;
  auto a = annotate(g, fused);
  const Node* add = nth(g, "aten::add");
  CHECK(rule_of(a, add) == "conv2d_batch_norm_add_relu");
  // The residual operand (the one not coming from the conv chain) is annotated.
  const Node* bn2 = nth(g, "aten::batch_norm", 1);
  const int chain_operand = add->input(0)->node() == bn2 ? 0 : 1;
  CHECK(a.edge(input(add, 1 - chain_operand)) != nullptr);
  CHECK(a.edge(input(add, chain_operand)) == nullptr);

  // x86-int8 (LibTorch 1.13 has no fused conv + add kernel): conv-bn, then add-relu.
  auto x86 = annotate(g, backend("x86-int8"));
  CHECK(rule_of(x86, add) == "add_relu");
  CHECK(rule_of(x86, nth(g, "aten::conv2d", 1)) == "conv2d_batch_norm");
}

TEST_CASE("composition: a second backend annotates only what the first left, without changing it") {
  Backend adds;
  adds.name = "adds-only";
  adds.version = "1";
  Rule add("add");
  add.match({"aten::add"})
      .annotate(in(0, 0), spec::int_affine())
      .annotate(in(0, 1), spec::int_affine())
      .output(spec::int_affine());
  adds.rules = {add};
  auto m = capture_model("zoo:resnet18");
  const Graph& g = *m.graph;
  auto first = annotate(g, adds);
  REQUIRE(first.matches.size() == 8);
  auto both = annotate(g, backend("x86-int8"), {}, &first);
  CHECK(both.backends == "adds-only+x86-int8");
  for (std::size_t i = 0; i < first.matches.size(); ++i) {
    CHECK(both.matches[i].backend == "adds-only");
    CHECK(both.matches[i].nodes == first.matches[i].nodes);
    REQUIRE(both.matches[i].edges.size() == first.matches[i].edges.size());
    for (std::size_t e = 0; e < first.matches[i].edges.size(); ++e)
      CHECK(both.matches[i].edges[e].spec == first.matches[i].edges[e].spec);
  }
  // x86-int8 took the rest: every conv, and no add.
  for (const auto& r : both.nodes) {
    if (r.kind == "aten::add") CHECK(r.reason == "adds-only: add");
    if (r.kind == "aten::conv2d") CHECK(r.reason.rfind("x86-int8: ", 0) == 0);
  }
}

TEST_CASE("the JSON report carries every node with its status and every match's edges") {
  auto m = capture_model("zoo:mnist_cnn");
  auto a = annotate(*m.graph, backend("x86-int8"));
  auto j = nlohmann::json::parse(annotation_json(*m.graph, a));
  CHECK(j["backends"] == "x86-int8");
  CHECK(j["nodes"].size() == a.nodes.size());
  CHECK(j["matches"].size() == a.matches.size());
  CHECK(j["matches"][0]["edges"][0]["spec"]["dtype"] == "uint8");
  for (const auto& n : j["nodes"]) CHECK_FALSE(n["reason"].get<std::string>().empty());
}

TEST_CASE("qsdk annotate: table and JSON, overrides file, bad overrides exit 2 and write nothing") {
  namespace fs = std::filesystem;
  const std::string qsdk = QSDK_TEST_EXE;
  const fs::path dir = fs::temp_directory_path() / ("qsdk-annotate-cli-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const fs::path json = dir / "a.json";
  const std::string example = std::string(QSDK_TEST_SOURCE_DIR) + "/configs/overrides-example.yaml";
  auto ok = test::run_command(qsdk + " annotate zoo:resnet18 -b x86-int8 --overrides " + test::shell_quote(example) +
                              " --json " + test::shell_quote(json.string()));
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("layer4.0.conv1") != std::string::npos);
  CHECK(ok.out.find("skipped") != std::string::npos);
  CHECK(ok.out.find("edge spec(s) changed") != std::string::npos);
  REQUIRE(fs::exists(json));
  CHECK(nlohmann::json::parse(std::ifstream(json))["backends"] == "x86-int8");

  const fs::path bad = dir / "bad.yaml";
  std::ofstream(bad) << "overrides:\n  - {module: 'x', quantise: false}\n";
  const fs::path json2 = dir / "b.json";
  auto err = test::run_command(qsdk + " annotate zoo:resnet18 -b x86-int8 --overrides " +
                               test::shell_quote(bad.string()) + " --json " + test::shell_quote(json2.string()));
  CHECK(err.exit_code == 2);
  CHECK(err.err.find(bad.string() + ":2:19: unknown key 'quantise' (did you mean 'quantize'?)") != std::string::npos);
  CHECK_FALSE(fs::exists(json2));

  auto unknown = test::run_command(qsdk + " annotate zoo:resnet18 -b tpu");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("--backend tpu: no loaded plugin provides it") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("per-channel with linear: dynamic gives linear a run-time input spec and a float output") {
  auto b = bundled_registry().instantiate("per-channel", {{"linear", "dynamic"}});
  auto m = capture_model("zoo:linear_relu");
  const Graph& g = *m.graph;
  auto a = annotate(g, *b);
  const Node* fc1 = nth(g, "aten::linear", 0);
  CHECK(rule_of(a, fc1) == "linear_dynamic");
  CHECK(spec_of(a, input(fc1, 0)).kind == SpecKind::Dynamic);
  CHECK(spec_of(a, input(fc1, 1)).granularity == Granularity::PerChannel);
  CHECK(a.edge(output(fc1)) == nullptr);
  CHECK(a.edge(input(fc1, 2)) == nullptr);  // bias stays float
}

TEST_CASE("integer tensors are never quantized: a mul of Long sizes stays float, naming why") {
  // A traced attention multiplies Long scalar tensors (batch x heads); arm's
  // mul rule must match only the float mul.
  auto ir = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(R"IR(
graph(%x : Float(2, 3, strides=[3, 1], requires_grad=0, device=cpu),
      %n : Long(requires_grad=0, device=cpu)):
  %a : Long(requires_grad=0, device=cpu) = aten::mul(%n, %n)
  %b : Float(2, 3, strides=[3, 1], requires_grad=0, device=cpu) = aten::mul(%x, %x)
  return (%a, %b))IR",
                      ir.get());
  const Graph g(ir, "ir");
  const auto a = annotate(g, backend("arm"));
  const Node* int_mul = nth(g, "aten::mul", 0);
  const Node* float_mul = nth(g, "aten::mul", 1);
  CHECK(report(a, int_mul).status == NodeStatus::Float);
  CHECK(report(a, int_mul).reason.find("in(0,0) is a Long tensor, not floating point") != std::string::npos);
  CHECK(report(a, float_mul).status == NodeStatus::Quantized);
  // The Long scalar mul is shape/scalar bookkeeping, counted apart from float tensor ops.
  const auto doc = annotation_document(g, a);
  for (const auto& n : doc["nodes"]) CHECK(n.value("bookkeeping", false) == (n["id"].get<int>() == g.id(int_mul)));
  CHECK(annotation_table(g, a).find("float: 0 tensor ops + 1 shape/scalar bookkeeping") != std::string::npos);
}
