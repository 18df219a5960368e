// Inputs scripts/fuzz.sh (fuzz/) and its review found: each once crashed,
// hung, or threw something other than qsdk::InputError. Bad input must
// surface as an InputError naming where it is.
#include <filesystem>
#include <string>

#include "common/error.h"
#include "common/yaml_input.h"
#include "config/run_config.h"
#include "conformance/spec.h"
#include "plugins/backend_yaml.h"
#include "plugins/rule_validation.h"
#include "support/torch_doctest.h"  // after the torch-including headers: drops glog's CHECK

namespace {

const std::filesystem::path kBase = std::filesystem::temp_directory_path();

// Ten aliases per level, `levels` levels: 10^levels nodes once expanded.
std::string alias_bomb(int levels) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= levels; ++i) {
    const std::string prev = "*a" + std::to_string(i - 1);
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += (k ? ", " : "") + prev;
    text += "]\n";
  }
  return text;
}

const char* const kBackendHead = "name: b\nversion: \"1\"\nlowering: reference\n";

}  // namespace

TEST_CASE("fuzz regression: YAML aliases expanding to billions of nodes are refused, not walked") {
  // 10^9 nodes: walking them took minutes per reader (a hang for the fuzzer).
  const std::string bomb = alias_bomb(9);
  CHECK_THROWS_WITH_AS(qsdk::yaml::load_text(bomb, "bomb.yaml"), doctest::Contains("aliases"), qsdk::InputError);
  CHECK_THROWS_AS(qsdk::parse_run_config(bomb + "model: zoo:mnist_cnn\nbackends: [arm]\n", "bomb.yaml", kBase),
                  qsdk::InputError);
  CHECK_THROWS_AS(qsdk::backend_from_yaml(std::string(kBackendHead) + bomb + "rules: []\n", "bomb.yaml"),
                  qsdk::InputError);
  // A few aliases, as people write them, still load.
  CHECK_NOTHROW(qsdk::yaml::load_text(alias_bomb(2), "small.yaml"));
}

TEST_CASE("fuzz regression: backend YAML options or allowed values that are not lists are an InputError") {
  // Iterating a mapping where a list was expected threw YAML::InvalidNode.
  CHECK_THROWS_WITH_AS(qsdk::backend_from_yaml(std::string(kBackendHead) + "options: {a: b}\nrules: []\n", "o.yaml"),
                       doctest::Contains("o.yaml:4:10: options must be a list"), qsdk::InputError);
  CHECK_THROWS_WITH_AS(qsdk::backend_from_yaml(
                           std::string(kBackendHead) + "options: [{name: o, allowed: {a: b}}]\nrules: []\n", "o.yaml"),
                       doctest::Contains("allowed must be a list"), qsdk::InputError);
  // A scalar was silently read as no allowed values at all.
  CHECK_THROWS_AS(
      qsdk::backend_from_yaml(std::string(kBackendHead) + "options: [{name: o, allowed: x}]\nrules: []\n", "o.yaml"),
      qsdk::InputError);
  const auto ok = qsdk::backend_from_yaml(
      std::string(kBackendHead) + "options: [{name: o, allowed: [x, y]}]\nrules: []\n", "o.yaml");
  REQUIRE(ok.options.size() == 1);
  CHECK(ok.options[0].allowed == std::vector<std::string>{"x", "y"});
}

TEST_CASE("fuzz regression: backend YAML with duplicate keys is refused like configs and specs") {
  CHECK_THROWS_WITH_AS(qsdk::backend_from_yaml(std::string(kBackendHead) + "rules: []\nrules: []\n", "d.yaml"),
                       doctest::Contains("duplicate key 'rules'"), qsdk::InputError);
}

TEST_CASE("fuzz regression: control characters in YAML are refused, so printed configs stay readable") {
  // fuzz_config: a NUL inside a backend name parsed, and --print-config then
  // wrote text that was not UTF-8, so the printout did not read back.
  const std::string nul_key = std::string("model: zoo:mnist_cnn\nbackends: {x86-int8, bat") + '\0' + "es}\n";
  CHECK_THROWS_WITH_AS(qsdk::parse_run_config(nul_key, "nul.yaml", kBase),
                       doctest::Contains("nul.yaml:2: control character 0"), qsdk::InputError);
  // The same through an escape in a double-quoted scalar.
  CHECK_THROWS_WITH_AS(qsdk::parse_run_config("model: zoo:mnist_cnn\nbackends: [\"arm\\x01\"]\n", "esc.yaml", kBase),
                       doctest::Contains("esc.yaml:2:12: control character 1"), qsdk::InputError);
  CHECK_THROWS_AS(qsdk::backend_from_yaml(std::string(kBackendHead) + "description: \"a\\0b\"\nrules: []\n", "d.yaml"),
                  qsdk::InputError);
  // Tabs, newlines and carriage returns are text.
  const auto ok = qsdk::parse_run_config("model: zoo:mnist_cnn\r\nbackends: [arm]\t\r\n", "ok.yaml", kBase);
  CHECK(ok.backends.size() == 1);
}

TEST_CASE("fuzz regression: a model or spec path too long to stat is 'not found', not a filesystem_error") {
  // fuzz_config: std::filesystem::exists threw filesystem_error ("File name
  // too long") for a path component over NAME_MAX.
  const std::string long_name(300, 'x');
  CHECK_THROWS_WITH_AS(qsdk::parse_run_config("model: " + long_name + ".pt\nbackends: [arm]\n", "long.yaml", kBase),
                       doctest::Contains("missing model: no file"), qsdk::InputError);
  CHECK_THROWS_WITH_AS(
      qsdk::parse_run_config("model: zoo:mnist_cnn\nbackends: [arm]\nspecs: [" + long_name + "]\n", "long.yaml", kBase),
      doctest::Contains("not found"), qsdk::InputError);
}
