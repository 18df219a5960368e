// The run config: schema, defaults, errors at file:line:column, flags.
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "config/run_config.h"
#include "support/torch_doctest.h"  // first: LibTorch headers come in through the config

namespace fs = std::filesystem;
using qsdk::InputError;
using qsdk::parse_run_config;

namespace {

// The InputError message parsing `text` gives ("" when it parses).
std::string error_of(const std::string& text) {
  try {
    parse_run_config(text, "cfg.yaml", {});
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a minimal config gets every default") {
  const auto c = parse_run_config("model: zoo:mnist_cnn\nbackends: [x86-int8]\n", "cfg.yaml", {});
  CHECK(c.pipeline.model == "zoo:mnist_cnn");
  REQUIRE(c.backends.size() == 1);
  CHECK(c.backends[0].name == "x86-int8");
  CHECK(c.backends[0].where == "cfg.yaml:2:12");
  CHECK(c.pipeline.calibration.source == "random");
  CHECK_FALSE(c.pipeline.qat.has_value());
  CHECK(c.reports == std::vector<std::string>{"json", "junit", "html"});
}

TEST_CASE("backends as a list, a map with options, and list items with options") {
  auto c = parse_run_config("model: zoo:mnist_cnn\nbackends:\n  per-channel: {weight_bits: 4}\n  arm:\n", "c", {});
  REQUIRE(c.backends.size() == 2);
  CHECK(c.backends[0].backends.at(0).options.at("weight_bits") == "4");
  CHECK(c.backends[1].backends.at(0).options.empty());
  c = parse_run_config("model: zoo:mnist_cnn\nbackends: [arm, {per-channel: {activation_bits: 8}}]\n", "c", {});
  REQUIRE(c.backends.size() == 2);
  CHECK(c.backends[1].backends.at(0).options.at("activation_bits") == "8");
}

TEST_CASE("every section parses into the config") {
  const auto c = parse_run_config(R"(
model: {source: zoo:resnet18, input_shapes: [[2, 3, 32, 32]], seed: 3}
backends: [x86-int8]
calibration: {source: mnist, batches: 3, batch_size: 16, seed: 7, observer: minmax}
qat: {steps: 50, lr: 0.005, freeze_bn_after: 40}
overrides: [{module: "layer4.*", quantize: false}]
checks: {max_steps: 2}
measure: {accuracy: false, latency: false, layers: true}
output: {dir: out, reports: [junit]}
)",
                                  "c", "/base");
  CHECK(c.pipeline.model == "zoo:resnet18");
  CHECK(qsdk::shapes_of(c.pipeline.inputs) == std::vector<std::vector<std::int64_t>>{{2, 3, 32, 32}});
  CHECK(c.pipeline.model_seed == 3);
  CHECK(c.pipeline.calibration.batches == 3);
  CHECK(c.pipeline.calibration.batch_size == 16);
  CHECK(c.pipeline.calibration.seed == 7);
  CHECK(c.pipeline.activation_observer == "minmax");
  REQUIRE(c.pipeline.qat.has_value());
  CHECK(c.pipeline.qat->steps == 50);
  CHECK(c.pipeline.qat->lr == doctest::Approx(0.005));
  CHECK(c.pipeline.qat->freeze_bn_after == 40);
  REQUIRE(c.pipeline.overrides.size() == 1);
  CHECK_FALSE(c.pipeline.overrides[0].quantize);
  CHECK(c.pipeline.max_steps == 2.0);
  CHECK_FALSE(c.pipeline.measure_accuracy);
  CHECK(c.output_dir == fs::path("/base/out"));  // relative to the config's directory
  CHECK(c.reports == std::vector<std::string>{"junit"});
}

TEST_CASE("an empty qat section means QAT with default settings") {
  const auto c = parse_run_config("model: zoo:mnist_cnn\nbackends: [arm]\nqat:\n", "c", {});
  REQUIRE(c.pipeline.qat.has_value());
  CHECK(c.pipeline.qat->steps == qsdk::QatOptions{}.steps);
}

TEST_CASE("syntax errors give line and column") {
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [x86-int8\n").find("cfg.yaml:3:1: YAML syntax error") == 0);
}

TEST_CASE("unknown keys are rejected with a suggestion") {
  const auto e = error_of("model: zoo:mnist_cnn\nbackend: [x86-int8]\n");
  CHECK(e.find("cfg.yaml:2:1: unknown key 'backend' (did you mean 'backends'?)") == 0);
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\ncalibration: {batchs: 2}\n")
            .find("cfg.yaml:3:15: unknown key 'batchs' (did you mean 'batches'?)") == 0);
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\noutput: {reports: [htm]}\n")
            .find("unknown report kind 'htm' (did you mean 'html'?)") != std::string::npos);
}

