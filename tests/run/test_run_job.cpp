// The main job as a library call (run/run_job.h): no subprocess, the
// typed results checked directly. The CLI layer over it is in
// test_run_command.cpp; isolation and signals, which need processes, in
// test_isolation.cpp and test_run_command.cpp.
#include <torch/serialize.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "config/run_config.h"
#include "conformance/spec.h"
#include "pipeline/measurements_json.h"
#include "run/run_job.h"
#include "support/pipeline_fixture.h"
#include "support/temp_files.h"
#include "support/torch_doctest.h"  // first: see the header

namespace fs = std::filesystem;
using nlohmann::json;
using namespace qsdk;

namespace {

RunJobOptions job_for(const std::string& yaml, const fs::path& out) {
  RunJobOptions o;
  o.config = parse_run_config(yaml + "output: {dir: " + out.string() + "}\n", "job.yaml", {});
  return o;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  return file;
}

// Two backends, random calibration data, nothing slow measured.
RunJobOptions small_job(const fs::path& out) {
  return job_for(
      "model: zoo:mnist_cnn\nbackends:\n  x86-int8: {}\n  per-channel: {weight_bits: 4}\n"
      "calibration: {source: random, batches: 2, batch_size: 4}\n"
      "measure: {accuracy: false, latency: false, layers: false}\n",
      out);
}

// The InputError message of running `job` ("" when it runs).
std::string job_error(const RunJobOptions& job) {
  std::ostringstream progress;
  try {
    run_job(test::bundled_plugins(), job, progress);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void check_no_staging_left(const fs::path& out) {
  for (const auto& e : fs::directory_iterator(out))
    CHECK_MESSAGE(e.path().filename().string().rfind(".qsdk-run-", 0) != 0, "staging left behind");
}

}  // namespace

TEST_CASE("run_job: every backend's measurements come back typed, and the files say the same") {
  const test::TempDir dir("run_job");
  const auto out = dir.path / "out";
  auto job = job_for(
      "model: zoo:conv_bn_relu\nbackends: [x86-int8, arm]\ncalibration: {batches: 2, batch_size: 4}\n"
      "measure: {accuracy: false, latency: false, layers: true}\n",
      out);
  std::ostringstream progress;
  const RunJobResult r = run_job(test::bundled_plugins(), job, progress);
  CHECK(r.passed);
  CHECK(r.exit_code() == 0);
  REQUIRE(r.backends.size() == 2);
  for (const auto& b : r.backends) {
    REQUIRE(b.measurements);
    const Measurements& m = *b.measurements;
    CHECK(m.backend == b.backend);
    CHECK(m.sqnr_db > 10.0);
    CHECK(m.quantized_ops() > 0);
    CHECK_FALSE(m.layers.empty());
    CHECK(m.lowered.has_value());  // both bundled backends lower (onednn, qnnpack)
    // The manifest on disk is the same measurements, through the one reader.
    const auto manifest = read_json(out / b.backend / "manifest.json");
    CHECK(manifest["sqnr_db"].get<double>() == doctest::Approx(m.sqnr_db));
    CHECK(manifest["lowering"]["target"] == m.lowering_target);
    CHECK_FALSE(manifest.contains("details"));  // a projection: no per-node details
    CHECK(manifest["ops"]["quantized"].get<int>() == m.quantized_ops());
    CHECK(manifest["ops"]["float"].get<int>() + manifest["ops"]["bookkeeping"].get<int>() +
              manifest["ops"]["quantized"].get<int>() <=
          manifest["ops"]["total"].get<int>());
    const auto summary = read_json(out / "summary.json");
    bool found = false;
    for (const auto& e : summary["backends"])
      if (e["backend"] == b.backend) {
        found = true;
        const Measurements back = measurements_from_json(e, "summary.json");
        CHECK(back.quantized_size == m.quantized_size);
        CHECK(back.lowered->max_difference_steps == doctest::Approx(m.lowered->max_difference_steps));
      }
    CHECK(found);
  }
  CHECK(progress.str().find("qsdk run: arm: zoo:conv_bn_relu (PTQ)") != std::string::npos);
  const std::string table = summary_table(r, job.config, false);
  CHECK(table.find("x86-int8") != std::string::npos);
  // The ops column: int8 ops / float tensor ops, as the measurements count them.
  for (const auto& b : r.backends) {
    const Measurements& m = *b.measurements;
    CHECK(table.find(std::to_string(m.quantized_ops()) + " / " + std::to_string(m.float_tensor_ops())) !=
          std::string::npos);
  }
}

TEST_CASE("run_job: a composition runs as one row with each member's options") {
  const test::TempDir dir("run_job_compose");
  auto job = job_for(
      "model: zoo:conv_bn_relu\nbackends:\n  per-channel+arm: {per-channel: {weight_bits: 4}}\n"
      "calibration: {batches: 1, batch_size: 2}\nmeasure: {accuracy: false, latency: false, layers: false}\n",
      dir.path / "out");
  std::ostringstream progress;
  const RunJobResult r = run_job(test::bundled_plugins(), job, progress);
  REQUIRE(r.backends.size() == 1);
  REQUIRE(r.backends[0].measurements);
  const auto& run = r.backends[0].measurements->run;
  CHECK(r.backends[0].backend == "per-channel+arm");
  REQUIRE(run.backends.size() == 2);
  CHECK(run.backends[0].name == "per-channel");
  CHECK(run.backends[0].options.at("weight_bits") == "4");
  CHECK(run.backends[1].name == "arm");
  CHECK(fs::exists(dir.path / "out" / "per-channel+arm" / "manifest.json"));
}

TEST_CASE("run_job: a lowering check that fails is a failed result, not an exception") {
  const test::TempDir dir("run_job_fail");
  // max_steps 0: any rounding difference between kernels and reference fails.
  auto job = job_for(
      "model: zoo:residual_add\nbackends: [x86-int8]\ncalibration: {batches: 1, batch_size: 2}\n"
      "checks: {max_steps: 0}\nmeasure: {accuracy: false, latency: false, layers: false}\n",
      dir.path / "out");
  std::ostringstream progress;
  const RunJobResult r = run_job(test::bundled_plugins(), job, progress);
  REQUIRE(r.backends.size() == 1);
  REQUIRE(r.backends[0].measurements);
  const auto& l = r.backends[0].measurements->lowered;
  REQUIRE(l);
  if (l->max_difference_steps > 1e-3 || !l->first_over_limit.empty()) {
    CHECK_FALSE(r.passed);
    CHECK(r.exit_code() == 1);
    REQUIRE(r.check_failures.size() == 1);
    CHECK(r.check_failures[0].find("x86-int8: lowered model differs from its reference") == 0);
  } else {
    // Exact on this machine: then the job must pass.
    CHECK(r.passed);
  }
}

TEST_CASE("run_job: bad backends and options are errors at their place, before any output") {
  const test::TempDir dir("run_job_bad");
  const auto out = dir.path / "out";
  auto unknown = job_for("model: zoo:conv_bn_relu\nbackends: [x86_int8]\n", out);
  std::ostringstream progress;
  CHECK_THROWS_WITH_AS(run_job(test::bundled_plugins(), unknown, progress),
                       doctest::Contains("job.yaml:2:12: unknown backend 'x86_int8' (did you mean 'x86-int8'?)"),
                       InputError);
  auto option = job_for("model: zoo:conv_bn_relu\nbackends: {x86-int8: {isa: z80}}\n", out);
  CHECK_THROWS_WITH_AS(run_job(test::bundled_plugins(), option, progress),
                       doctest::Contains("job.yaml:2:12: option 'isa' = 'z80' is not one of"), InputError);
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("run_job: the manifest records every QAT option") {
  const test::TempDir dir("run_job_qat");
  auto job = job_for(
      "model: zoo:mnist_cnn\nbackends: [arm]\ncalibration: {source: mnist, batches: 1, batch_size: 2}\n"
      "qat: {steps: 2, batch_size: 2, optimizer: adam, lr: 0.001, lr_schedule: constant, weight_decay: 0.01}\n"
      "measure: {accuracy: false, latency: false, layers: false}\n",
      dir.path / "out");
  std::ostringstream progress;
  const RunJobResult r = run_job(test::bundled_plugins(), job, progress);
  REQUIRE(r.backends.at(0).measurements);
  const auto qat = read_json(dir.path / "out" / "arm" / "manifest.json")["qat"];
  CHECK(qat["optimizer"] == "adam");
  CHECK(qat["lr_schedule"] == "constant");
  CHECK(qat["weight_decay"].get<double>() == doctest::Approx(0.01));
  CHECK(qat["epochs"] == 0);
  CHECK(qat["steps"] == 2);
  CHECK(r.backends[0].measurements->qat_losses.size() == 2);
}

TEST_CASE("one reader: the same pipeline section gives the same PipelineOptions in a run config and a spec") {
  const std::string section =
      "calibration: {source: random, batches: 3, batch_size: 5, seed: 9, observer: minmax}\n"
      "qat: {steps: 7, optimizer: adam, lr: 0.002, lr_schedule: constant, momentum: 0.5, weight_decay: 0.1,\n"
      "      batch_size: 6, freeze_bn_after: 4, freeze_observers_after: 5}\n"
      "overrides: [{module: fc2, quantize: false}]\n"
      "checks: {max_steps: 3}\n"
      "measure: {accuracy: true, latency: false, layers: true}\n"
      "lower: false\n";
  const std::string model = "model: {zoo: mnist_cnn, seed: 4}\n";
  const RunConfig run = parse_run_config(model + "backends: [arm]\n" + section, "run.yaml", {});
  std::string indented;
  std::istringstream lines(section);
  for (std::string line; std::getline(lines, line);) indented += "  " + line + "\n";
  const conformance::LoadContext context{{"arm"}, {}, true, {}};
  const auto spec = conformance::parse_spec(model + "pipeline:\n" + indented, "spec.yaml", context);
  const PipelineOptions& a = run.pipeline;
  const PipelineOptions& b = spec.pipeline;
  CHECK(a.model == b.model);
  CHECK(shapes_of(a.inputs) == shapes_of(b.inputs));
  CHECK(a.model_seed == b.model_seed);
  CHECK(a.calibration.source == b.calibration.source);
  CHECK(a.calibration.batches == b.calibration.batches);
  CHECK(a.calibration.batch_size == b.calibration.batch_size);
  CHECK(a.calibration.seed == b.calibration.seed);
  CHECK(a.activation_observer == b.activation_observer);
  REQUIRE(a.qat);
  REQUIRE(b.qat);
  CHECK(to_json(Measurements{}).is_object());
  for (const auto* q : {&*a.qat, &*b.qat}) {
    CHECK(q->steps == 7);
    CHECK(q->optimizer == "adam");
    CHECK(q->lr_schedule == "constant");
    CHECK(q->weight_decay == doctest::Approx(0.1));
    CHECK(q->freeze_observers_after == 5);
  }
  CHECK(a.qat->momentum == b.qat->momentum);
  CHECK(a.qat->batch_size == b.qat->batch_size);
  REQUIRE(a.overrides.size() == 1);
  REQUIRE(b.overrides.size() == 1);
  CHECK(a.overrides[0].module_glob == b.overrides[0].module_glob);
  CHECK(a.overrides[0].quantize == b.overrides[0].quantize);
  CHECK(a.max_steps == b.max_steps);
  CHECK(a.measure_accuracy == b.measure_accuracy);
  CHECK(a.measure_latency == b.measure_latency);
  CHECK(a.per_layer_sqnr == b.per_layer_sqnr);
  CHECK(a.lower == b.lower);
  CHECK_FALSE(a.lower);
  // And one set of errors: the same mistake reads the same in both.
  auto error_in_run = [&](const std::string& text) {
    try {
      parse_run_config(model + "backends: [arm]\n" + text, "f.yaml", {});
    } catch (const InputError& e) {
      return e.cause();
    }
    return std::string();
  };
  auto error_in_spec = [&](const std::string& text) {
    try {
      conformance::parse_spec(model + "pipeline:\n  " + text, "f.yaml", context);
    } catch (const InputError& e) {
      return e.cause();
    }
    return std::string();
  };
  for (const std::string bad : {"calibration: {observer: maxmin}\n", "qat: {optimizer: lbfgs}\n",
                                "checks: {max_steps: -1}\n", "calibration: {batchs: 2}\n"}) {
    CAPTURE(bad);
    CHECK_FALSE(error_in_run(bad).empty());
    CHECK(error_in_run(bad) == error_in_spec(bad));
  }
}

TEST_CASE("run_job replaces only what it wrote: a user's files in the output directory stop it, untouched") {
  const test::TempDir tmp("run_job_owned");
  const fs::path out = tmp.path / "out";
  auto job = small_job(out);

  // A folder named like a backend that qsdk never wrote.
  fs::create_directories(out / "x86-int8" / "src");
  write(out / "x86-int8" / "src" / "main.c", "int main() {}\n");
  // Not qsdk's directory at all (no ledger): refused as a whole...
  CHECK(job_error(job).find(out.string() + ": is not empty and holds no qsdk outputs") != std::string::npos);
  // ...and with allow_unrelated_files, qsdk writes beside them, never over them.
  job.allow_unrelated_files = true;
  CHECK(job_error(job).find((out / "x86-int8").string() + ": exists and was not written by qsdk") != std::string::npos);
  job.allow_unrelated_files = false;
  CHECK(test::slurp(out / "x86-int8" / "src" / "main.c") == "int main() {}\n");
  CHECK_FALSE(fs::exists(out / "summary.json"));
  check_no_staging_left(out);

  // qsdk's own outputs are replaced run after run...
  fs::remove_all(out / "x86-int8");
  REQUIRE(job_error(job).empty());
  REQUIRE(job_error(job).empty());
  CHECK(fs::exists(out / ".qsdk-outputs.json"));

  // ...until a user adds a file inside one of them.
  write(out / "per-channel" / "notes.txt", "mine\n");
  CHECK(job_error(job).find((out / "per-channel" / "notes.txt").string() + ": was not written by qsdk") !=
        std::string::npos);
  CHECK(test::slurp(out / "per-channel" / "notes.txt") == "mine\n");
  CHECK(fs::exists(out / "per-channel" / "model.pt"));

  // A top-level file of the user's with a name qsdk writes is not replaced either.
  fs::remove(out / "per-channel" / "notes.txt");
  const fs::path other = tmp.path / "other";
  fs::create_directories(other);
  write(other / "summary.md", "my summary\n");
  auto elsewhere = small_job(other);
  elsewhere.allow_unrelated_files = true;
  CHECK(job_error(elsewhere).find((other / "summary.md").string() + ": exists and was not written by qsdk") !=
        std::string::npos);
  CHECK(test::slurp(other / "summary.md") == "my summary\n");
}

TEST_CASE("run_job: a job that fails part way leaves the earlier outputs as they were") {
  const test::TempDir tmp("run_job_intact");
  const fs::path out = tmp.path / "out";
  auto job = small_job(out);
  REQUIRE(job_error(job).empty());
  const auto manifest = test::slurp(out / "x86-int8" / "manifest.json");
  const auto model = test::slurp(out / "x86-int8" / "model.pt");

  // Calibration data of the wrong shape: the first backend fails at calibration.
  torch::save(torch::randn({3, 1, 5, 5}), (tmp.path / "bad.pt").string());
  job.config.pipeline.calibration.source = (tmp.path / "bad.pt").string();
  CHECK(job_error(job).find("bad.pt") != std::string::npos);
  CHECK(test::slurp(out / "x86-int8" / "manifest.json") == manifest);
  CHECK(test::slurp(out / "x86-int8" / "model.pt") == model);
  check_no_staging_left(out);
}
