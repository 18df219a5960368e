// Conformance specs, checks, reports, shards and bless as pure functions:
// no model runs here (the CLI tests run real cases).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/child_process.h"
#include "common/error.h"
#include "conformance/bless.h"
#include "conformance/checks.h"
#include "conformance/reports.h"
#include "conformance/runner.h"
#include "conformance/spec.h"
#include "pipeline/measurements_json.h"
#include "support/torch_doctest.h"  // first: spec.h reaches LibTorch headers (calibration config)

using namespace qsdk;
using namespace qsdk::conformance;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const LoadContext kContext{{"x86-int8", "arm", "per-channel"}, "/nonexistent-models", true, {}};

fs::path temp_dir() {
  std::random_device rd;
  const auto d = fs::temp_directory_path() / ("qsdk-conf-unit-" + std::to_string(rd()));
  fs::create_directories(d);
  return d;
}

ConformanceSpec parse(const std::string& text) { return parse_spec(text, "spec.yaml", kContext); }

// The InputError message parse() throws for `text`.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

// A case measurement like one child writes, for a conv -> relu model on
// x86-int8: the pipeline's Measurements through the one serializer.
json conv_measurement() {
  qsdk::Measurements m;
  m.backend = "x86-int8";
  m.run.backends = {{"x86-int8", "1", "qsdk", std::string(40, 'a'), 1, "", {{"isa", "avx512_vnni"}}}};
  m.run.model_source = "zoo:conv_bn_relu";
  m.lowering_target = "onednn";
  m.decisions = {{0, "aten::conv2d", "conv", "quantized", 0, "conv2d_relu"},
                 {1, "aten::relu", "relu", "quantized", 0, "conv2d_relu"}};
  using Node = qsdk::NodeRecord;
  m.reference_nodes = {Node{0, "aten::quantize_per_tensor", "", ""},
                       Node{1, "aten::dequantize", "", ""},
                       Node{2, "aten::dequantize", "conv", ""},
                       Node{3, "aten::conv2d", "conv", ""},
                       Node{4, "aten::relu", "relu", ""},
                       Node{5, "aten::quantize_per_tensor", "relu", ""},
                       Node{6, "aten::dequantize", "", ""}};
  m.lowered_nodes =
      std::vector<Node>{Node{0, "aten::quantize_per_tensor", "", ""}, Node{1, "quantized::conv2d_relu", "conv", ""},
                        Node{2, "aten::dequantize", "", ""}};
  m.qparams = {{0, "weight", "%0 (aten::conv2d, conv) input 1", "int8", -127, 127, {0.01, 0.02}, {0, 0}, 0},
               {1, "activation", "%0 (aten::conv2d, conv) input 0", "uint8", 0, 255, {0.05}, {128}, std::nullopt},
               {2, "activation", "%1 (aten::relu, relu) output", "uint8", 0, 255, {0.02}, {0}, std::nullopt}};
  m.biases = {{3, "aten::conv2d", "conv", true, 0.0}};
  m.sqnr_db = 35.5;
  qsdk::LoweringMeasurements l;
  l.sqnr_db_lowered = 35.4;
  l.max_difference_steps = 1.0;
  l.worst_kernel_steps = 1.0;
  l.worst_kernel = "%1 quantized::conv2d_relu (conv): 1 steps";
  m.lowered = l;
  m.layers = {{0, "conv", "aten::conv2d", 36.0}, {1, "relu", "aten::relu", 12.5}};
  return json{{"spec", "conv"}, {"backend", "x86-int8"},      {"outcome", "ran"},
              {"seconds", 1.5}, {"measurements", to_json(m)}, {"backend_options", {{"isa", "avx512_vnni"}}}};
}

CaseResult run_checks(const std::string& expect_yaml, const json& m = conv_measurement()) {
  const ConformanceSpec s = parse("model: {zoo: conv_bn_relu}\n" + expect_yaml);
  return evaluate(s.expectations_for("x86-int8"), m);
}

const CheckResult* first_failure(const CaseResult& r) {
  for (const auto& c : r.checks)
    if (!c.passed) return &c;
  return nullptr;
}

}  // namespace

