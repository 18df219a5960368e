// Determinism: the same inputs and seed give bit-identical models, qparams,
// annotations and reports. `qsdk run` twice into two directories, and
// `qsdk conformance` serially (-j 1) and in parallel (-j 2). Only wall-clock
// fields ("seconds", "stages" with their peak memory, and latency, which these runs do not measure) may
// differ; they are removed before JSON files are compared.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "support/process.h"
#include "support/temp_files.h"

namespace fs = std::filesystem;
using nlohmann::json;
using qsdk::test::run_command;
using qsdk::test::shell_quote;
using qsdk::test::slurp;
using qsdk::test::TempDir;

namespace {

// Wall-clock measurements: legitimately different from run to run.
void drop_timing(json& j) {
  if (j.is_object()) {
    for (const char* key : {"seconds", "stages", "latency", "latency_ms"}) j.erase(key);
    for (auto& [key, value] : j.items()) drop_timing(value);
  } else if (j.is_array()) {
    for (auto& value : j) drop_timing(value);
  }
}

json timing_free(const fs::path& file) {
  json j = json::parse(slurp(file));
  drop_timing(j);
  return j;
}

// Every regular file under `dir`, relative to it, sorted.
std::set<std::string> files_under(const fs::path& dir) {
  std::set<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.insert(fs::relative(e.path(), dir).string());
  return files;
}

bool has_timing(const std::string& file) {
  const auto name = fs::path(file).filename().string();
  return name == "manifest.json" || name == "summary.json" || name == "results.json";
}

// Same file set; timing-free JSON equal for files with wall-clock fields,
// bytes equal for everything else. Returns the files compared.
std::set<std::string> check_same_outputs(const fs::path& a, const fs::path& b) {
  const auto files = files_under(a);
  CHECK(files == files_under(b));
  for (const auto& f : files) {
    INFO(f);
    if (!fs::exists(b / f)) continue;
    if (f == ".qsdk-lock") continue;  // the pid of the run that held it
    if (has_timing(f))
      CHECK(timing_free(a / f) == timing_free(b / f));
    else
      CHECK(slurp(a / f) == slurp(b / f));  // bit for bit
  }
  return files;
}

}  // namespace

TEST_CASE("qsdk run twice on one config and seed gives bit-identical models, qparams and reports") {
  TempDir tmp("qsdk_determinism_run");
  const fs::path config = tmp.path / "run.yaml";
  std::ofstream(config) << "model: zoo:mnist_cnn\nbackends: [x86-int8, per-channel]\n"
                           "calibration: {source: random, batches: 2, batch_size: 4, seed: 7}\n"
                           "measure: {latency: false}\n";
  for (const char* out : {"a", "b"}) {
    const auto r = run_command(shell_quote(QSDK_TEST_EXE) + " run " + shell_quote(config.string()) + " --output " +
                               shell_quote((tmp.path / out).string()));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  const auto files = check_same_outputs(tmp.path / "a", tmp.path / "b");
  // What the comparison must have covered.
  for (const char* f :
       {"x86-int8/model.pt", "x86-int8/model_reference.pt", "x86-int8/qparams.json", "x86-int8/annotation.json",
        "x86-int8/manifest.json", "per-channel/model.pt", "per-channel/qparams.json", "per-channel/annotation.json",
        "per-channel/manifest.json", "summary.json"}) {
    INFO(f);
    CHECK(files.count(f) == 1);
  }
  // The manifest's quantized size is the size of the model file written (it
  // was measured under a random temporary name the archive records, so it
  // changed from run to run).
  for (const char* backend : {"x86-int8", "per-channel"}) {
    INFO(backend);
    const json manifest = json::parse(slurp(tmp.path / "a" / backend / "manifest.json"));
    CHECK(manifest.at("size_bytes").at("quantized").get<std::uintmax_t>() ==
          fs::file_size(tmp.path / "a" / backend / "model.pt"));
  }
}

TEST_CASE("qsdk conformance gives identical results serially (-j 1) and in parallel (-j 2)") {
  TempDir tmp("qsdk_determinism_conformance");
  const std::string specs = shell_quote(std::string(QSDK_TEST_SOURCE_DIR) + "/specs/zoo/conv_bn_relu.yaml") + " " +
                            shell_quote(std::string(QSDK_TEST_SOURCE_DIR) + "/specs/unit/conv2d.yaml");
  for (const char* jobs : {"1", "2"}) {
    const auto r = run_command(shell_quote(QSDK_TEST_EXE) + " conformance " + specs + " -j " + jobs + " -o " +
                               shell_quote((tmp.path / jobs).string()));
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
  }
  const json serial = timing_free(tmp.path / "1" / "results.json");
  const json parallel = timing_free(tmp.path / "2" / "results.json");
  CHECK(serial.at("cases").size() == 6);  // 2 specs x 3 bundled backends
  CHECK(serial == parallel);
}
