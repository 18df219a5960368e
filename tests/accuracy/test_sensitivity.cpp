// Sensitivity analysis (accuracy/sensitivity.h): one unit made much worse
// than the others by an override must come out first, its own SQNR lowest
// and the model without it best; and the qsdk sensitivity CLI writes its
// three reports and refuses bad input cleanly.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "accuracy/sensitivity.h"
#include "config/run_config.h"
#include "pipeline/pipeline.h"
#include "support/pipeline_fixture.h"
#include "support/process.h"
#include "support/temp_files.h"
#include "support/torch_doctest.h"  // first: see the header

namespace fs = std::filesystem;
using namespace qsdk;

namespace {

// The MNIST CNN on random data, per-channel at 8 bits, with fc1's
// activations cut to 2 bits: the one unit that should dominate.
constexpr const char* kConfig =
    "model: zoo:mnist_cnn\n"
    "backends: [per-channel]\n"
    "calibration: {source: random, batches: 2, batch_size: 4}\n"
    "overrides:\n"
    "  - {module: fc1, activation: {quant_min: 0, quant_max: 3}}\n";

SensitivityReport analyse(const std::string& yaml) {
  const RunConfig c = parse_run_config(yaml, "sensitivity.yaml", {});
  const auto& b = c.backends.at(0);
  return analyse_sensitivity(test::bundled_plugins(), c.pipeline_for(b),
                             instantiate_backends(test::bundled_plugins(), b.backends), nullptr);
}

}  // namespace

TEST_CASE("sensitivity ranks the unit an override narrows first") {
  const SensitivityReport r = analyse(kConfig);
  // conv1, conv2 (conv-relu), fc1, fc2 (linear-relu), fc3; pools and
  // flatten share their input's qparams and are no units.
  REQUIRE(r.units.size() == 5);
  CHECK(r.units.front().label.find("(fc1)") != std::string::npos);
  CHECK(!r.full.top1);  // random data has no labels
  for (const auto& u : r.units) {
    INFO(u.label);
    // Alone, a unit costs at least as much as... nothing: below float (inf).
    CHECK(std::isfinite(u.only.sqnr_db));
    CHECK(u.only.sqnr_db >= r.units.front().only.sqnr_db);
    CHECK(u.all_but.sqnr_db <= r.units.front().all_but.sqnr_db);
  }
  // Leaving fc1 float recovers far more than any other unit does.
  CHECK(r.units.front().all_but.sqnr_db > r.full.sqnr_db + 6.0);
  CHECK(r.units.at(1).all_but.sqnr_db < r.full.sqnr_db + 3.0);
  const auto j = sensitivity_json(r);
  CHECK(j["units"].size() == 5);
  CHECK(j["units"][0]["rank"] == 1);
  CHECK(j["units"][0]["nodes"].size() == 2);  // linear + relu
  CHECK(sensitivity_html(r).find("<svg") != std::string::npos);
  CHECK(sensitivity_table(r, true).find("| 1 | %") != std::string::npos);
}

TEST_CASE("qsdk sensitivity writes json, md and html and refuses bad input") {
  test::TempDir dir("qsdk_sensitivity_cli");
  const fs::path config = dir.path / "s.yaml";
  std::ofstream(config) << kConfig;
  const auto out = dir.path / "out";
  const auto exe = test::shell_quote(QSDK_TEST_EXE);
  const auto ok = test::run_command(exe + " sensitivity " + test::shell_quote(config.string()) + " -o " + out.string());
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  for (const char* ext : {".json", ".md", ".html"})
    CHECK(fs::exists(out / "sensitivity" / ("per-channel" + std::string(ext))));
  CHECK(ok.out.find("rank") != std::string::npos);
  const auto doc = nlohmann::json::parse(test::slurp(out / "sensitivity" / "per-channel.json"));
  CHECK(doc["backend"] == "per-channel");

  // A file qsdk did not write is never replaced.
  fs::create_directories(dir.path / "mine" / "sensitivity");
  std::ofstream(dir.path / "mine" / "sensitivity" / "notes.txt") << "mine\n";
  const auto refused = test::run_command(exe + " sensitivity " + test::shell_quote(config.string()) + " -o " +
                                         (dir.path / "mine").string());
  CHECK(refused.exit_code == 2);
  CHECK(test::slurp(dir.path / "mine" / "sensitivity" / "notes.txt") == "mine\n");

  // An unknown backend names the flag.
  const auto bad = test::run_command(exe + " sensitivity -b nope -o " + (dir.path / "o2").string());
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("nope") != std::string::npos);
  CHECK(bad.err.find("internal error") == std::string::npos);
}