TEST_SUITE("conformance specs") {
  TEST_CASE("conformance: a per-option section applies only when the backend ran with those options") {
    const ConformanceSpec s = parse(R"(model: {zoo: conv_bn_relu}
expect:
  qparams:
    - {select: all_activations, quant_max: 255}
  numerics: {sqnr_min_db: 30, max_steps: 1}
per_backend:
  x86-int8:
    numerics: {sqnr_min_db: 34}
  x86-int8[isa=avx2]:
    qparams:
      - {select: all_activations, quant_max: 127}
    numerics: {sqnr_min_db: 28}
)");
    REQUIRE(s.per_option.size() == 1);
    CHECK(s.per_option[0].backend == "x86-int8");
    CHECK(s.per_option[0].when == BackendOptions{{"isa", "avx2"}});
    const auto vnni = s.expectations_for("x86-int8", {{"isa", "vnni"}});
    CHECK(vnni.qparams.at(0).quant_max == 255);
    CHECK(*vnni.numerics->sqnr_min_db == 34);
    const auto avx2 = s.expectations_for("x86-int8", {{"isa", "avx2"}});
    CHECK(avx2.qparams.at(0).quant_max == 127);
    CHECK(*avx2.numerics->sqnr_min_db == 28);
    CHECK(*avx2.numerics->max_steps == 1);  // bounds merge one by one
    // Not for another backend, nor without the option.
    CHECK(s.expectations_for("arm", {{"isa", "avx2"}}).qparams.at(0).quant_max == 255);
    CHECK(s.expectations_for("x86-int8").qparams.at(0).quant_max == 255);

    // The measurement records the options the case ran with; evaluate reads them.
    json m = conv_measurement();
    CHECK(evaluate(vnni, m).status == Status::Pass);
    CHECK(evaluate(avx2, m).status == Status::Fail);  // the measurement has 255-wide activations
  }

  TEST_CASE("conformance: a malformed per-option key names the place and the form") {
    CHECK(error_of("model: {zoo: conv_bn_relu}\nper_backend:\n  x86-int8[isa]: {}\n") ==
          "spec.yaml:3:3: in 'x86-int8[isa]': 'isa' is not OPTION=VALUE");
    CHECK(error_of("model: {zoo: conv_bn_relu}\nper_backend:\n  x86-int8[isa=avx2: {}\n") ==
          "spec.yaml:3:3: a per-option section is keyed BACKEND[OPTION=VALUE,...], e.g. x86-int8[isa=avx2]; got "
          "'x86-int8[isa=avx2'");
    // With the backends' declared options known (as conformance runs know
    // them), the option and its value are checked too.
    LoadContext with_options = kContext;
    with_options.declared_options["x86-int8"] = {{"isa", "", "auto", {"auto", "vnni", "avx2"}}};
    auto error_with_options = [&](const std::string& key) {
      try {
        parse_spec("model: {zoo: conv_bn_relu}\nper_backend:\n  " + key + ": {}\n", "spec.yaml", with_options);
      } catch (const InputError& e) {
        return std::string(e.what());
      }
      return std::string("(no error)");
    };
    CHECK(error_with_options("x86-int8[iza=avx2]") ==
          "spec.yaml:3:3: backend 'x86-int8' has no option 'iza'; it declares: isa");
    CHECK(error_with_options("x86-int8[isa=avx3]") ==
          "spec.yaml:3:3: option 'isa' of backend 'x86-int8' does not allow 'avx3'; allowed: auto, vnni, avx2");
    CHECK(error_with_options("x86-int8[isa=auto]") ==
          "spec.yaml:3:3: 'isa=auto' never matches: cases run with auto resolved for the machine (e.g. isa=avx2)");
    CHECK(error_with_options("x86-int8[isa=vnni]") == "(no error)");
    CHECK(error_of("model: {zoo: conv_bn_relu}\nper_backend:\n  x87[isa=avx2]: {}\n") ==
          "spec.yaml:3:3: unknown backend 'x87' in 'x87[isa=avx2]'; loaded backends: x86-int8, arm, per-channel");
  }

  TEST_CASE("conformance: a full spec parses: model, pipeline, backends, options, expectations per backend") {
    const ConformanceSpec s = parse(R"(name: conv_unit
description: one conv
model: {zoo: conv_bn_relu, seed: 3}
pipeline:
  calibration: {source: random, batches: 3, batch_size: 2}
  overrides:
    - {module: "conv", quantize: false}
backends: [x86-int8, arm]
options:
  arm: {some_option: "1"}
expect:
  structure:
    counts: {aten::quantize_per_tensor: 2, aten::dequantize: 3}
    absent: [aten::batch_norm]
    sequence: [aten::quantize_per_tensor, aten::conv2d]
  qparams:
    - {select: all_activations, dtype: uint8, quant_min: 0, quant_max: 255}
  numerics: {sqnr_min_db: 20}
per_backend:
  arm:
    structure:
      counts: {aten::dequantize: 4}
    expect_failure: {kind: reject, reason: "no"}
)");
    CHECK(s.name == "conv_unit");
    CHECK(s.pipeline.model == "zoo:conv_bn_relu");
    CHECK(s.pipeline.model_seed == 3);
    const std::vector<std::vector<std::int64_t>> shapes{{1, 3, 32, 32}};
    CHECK(shapes_of(s.pipeline.inputs) == shapes);
    CHECK(s.pipeline.calibration.batches == 3);
    CHECK(s.pipeline.overrides.size() == 1);
    CHECK(s.applies_to("arm"));
    CHECK_FALSE(s.applies_to("per-channel"));
    CHECK(s.options.at("arm").at("some_option") == "1");
    const auto x86 = s.expectations_for("x86-int8");
    CHECK(x86.structure->counts.at("aten::dequantize") == 3);
    CHECK_FALSE(x86.failure);
    const auto arm = s.expectations_for("arm");
    // Counts merge op by op; other lists are kept unless the backend gives its own.
    CHECK(arm.structure->counts.at("aten::dequantize") == 4);
    CHECK(arm.structure->counts.at("aten::quantize_per_tensor") == 2);
    CHECK(arm.structure->absent == std::vector<std::string>{"aten::batch_norm"});
    CHECK(arm.failure);
  }

  TEST_CASE("conformance: YAML syntax error: file:line:column and the cause") {
    const auto e = error_of("model: {zoo: conv_bn_relu\nbackends: [x86-int8\n");
    CHECK(e.find("spec.yaml:") == 0);
    CHECK(e.find("YAML syntax error") != std::string::npos);
  }

  TEST_CASE("conformance: unknown key: file:line:column and did you mean") {
    const auto e = error_of("model: {zoo: conv_bn_relu}\nexpect:\n  structure:\n    coutns: {aten::conv2d: 1}\n");
    CHECK(e.find("spec.yaml:4:5: unknown key 'coutns' (did you mean 'counts'?)") == 0);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nbackend: all\n")
              .find("spec.yaml:2:1: unknown key 'backend' (did you mean 'backends'?)") == 0);
  }

  TEST_CASE("conformance: unknown backend: file:line:column and the loaded ones") {
    const auto e = error_of("model: {zoo: conv_bn_relu}\nbackends: [x86-int8, arn]\n");
    CHECK(e.find("spec.yaml:2:22: unknown backend 'arn' (did you mean 'arm'?)") == 0);
    CHECK(e.find("per-channel") != std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nper_backend:\n  x86_int8: {}\n")
              .find("spec.yaml:3:3: unknown backend 'x86_int8'") == 0);
  }

  TEST_CASE("conformance: missing model: zoo name or file, at file:line:column") {
    const auto zoo = error_of("model: {zoo: resnet19}\n");
    CHECK(zoo.find("spec.yaml:1:14: missing model: no zoo model 'resnet19' (did you mean 'zoo:resnet18'?)") == 0);
    const auto file = error_of("model:\n  file: nothere.pt\n  input_shapes: [[1, 3, 8, 8]]\n");
    CHECK(file.find("spec.yaml:2:9: missing model: no file ") == 0);
    CHECK(file.find("nothere.pt (relative paths resolve against the directory of spec.yaml)") != std::string::npos);
    const auto models_dir = error_of("model: {file: resnet18.pt, search: models_dir, input_shapes: [[1,3,224,224]]}\n");
    CHECK(models_dir.find("missing model: no file /nonexistent-models/resnet18.pt") != std::string::npos);
    CHECK(models_dir.find("--models-dir") != std::string::npos);
    CHECK(error_of("backends: all\n").find("spec.yaml:1:1: a spec needs 'model'") == 0);
  }

  TEST_CASE("conformance: wrong types and values are refused where they are") {
    CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect: {structure: {counts: {conv2d: 1}}}\n")
              .find("op names are qualified, e.g. 'aten::conv2d'") != std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect: {structure: {counts: {aten::conv2d: many}}}\n")
              .find("count of aten::conv2d has the wrong type: 'many'") != std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect: {qparams: [{select: all, dtype: unit8}]}\n")
              .find("unknown dtype 'unit8' (did you mean 'uint8'?)") != std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect: {expect_failure: {kind: crash, reason: x}}\n")
              .find("kind must be 'reject'") != std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\npipeline: {mode: int8}\n").find("mode must be ptq or qat") !=
          std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nbackends: [arm]\nper_backend: {x86-int8: {}}\n")
              .find("not in this spec's backends") != std::string::npos);
    CHECK(error_of("model: {zoo: conv_bn_relu}\nbackends: [arm]\nbackends: [arm]\n").find("duplicate key") !=
          std::string::npos);
  }

  TEST_CASE("conformance: spec files in directories: sorted, named by relative path, duplicate names refused") {
    const auto dir = temp_dir();
    fs::create_directories(dir / "unit");
    std::ofstream(dir / "unit" / "b.yaml") << "model: {zoo: conv_bn_relu}\n";
    std::ofstream(dir / "a.yaml") << "model: {zoo: linear_relu}\n";
    std::ofstream(dir / "notes.txt") << "not a spec\n";
    const auto specs = load_specs({dir}, kContext);
    REQUIRE(specs.size() == 2);
    CHECK(specs[0].name == "a");
    CHECK(specs[1].name == "unit/b");
    // A report directory inside the specs directory is not searched.
    fs::create_directories(dir / "report" / "blessed");
    std::ofstream(dir / "report" / "blessed" / "a.yaml") << "model: {zoo: linear_relu}\n";
    CHECK(load_specs({dir}, kContext, dir / "report").size() == 2);
    std::ofstream(dir / "c.yaml") << "name: a\nmodel: {zoo: linear_relu}\n";
    CHECK_THROWS_WITH_AS(load_specs({dir}, kContext), doctest::Contains("spec name 'a' is already used by"),
                         InputError);
    fs::remove_all(dir);
  }
}