TEST_CASE("wrong types name the key and the value") {
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\ncalibration: {batches: many}\n") ==
        "cfg.yaml:3:24: batches has the wrong type: 'many'");
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\ncalibration: {batches: 0}\n") ==
        "cfg.yaml:3:24: batches must be at least 1");
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\nmeasure: {latency: sometimes}\n").find("cfg.yaml:3:20") == 0);
  CHECK(error_of("model: [zoo:mnist_cnn]\nbackends: [arm]\n") == "cfg.yaml:1:8: model must be a scalar");
}

TEST_CASE("duplicate keys and repeated backends are errors") {
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\nbackends: [x86-int8]\n") ==
        "cfg.yaml:3:1: duplicate key 'backends'");
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm, arm]\n") == "cfg.yaml:2:17: backend 'arm' selected twice");
}

TEST_CASE("models: unknown zoo names get a suggestion, missing files are named") {
  CHECK(error_of("model: zoo:mnist_cn\nbackends: [arm]\n")
            .find("cfg.yaml:1:8: missing model: no zoo model 'mnist_cn' (did you mean "
                  "'zoo:mnist_cnn'?)") == 0);
  CHECK(error_of("model: /nonexistent/m.pt\nbackends: [arm]\n")
            .find("cfg.yaml:1:8: missing model: no file /nonexistent/m.pt") == 0);
  CHECK(error_of("backends: [arm]\n").find("no model") != std::string::npos);
}

TEST_CASE("missing spec files are named") {
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\nspecs: [nope/none.yaml]\n")
            .find("cfg.yaml:3:9: spec file 'nope/none.yaml' not found (looked for ") == 0);
}

TEST_CASE("conflicting overrides are errors at their place") {
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm]\noverrides:\n  - {module: fc1, quantize: false, activation: "
                 "{dtype: int8}}\n") ==
        "cfg.yaml:4:5: conflicting override: quantize: false together with a spec change");
}

TEST_CASE("non-UTF-8 config text is refused") {
  CHECK(error_of("model: zoo:mnist\xff\n").find("not UTF-8") != std::string::npos);
}

TEST_CASE("load_run_config names a missing file and resolves paths against the config's directory") {
  CHECK_THROWS_WITH_AS(qsdk::load_run_config("/nonexistent/run.yaml"), "/nonexistent/run.yaml: no such config file",
                       InputError);
  const fs::path dir = fs::temp_directory_path() / "qsdk_run_config_test";
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "run.yaml") << "model: zoo:mnist_cnn\nbackends: [arm]\nplugins: {search_paths: [p]}\n"
                                             "output: {dir: o}\n";
  const auto c = qsdk::load_run_config(dir / "sub" / "run.yaml");
  CHECK(c.plugin_search_paths == std::vector<fs::path>{dir / "sub" / "p"});
  CHECK(c.output_dir == dir / "sub" / "o");
  fs::remove_all(dir);
}

TEST_CASE("the default config parses and round-trips through --print-config's YAML") {
  const auto c = qsdk::default_run_config();
  CHECK(c.backends.size() == 3);
  CHECK(c.pipeline.calibration.source == "mnist");
  const auto body = [](const std::string& yaml) { return yaml.substr(yaml.find('\n')); };  // after the comment
  const auto again = parse_run_config(qsdk::to_yaml(c), "printed", {});
  CHECK(body(qsdk::to_yaml(again)) == body(qsdk::to_yaml(c)));
}

TEST_CASE("a composition a+b takes options per member, and round-trips") {
  const auto c = parse_run_config(
      "model: zoo:mnist_cnn\nbackends:\n  per-channel+x86-int8: {per-channel: {weight_bits: 4}, x86-int8: {isa: "
      "avx2}}\n",
      "cfg.yaml", {});
  REQUIRE(c.backends.size() == 1);
  const auto& run = c.backends[0];
  CHECK(run.name == "per-channel+x86-int8");
  REQUIRE(run.backends.size() == 2);
  CHECK(run.backends[0].name == "per-channel");
  CHECK(run.backends[0].options.at("weight_bits") == "4");
  CHECK(run.backends[1].name == "x86-int8");
  CHECK(run.backends[1].options.at("isa") == "avx2");
  const auto options = c.pipeline_for(run);
  CHECK(options.backend_label() == "per-channel+x86-int8");
  const auto again = parse_run_config(qsdk::to_yaml(c), "printed", {});
  CHECK(again.backends[0].backends[1].options.at("isa") == "avx2");
  CHECK(error_of("model: zoo:mnist_cnn\nbackends:\n  arm+per-channel: {x86-int8: {isa: avx2}}\n")
            .find("cfg.yaml:3:21: 'x86-int8' is not a member of the composition arm+per-channel") == 0);
  CHECK(error_of("model: zoo:mnist_cnn\nbackends: [arm+arm]\n").find("composes backend 'arm' twice") !=
        std::string::npos);
}