TEST_SUITE("conformance checks") {
  TEST_CASE("a lowered output agrees within its steps, its noise margin, or as close to float as the reference") {
    Measurements m;
    m.sqnr_db = 20.0;
    LoweringMeasurements l;
    l.max_difference_steps = 6;  // beyond max_steps 1
    l.noise_margin_db = 0.5;     // beyond the 6 dB margin: two independent roundings
    l.sqnr_db_lowered = 19.6;    // but as good against float as the reference (0.4 dB lower)
    m.lowered = l;
    CHECK(m.lowering_agrees(1.0));
    m.lowered->sqnr_db_lowered = 20.0 - kMaxLoweredSqnrLossDb - 0.5;  // worse than the reference: a real loss
    CHECK_FALSE(m.lowering_agrees(1.0));
    m.lowered->noise_margin_db = 7.0;  // ... unless the difference is far below the quantization noise
    CHECK(m.lowering_agrees(1.0));
    m.lowered->sqnr_db_lowered = 19.6;
    m.lowered->first_over_limit = "quantized::conv2d (node 3) differs by 2 steps";  // a kernel off fails regardless
    CHECK_FALSE(m.lowering_agrees(1.0));
  }

  TEST_CASE("conformance: a measurement that meets every expectation passes") {
    const auto r = run_checks(R"(expect:
  structure:
    counts: {aten::quantize_per_tensor: 2, aten::dequantize: 3, aten::conv2d: 1}
    present: [aten::relu]
    absent: [aten::batch_norm]
    sequence: [aten::quantize_per_tensor, aten::conv2d, aten::quantize_per_tensor]
  lowered:
    counts: {quantized::conv2d_relu: 1}
    absent: [aten::conv2d]
  qparams:
    - {select: all_activations, dtype: uint8, quant_min: 0, quant_max: 255}
    - {select: all_weights, dtype: int8, symmetric: true, per_channel: true, axis: 0, count: 1}
    - {select: "*(aten::relu, relu) output", scale: 0.02, zero_point: 0}
  bias: {per_channel: true}
  numerics: {sqnr_min_db: 30, sqnr_lowered_min_db: 30, max_steps: 1}
)");
    for (const auto& c : r.checks) {
      INFO(c.message());
      CHECK(c.passed);
    }
    CHECK(r.status == Status::Pass);
    CHECK_FALSE(r.unspecified);
  }

  TEST_CASE("conformance: wrong count: names the check, expected, found and the nodes") {
    const auto r = run_checks("expect: {structure: {counts: {aten::dequantize: 2}}}\n");
    CHECK(r.status == Status::Fail);
    const auto* f = first_failure(r);
    REQUIRE(f);
    const auto msg = f->message();
    CHECK(msg.find("structure.counts[aten::dequantize] (reference graph): expected 2, found 3") == 0);
    CHECK(msg.find("%2 aten::dequantize (conv)") != std::string::npos);
    CHECK(msg.find("spec.yaml:2:") != std::string::npos);
  }

  TEST_CASE("conformance: wrong dtype: names the tensor with its node and module") {
    const auto r = run_checks("expect: {qparams: [{select: all_weights, dtype: uint8}]}\n");
    const auto* f = first_failure(r);
    REQUIRE(f);
    CHECK(f->check == "qparams[all_weights].dtype");
    CHECK(f->expected == "uint8");
    CHECK(f->found == "int8");
    REQUIRE_FALSE(f->nodes.empty());
    CHECK(f->nodes[0].find("%0 (aten::conv2d, conv) input 1") != std::string::npos);
  }

  TEST_CASE("conformance: SQNR bound too high: found value and the weakest layers") {
    const auto r = run_checks("expect: {numerics: {sqnr_min_db: 60}}\n");
    const auto* f = first_failure(r);
    REQUIRE(f);
    CHECK(f->message().find("numerics.sqnr_min_db: expected >= 60.00 dB (reference vs float), found 35.50 dB") == 0);
    REQUIRE_FALSE(f->nodes.empty());
    CHECK(f->nodes[0].find("%1 aten::relu (relu) 12.50 dB") != std::string::npos);
  }

  TEST_CASE("conformance: sequence, absent, symmetric, shared, steps and layer SQNR failures") {
    auto fails = [](const std::string& yaml) {
      const auto r = run_checks(yaml);
      const auto* f = first_failure(r);
      return f ? f->message() : std::string("(passed)");
    };
    CHECK(fails("expect: {structure: {sequence: [aten::conv2d, aten::quantize_per_tensor, aten::conv2d]}}\n")
              .find("matched 2 of 3; no aten::conv2d after %5 aten::quantize_per_tensor (relu)") != std::string::npos);
    CHECK(fails("expect: {lowered: {absent: [aten::dequantize]}}\n").find("%2 aten::dequantize") != std::string::npos);
    CHECK(fails("expect: {qparams: [{select: all_activations, symmetric: true}]}\n").find("zero point 128") !=
          std::string::npos);
    CHECK(fails("expect: {shared: [['*conv) input 0', '*relu) output']]}\n").find("2 different qparams in 2 slots") !=
          std::string::npos);
    CHECK(fails("expect: {numerics: {max_steps: 0.5}}\n").find("worst kernel: %1 quantized::conv2d_relu (conv)") !=
          std::string::npos);
    CHECK(fails("expect: {numerics: {layer_sqnr_min_db: 20}}\n").find("%1 aten::relu (relu) 12.50 dB") !=
          std::string::npos);
    CHECK(fails("expect: {qparams: [{select: '*softmax*', dtype: uint8}]}\n").find("found none") != std::string::npos);
  }

  TEST_CASE("conformance: a lowered expectation on a backend that does not lower fails with the reason") {
    auto m = conv_measurement();
    m["measurements"]["details"]["graphs"].erase("lowered");
    m["measurements"]["lowering"] = {{"target", "reference"}};
    const auto r = run_checks("expect: {lowered: {counts: {quantized::conv2d: 1}}}\n", m);
    const auto* f = first_failure(r);
    REQUIRE(f);
    CHECK(f->found.find("the backend does not lower (reference)") != std::string::npos);
  }

  TEST_CASE("conformance: expected failures: reject and skip, with their reason") {
    json rejected{{"outcome", "rejected"}, {"error", "backend 'arm': dynamic linear is not supported"}};
    CHECK(run_checks("expect: {expect_failure: {kind: reject, reason: dynamic linear}}\n", rejected).status ==
          Status::Pass);
    CHECK(run_checks("expect: {expect_failure: {kind: reject, reason: something else}}\n", rejected).status ==
          Status::Fail);
    // Not expected: an error, with the pipeline's message.
    const auto unexpected = run_checks("", rejected);
    CHECK(unexpected.status == Status::Error);
    CHECK(unexpected.reason.find("dynamic linear is not supported") != std::string::npos);

    json skipped = conv_measurement();
    skipped["measurements"]["details"]["decisions"] =
        json::array({{{"id", 0}, {"op", "aten::softmax"}, {"status", "float"}, {"reason", "no rule matches"}}});
    const auto ok = run_checks("expect: {expect_failure: {kind: skip, reason: no rule}}\n", skipped);
    CHECK(ok.status == Status::Pass);
    CHECK(ok.expected_failure);
    const auto ran = run_checks("expect: {expect_failure: {kind: reject, reason: x}}\n");
    CHECK(ran.status == Status::Fail);
    CHECK(ran.checks.at(0).found.find("the pipeline ran") != std::string::npos);
  }

  TEST_CASE("conformance: slots get the labels of their whole shared group") {
    qsdk::Measurements m;
    m.qparams = {{0, "activation", "%0 (aten::conv2d, a) output +2", "uint8", 0, 255, {0.1}, {0}, std::nullopt},
                 {1, "weight", "%0 (aten::conv2d, a) input 1", "int8", -127, 127, {0.1}, {0}, std::nullopt}};
    m.shared_tensors = {{"%0 (aten::conv2d, a) output", "%1 (aten::cat) input 0[0]", "%1 (aten::cat) output"}};
    const auto slots = build_slots(m);
    CHECK(slots[0]["tensors"] ==
          json::array({"%0 (aten::conv2d, a) output", "%1 (aten::cat) input 0[0]", "%1 (aten::cat) output"}));
    CHECK(slots[1]["tensors"] == json::array({"%0 (aten::conv2d, a) input 1"}));
  }
}

TEST_SUITE("conformance reports") {
  RunReport sample_report() {
    RunReport r;
    r.specs = {"conv", "linear"};
    r.backends = {"x86-int8", "arm"};
    auto pass = run_checks("expect: {structure: {counts: {aten::conv2d: 1}}}\n");
    auto fail = run_checks("expect: {structure: {counts: {aten::conv2d: 2}}}\n");
    fail.backend = "arm";
    CaseResult skip;
    skip.spec = "linear";
    skip.backend = "x86-int8";
    skip.status = Status::Skip;
    skip.reason = "not one of this spec's backends";
    auto unspecified = run_checks("");
    unspecified.spec = "linear";
    unspecified.backend = "arm";
    r.cases = {pass, fail, skip, unspecified};
    return r;
  }

  TEST_CASE("conformance: matrix, failures, JUnit and HTML") {
    const auto r = sample_report();
    CHECK(r.exit_code() == 1);
    const auto matrix = matrix_text(r);
    CHECK(matrix.find("conv") != std::string::npos);
    CHECK(matrix.find("pass") != std::string::npos);
    CHECK(matrix.find("fail") != std::string::npos);
    CHECK(matrix.find("skip") != std::string::npos);
    CHECK(failures_text(r).find("structure.counts[aten::conv2d] (reference graph): expected 2, found 1") !=
          std::string::npos);
    const auto xml = junit_xml(r);
    CHECK(xml.find("<testsuites name=\"qsdk conformance\" tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"1\"") !=
          std::string::npos);
    CHECK(xml.find("<testcase classname=\"qsdk.conformance.arm\" name=\"conv\"") != std::string::npos);
    CHECK(xml.find("<failure type=\"conformance check\" message=\"structure.counts[aten::conv2d]") !=
          std::string::npos);
    CHECK(xml.find("<skipped message=\"not one of this spec&#39;s backends\"/>") != std::string::npos);
    const auto html = html_report(r);
    CHECK(html.find("<table id=\"matrix\">") != std::string::npos);
    CHECK(html.find("<svg class=\"chart\"") != std::string::npos);
    CHECK(html.find("%1 aten::relu (relu): 12.50 dB") != std::string::npos);
  }

  TEST_CASE("conformance: results.json round-trips, shards merge into the single run's report") {
    const auto whole = sample_report();
    const auto back = report_from_json(report_json(whole), "r.json");
    CHECK(report_json(back) == report_json(whole));
    RunReport a = whole, b = whole;
    a.cases = {whole.cases[0], whole.cases[2]};
    b.cases = {whole.cases[1], whole.cases[3]};
    a.shard = "1/2";
    b.shard = "2/2";
    const auto merged = merge_reports({b, a}, {"b.json", "a.json"});
    CHECK(report_json(merged)["cases"] == report_json(whole)["cases"]);
    CHECK(junit_xml(merged) == junit_xml(whole));
    CHECK_THROWS_WITH_AS(merge_reports({a, a}, {"a.json", "a2.json"}), doctest::Contains("is also in a.json"),
                         InputError);
    RunReport other = a;
    other.backends = {"arm"};
    CHECK_THROWS_WITH_AS(merge_reports({a, other}, {"a.json", "o.json"}),
                         doctest::Contains("a shard of a different suite"), InputError);
    // A shard missing: its cases are errors, not silently absent.
    const auto partial = merge_reports({a}, {"a.json"});
    CHECK(partial.count(Status::Error) == 2);
  }

  TEST_CASE("conformance: shards: a deterministic slice, every case in exactly one") {
    CHECK(parse_shard("2/4") == std::make_pair(2, 4));
    CHECK_THROWS_AS(parse_shard("5/4"), InputError);
    CHECK_THROWS_AS(parse_shard("0/4"), InputError);
    CHECK_THROWS_AS(parse_shard("2"), InputError);
    CHECK_THROWS_AS(parse_shard("a/b"), InputError);
    for (std::size_t i = 0; i < 20; ++i) {
      int owners = 0;
      for (int k = 1; k <= 3; ++k) owners += in_shard(i, {k, 3});
      CHECK(owners == 1);
    }
  }

  TEST_CASE("conformance: bless writes the measured structure of passing unspecified cases") {
    const auto dir = temp_dir();
    std::ofstream(dir / "conv.yaml") << "# a new model\nmodel: {zoo: conv_bn_relu}\n";
    ConformanceSpec s = load_spec(dir / "conv.yaml", kContext);
    auto x86 = run_checks("");
    x86.spec = s.name;
    auto arm = x86;
    arm.backend = "arm";
    arm.measurement["measurements"]["details"]["graphs"]["reference"].push_back(
        {{"id", 7}, {"op", "aten::dequantize"}});
    arm.measurement["measurements"]["details"]["graphs"].erase("lowered");
    arm.measurement["measurements"]["lowering"] = {{"target", "qnnpack"}};
    arm.measured = qsdk::measurements_from_json(arm.measurement["measurements"], "arm");
    const std::string text = blessed_spec_text(s, {&x86, &arm});
    CHECK(text.find("# a new model\nmodel: {zoo: conv_bn_relu}\n") == 0);
    // Re-parsed, the blessed spec passes on the same measurements.
    std::ofstream(dir / "blessed.yaml") << text;
    const ConformanceSpec b = load_spec(dir / "blessed.yaml", kContext);
    CHECK(b.expect.structure->counts.at("aten::conv2d") == 1);
    CHECK(b.expectations_for("arm").structure->counts.at("aten::dequantize") == 4);
    CHECK(b.expectations_for("x86-int8").structure->counts.at("aten::dequantize") == 3);
    CHECK(b.expectations_for("x86-int8").lowered->counts.at("quantized::conv2d_relu") == 1);
    CHECK(evaluate(b.expectations_for("x86-int8"), x86.measurement).status == Status::Pass);
    CHECK(evaluate(b.expectations_for("arm"), arm.measurement).status == Status::Pass);
    // A case that already has structure expectations is not blessed.
    auto specified = run_checks("expect: {structure: {counts: {aten::conv2d: 1}}}\n");
    CHECK(blessed_spec_text(s, {&specified}).empty());
    fs::remove_all(dir);
  }
}

TEST_SUITE("conformance child processes") {
  TEST_CASE("conformance: exit codes, signals, timeouts and output files, reported in job order") {
    const auto dir = temp_dir();
    std::vector<ChildJob> jobs(4);
    jobs[0].argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"};
    jobs[0].stdout_file = dir / "0.out";
    jobs[0].stderr_file = dir / "0.err";
    jobs[1].argv = {"/bin/sh", "-c", "kill -9 $$"};
    jobs[2].argv = {"/bin/sh", "-c", "sleep 30"};
    jobs[2].timeout = std::chrono::milliseconds(300);
    jobs[3].argv = {"/nonexistent/program"};
    std::vector<std::size_t> order;
    const auto results = run_children(jobs, 2, [&](std::size_t i, const ChildResult&) { order.push_back(i); });
    CHECK(order.size() == 4);
    CHECK(results[0].exit_code == 3);
    CHECK(tail_of_file(dir / "0.out") == "out\n");
    CHECK(tail_of_file(dir / "0.err") == "err\n");
    CHECK(results[1].signal == 9);
    CHECK(results[2].timed_out);
    CHECK(results[2].describe().find("timed out") == 0);
    CHECK_FALSE(results[3].started);
    CHECK(results[3].describe().find("cannot run /nonexistent/program") != std::string::npos);
    ChildJob env_job;
    env_job.argv = {"/bin/sh", "-c", "test \"$QSDK_X\" = 7"};
    env_job.env = {{"QSDK_X", "7"}};
    const auto ok = run_child(env_job);
    CHECK(ok.ok());
    fs::remove_all(dir);
  }
}

namespace {

// conv_measurement with an ONNX export: ONNX Runtime `steps` from the
// reference (both runs), `problems` in its encodings.
json with_onnx(double steps, std::vector<std::string> problems = {}, bool runtime = true) {
  json m = conv_measurement();
  qsdk::OnnxMeasurements o;
  o.nodes = 9;
  o.quantize_linear = 2;
  o.dequantize_linear = 4;
  o.encodings_problems = std::move(problems);
  if (runtime)
    for (const bool optimized : {true, false})
      o.runtime.push_back({optimized, 0.02, steps, 34.0, 0.0, 2, steps, "relu"});
  else
    o.runtime_skipped = "ONNX Runtime is not installed";
  auto measurements = qsdk::measurements_from_json(m["measurements"], "test");
  measurements.onnx = o;
  m["measurements"] = to_json(measurements);
  return m;
}

}  // namespace

TEST_CASE("onnx expectations: ONNX Runtime steps, SQNR, counts and encodings are checked") {
  const std::string expect = "expect:\n  onnx: {max_steps: 1, sqnr_min_db: 30, quantize_linear: 2}\n";
  CHECK(run_checks(expect, with_onnx(1.0)).status == Status::Pass);
  const auto over = run_checks(expect, with_onnx(3.0));
  CHECK(over.status == Status::Fail);
  REQUIRE(first_failure(over));
  CHECK(first_failure(over)->check == "onnx.max_steps");
  const auto bad_encodings = run_checks(expect, with_onnx(0.0, {"activation_encodings: x: scale 1 in the encodings"}));
  REQUIRE(first_failure(bad_encodings));
  CHECK(first_failure(bad_encodings)->check == "onnx.encodings");
  // No ONNX Runtime on the machine: a failed check that says why, never a silent pass.
  const auto no_runtime = run_checks(expect, with_onnx(0.0, {}, false));
  REQUIRE(first_failure(no_runtime));
  CHECK(first_failure(no_runtime)->found.find("not installed") != std::string::npos);
  // No export at all.
  const auto none = run_checks(expect);
  REQUIRE(first_failure(none));
  CHECK(first_failure(none)->check == "onnx.export");
  CHECK_THROWS_WITH_AS(parse("model: {zoo: conv_bn_relu}\nexpect:\n  onnx: {max_step: 1}\n"),
                       doctest::Contains("max_steps"), qsdk::InputError);
}

namespace {

// conv_measurement with an engine check: the backend's engine off by
// `lsb` on the second of two quantized tensors (0: exact), or not run.
json with_engine(std::int64_t lsb, const std::string& unsupported = "", bool only_output = false) {
  json m = conv_measurement();
  qsdk::EngineAgreement e;
  e.engine = "x86-int8 (the backend's engine)";
  e.arithmetic = "rounding half_to_even, ...";
  e.unsupported = unsupported;
  if (unsupported.empty()) {
    auto tensor = [](std::string name, std::string op, std::int64_t off) {
      qsdk::EngineTensorAgreement t;
      t.tensor = std::move(name);
      t.op = std::move(op);
      t.op_type = "Conv";
      t.reference = "conv2d (integer accumulator)";
      t.elements = 100;
      t.mismatched = off ? 7 : 0;
      t.max_lsb = off;
      t.sqnr_db = off ? 48.0 : 300.0;
      return t;
    };
    if (!only_output) e.tensors = {tensor("input_quantized", "", 0), tensor("relu/relu_quantized", "conv/conv2d", lsb)};
    e.output = tensor("output", "", lsb);
    if (lsb) e.first_divergent = "relu/relu_quantized";
  }
  auto measurements = qsdk::measurements_from_json(m["measurements"], "test");
  measurements.engines = {e};
  m["measurements"] = to_json(measurements);
  return m;
}

}  // namespace

TEST_CASE("engine expectations: verify modes per tensor and at the output, the first divergence named") {
  CHECK(run_checks("expect:\n  engine: exact\n", with_engine(0)).status == Status::Pass);
  const auto off = run_checks("expect:\n  engine: exact\n", with_engine(1));
  CHECK(off.status == Status::Fail);
  REQUIRE(first_failure(off));
  CHECK(first_failure(off)->check == "engine.tensors");
  CHECK(first_failure(off)->found.find("first divergence: op conv/conv2d (Conv), tensor relu/relu_quantized, 1 LSB") !=
        std::string::npos);
  CHECK(first_failure(off)->nodes == std::vector<std::string>{"relu/relu_quantized: 1 LSB, SQNR 48.00 dB"});
  // Within one LSB passes; a per-tensor glob can loosen one tensor only.
  CHECK(run_checks("expect:\n  engine: {verify: {lsb: 1}}\n", with_engine(1)).status == Status::Pass);
  CHECK(run_checks("expect:\n  engine: {verify: {lsb: 1}}\n", with_engine(2)).status == Status::Fail);
  CHECK(run_checks("expect:\n  engine: {tensors: {\"relu/*\": {lsb: 1}}, output: {sqnr_min_db: 40}}\n", with_engine(1))
            .status == Status::Pass);
  CHECK(run_checks("expect:\n  engine: {verify: {sqnr_min_db: 50}}\n", with_engine(1)).status == Status::Fail);
  // An engine that does not run the model fails a spec that asks for it, saying why.
  const auto unsupported = run_checks("expect:\n  engine: exact\n", with_engine(0, "MaxPool node 'pool'"));
  REQUIRE(first_failure(unsupported));
  CHECK(first_failure(unsupported)->check == "engine.run");
  CHECK(first_failure(unsupported)->found.find("MaxPool node 'pool'") != std::string::npos);
  // No engine measured at all.
  REQUIRE(first_failure(run_checks("expect:\n  engine: exact\n")));
  CHECK(first_failure(run_checks("expect:\n  engine: exact\n"))->check == "engine.run");
  // An engine that returns no intermediates is judged at its output.
  const auto output_only = run_checks("expect:\n  engine: exact\n", with_engine(1, "", true));
  REQUIRE(first_failure(output_only));
  CHECK(first_failure(output_only)->check == "engine.output");
}

TEST_CASE("engine-only cases: a model the engine does not run is skipped, saying why") {
  ConformanceSpec s = parse("model: {zoo: conv_bn_relu}\nexpect:\n  structure: {counts: {aten::conv2d: 5}}\n");
  EngineExpect e;
  e.verify = parse_verify_mode("lsb:1", "--verify-engine");
  check_engine_only(s, e);
  CHECK(!s.expect.structure);  // the spec's own checks are gone
  const auto skipped = evaluate(s.expectations_for("x86-int8"), with_engine(0, "Softmax node 'sm'"));
  CHECK(skipped.status == Status::Skip);
  CHECK(skipped.reason.find("does not run this model: Softmax node 'sm'") != std::string::npos);
  CHECK(evaluate(s.expectations_for("x86-int8"), with_engine(1)).status == Status::Pass);
  json rejected = conv_measurement();
  rejected["outcome"] = "rejected";
  rejected["error"] = "no rule matches";
  CHECK(evaluate(s.expectations_for("x86-int8"), rejected).status == Status::Skip);
}

TEST_CASE("engine sections and verify modes are validated at file:line:column") {
  CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect:\n  engine: {verify: {lsb: -1}}\n").find("needs a number >= 0") !=
        std::string::npos);
  CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect:\n  engine: {verify: within}\n").find("unknown verify mode") !=
        std::string::npos);
  CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect:\n  engine: {run: tensorrt}\n").find("unknown engine") !=
        std::string::npos);
  CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect:\n  engine: {verfy: exact}\n").find("verify") !=
        std::string::npos);
  CHECK(error_of("model: {zoo: conv_bn_relu}\nexpect:\n  engine: {verify: {lsb: 1, abs: 2}}\n").find("spec.yaml:3") !=
        std::string::npos);
  const auto mode = parse_verify_mode("rel:0.001", "x");
  CHECK(mode.kind == VerifyMode::Kind::Relative);
  CHECK(parse_verify_mode(mode.spec_text(), "x").value == doctest::Approx(0.001));
  CHECK_THROWS_AS(parse_verify_mode("lsb:1x", "--verify-engine"), qsdk::InputError);
}

TEST_CASE("engine measurements survive the JSON round trip, the replay included") {
  json m = with_engine(1);
  auto measured = qsdk::measurements_from_json(m["measurements"], "test");
  measured.engines[0].replay = R"({"schema": "qsdk-engine-replay", "version": 1})";
  const auto back = qsdk::measurements_from_json(to_json(measured), "test");
  REQUIRE(back.engines.size() == 1);
  CHECK(back.engines[0].tensors.size() == 2);
  CHECK(back.engines[0].tensors[1].max_lsb == 1);
  CHECK(back.engines[0].first_divergent == "relu/relu_quantized");
  CHECK(json::parse(back.engines[0].replay)["schema"] == "qsdk-engine-replay");
}
