// `qsdk run` as users run it, through the executable: exit codes, flag
// overrides, printed output, outputs that load, verify, and SIGINT. What
// the job itself does (outputs, ownership, failures part way) is tested as
// a library call in test_run_job.cpp.
#include <signal.h>
#include <torch/serialize.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/process.h"
#include "support/temp_files.h"
#include "support/torch_doctest.h"  // first: see the header

namespace fs = std::filesystem;
using qsdk::test::run_command;
using qsdk::test::shell_quote;
using qsdk::test::slurp;
using qsdk::test::TempDir;

namespace {

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  return file;
}

qsdk::test::CommandResult qsdk_run(const std::string& args) {
  return run_command(shell_quote(QSDK_TEST_EXE) + " run " + args);
}

// A small, quick config: random calibration data, no latency measurement.
std::string small_config(const fs::path& out, const std::string& extra = "") {
  return "model: zoo:mnist_cnn\nbackends:\n  x86-int8: {}\n  per-channel: {weight_bits: 4}\n"
         "calibration: {source: random, batches: 2, batch_size: 4}\n"
         "measure: {latency: false}\noutput: {dir: " +
         out.string() + "}\n" + extra;
}

}  // namespace

TEST_CASE("qsdk run writes loadable models, manifests and a summary, and exits 0") {
  TempDir tmp("qsdk_run_ok");
  const auto cfg = write(tmp.path / "run.yaml", small_config(tmp.path / "out"));
  const auto r = qsdk_run(shell_quote(cfg.string()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("x86-int8") != std::string::npos);
  CHECK(r.out.find("per-channel") != std::string::npos);
  CHECK(r.out.find("onednn") != std::string::npos);

  for (const std::string backend : {"x86-int8", "per-channel"}) {
    const fs::path dir = tmp.path / "out" / backend;
    for (const char* f : {"model.pt", "manifest.json", "qparams.json", "annotation.json", "layers.json"})
      CHECK_MESSAGE(fs::exists(dir / f), (dir / f).string());
    const auto manifest = nlohmann::json::parse(slurp(dir / "manifest.json"));
    CHECK(manifest["backends"][0]["name"] == backend);
    CHECK(manifest["sqnr_db"].get<double>() > 10.0);
    CHECK_FALSE(nlohmann::json::parse(slurp(dir / "layers.json")).empty());
    // The exported model loads and runs in LibTorch.
    auto module = torch::jit::load((dir / "model.pt").string());
    const auto out = module.forward({torch::randn({4, 1, 28, 28})}).toTensor();
    CHECK(out.sizes() == at::IntArrayRef{4, 10});
  }
  CHECK(fs::exists(tmp.path / "out" / "x86-int8" / "model_reference.pt"));
  // The manifest says what the model assumed of the CPU: the detected
  // features and onednn ISA, and the choice auto resolved to.
  const auto x86 = nlohmann::json::parse(slurp(tmp.path / "out" / "x86-int8" / "manifest.json"));
  const std::string chosen = x86["backend_options"].value("isa", "");
  CHECK((chosen == "vnni" || chosen == "avx2"));
  CHECK(x86["target"]["choices"]["isa"]["requested"] == "auto");
  CHECK(x86["target"]["choices"]["isa"]["chosen"] == chosen);
  // x86-int8 allows vnni and avx2: an AMX machine (int8_isa amx) gets vnni.
  const std::string int8_isa = x86["target"]["int8_isa"];
  CHECK(chosen == (int8_isa == "avx2" ? "avx2" : "vnni"));
  CHECK_FALSE(x86["target"]["onednn_isa"].get<std::string>().empty());
  // verify re-creates the rules with the recorded choice (on any machine).
  const auto verified =
      run_command(shell_quote(QSDK_TEST_EXE) + " verify " + shell_quote((tmp.path / "out" / "x86-int8").string()));
  CHECK(verified.exit_code == 0);
  CHECK(verified.out.find("x86-int8: rules unchanged") != std::string::npos);
  CHECK(nlohmann::json::parse(
            slurp(tmp.path / "out" / "per-channel" / "manifest.json"))["backend_options"]["weight_bits"] == "4");
  const auto summary = nlohmann::json::parse(slurp(tmp.path / "out" / "summary.json"));
  CHECK(summary["backends"].size() == 2);
  CHECK(summary["passed"] == true);
  for (const auto& e : fs::directory_iterator(tmp.path / "out"))
    CHECK_MESSAGE(e.path().filename().string().rfind(".qsdk-run-", 0) != 0, "staging left behind");
}

TEST_CASE("a token-id language model runs through qsdk run on random ids and on an int64 tensor file") {
  TempDir tmp("qsdk_run_lm");
  // The default config (all three backends, its checks), with the model and data from flags.
  const auto random = qsdk_run("--model zoo:tiny_lm --data random --batches 2 --no-specs -o " +
                               shell_quote((tmp.path / "random").string()));
  INFO(random.out, random.err);
  CHECK(random.exit_code == 0);
  for (const char* backend : {"x86-int8", "arm", "per-channel"}) {
    CAPTURE(backend);
    CHECK(fs::exists(tmp.path / "random" / backend / "model.pt"));
  }
  const auto manifest = nlohmann::json::parse(slurp(tmp.path / "random" / "x86-int8" / "manifest.json"));
  CHECK(manifest.dump().find("tiny_lm") != std::string::npos);

  // Ids saved from LibTorch as int32: converted to the model's int64, checked against [0, 256).
  const auto ids = torch::randint(0, 256, {8, 32}, torch::kInt);
  const auto bytes = torch::pickle_save(ids);
  std::ofstream(tmp.path / "ids.pt", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  const auto file = qsdk_run("--model zoo:tiny_lm --data " + shell_quote((tmp.path / "ids.pt").string()) +
                             " --batches 2 --no-specs -o " + shell_quote((tmp.path / "file").string()));
  INFO(file.out, file.err);
  CHECK(file.exit_code == 0);
  CHECK(fs::exists(tmp.path / "file" / "arm" / "model.pt"));

  // Ids beyond the embedding's 256 rows are the data's fault, named as such.
  const auto big = torch::pickle_save(torch::full({8, 32}, 300, torch::kLong));
  std::ofstream(tmp.path / "big.pt", std::ios::binary).write(big.data(), std::streamsize(big.size()));
  const auto bad = qsdk_run("--model zoo:tiny_lm --data " + shell_quote((tmp.path / "big.pt").string()) +
                            " --no-specs -o " + shell_quote((tmp.path / "bad").string()));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("big.pt") != std::string::npos);
  CHECK(bad.err.find("internal error") == std::string::npos);
}

TEST_CASE("flags override the config, and --print-config shows the merged result") {
  TempDir tmp("qsdk_run_flags");
  const auto cfg = write(tmp.path / "run.yaml", small_config(tmp.path / "out"));
  const auto r = qsdk_run(shell_quote(cfg.string()) +
                          " --print-config --backend per-channel --model zoo:resnet18 "
                          "--output /elsewhere --batches 5");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("source: zoo:resnet18") != std::string::npos);
  CHECK(r.out.find("per-channel: {weight_bits: 4}") != std::string::npos);  // the config's options stay
  CHECK(r.out.find("x86-int8") == std::string::npos);
  CHECK(r.out.find("dir: /elsewhere") != std::string::npos);
  CHECK(r.out.find("batches: 5") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path / "out"));  // printing runs nothing
}

TEST_CASE("a failed check exits 1 and says which") {
  TempDir tmp("qsdk_run_check");
  // Zero steps allowed between each lowered onednn kernel and the reference:
  // requantization in real kernels rounds some value of a deep model one
  // step the other way (resnet18: 1 step on AVX2 and on VNNI machines). (At
  // the output alone it would still pass: as close to float as the reference.)
  const auto cfg =
      write(tmp.path / "run.yaml", small_config(tmp.path / "out", "checks: {max_steps: 0, kernel_max_steps: 0}\n"));
  const auto r = qsdk_run(shell_quote(cfg.string()) + " --backend x86-int8 --model zoo:resnet18");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("check failed: x86-int8: lowered model differs from its reference") != std::string::npos);
  CHECK(nlohmann::json::parse(slurp(tmp.path / "out" / "summary.json"))["passed"] == false);
}

TEST_CASE("bad input exits 2 with the place and cause") {
  TempDir tmp("qsdk_run_bad");
  auto r = qsdk_run(shell_quote((tmp.path / "missing.yaml").string()));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("missing.yaml: no such config file") != std::string::npos);

  auto cfg = write(tmp.path / "typo.yaml", "model: zoo:mnist_cnn\nbackends: [x86-int8]\ncalibraton: {}\n");
  r = qsdk_run(shell_quote(cfg.string()));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("typo.yaml:3:1: unknown key 'calibraton' (did you mean 'calibration'?)") != std::string::npos);

  cfg = write(tmp.path / "backend.yaml", "model: zoo:mnist_cnn\nbackends: [x86_int8]\n");
  r = qsdk_run(shell_quote(cfg.string()));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("backend.yaml:2:12: unknown backend 'x86_int8' (did you mean 'x86-int8'?)") != std::string::npos);

  cfg = write(tmp.path / "option.yaml", "model: zoo:mnist_cnn\nbackends: {per-channel: {weight_bits: 5}}\n");
  r = qsdk_run(shell_quote(cfg.string()));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("option.yaml:2:12:") != std::string::npos);
  CHECK(r.err.find("weight_bits") != std::string::npos);

  r = qsdk_run(shell_quote(cfg.string()) + " --model /nonexistent/model.pt --backend arm");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("/nonexistent/model.pt") != std::string::npos);
}

TEST_CASE("qsdk verify: unchanged rules pass, a model made with other rules is reported rule by rule") {
  TempDir tmp("qsdk_verify");
  const auto out = tmp.path / "out";
  REQUIRE(run_command(shell_quote(QSDK_TEST_EXE) + " convert zoo:conv_bn_relu -b arm --data random --batches 1 " +
                      "--output " + shell_quote(out.string()))
              .exit_code == 0);
  const fs::path dir = out / "arm";
  auto r = run_command(shell_quote(QSDK_TEST_EXE) + " verify " + shell_quote(dir.string()));
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("arm: rules unchanged") != std::string::npos);

  // As if the model had been made by an earlier arm plugin whose conv
  // activations used 7 bits: its stamp and its rules file say so.
  auto manifest = nlohmann::json::parse(slurp(dir / "manifest.json"));
  CHECK(manifest["backends"][0]["rule_hash"].get<std::string>().size() == 40);
  manifest["backends"][0]["rule_hash"] = std::string(40, '0');
  write(dir / "manifest.json", manifest.dump());
  std::string rules = slurp(dir / "rules-arm.yaml");
  const auto at = rules.find("quant_max: 255");
  REQUIRE(at != std::string::npos);
  rules.replace(at, 14, "quant_max: 127");
  write(dir / "rules-arm.yaml", rules);
  r = run_command(shell_quote(QSDK_TEST_EXE) + " verify " + shell_quote(dir.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("arm: RULES CHANGED since the model was made") != std::string::npos);
  CHECK(r.out.find("[0, 127] affine per_tensor moving_average_minmax -> observed uint8 [0, 255]") != std::string::npos);

  r = run_command(shell_quote(QSDK_TEST_EXE) + " verify " + shell_quote(tmp.path.string()));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("manifest.json: no manifest") != std::string::npos);
}

TEST_CASE("SIGINT in the middle of a run removes its temporaries and leaves earlier outputs intact") {
  TempDir tmp("qsdk_run_interrupt");
  const auto out = tmp.path / "out";
  const auto cfg = write(tmp.path / "run.yaml", small_config(out));
  REQUIRE(qsdk_run(shell_quote(cfg.string())).exit_code == 0);
  const auto manifest = slurp(out / "x86-int8" / "manifest.json");

  // A slower run into the same directory, interrupted once it has staged something.
  const auto slow = write(tmp.path / "slow.yaml",
                          "model: zoo:resnet18\nbackends: [per-channel, x86-int8]\n"
                          "calibration: {source: random, batches: 200, batch_size: 8}\n"
                          "output: {dir: " +
                              out.string() + "}\n");
  const auto started =
      run_command(shell_quote(QSDK_TEST_EXE) + " run " + shell_quote(slow.string()) + " >/dev/null 2>&1 & echo $!");
  const pid_t pid = std::stoi(started.out);
  auto staged = [&] {
    for (const auto& e : fs::directory_iterator(out))
      if (e.path().filename().string().rfind(".qsdk-run-", 0) == 0) return true;
    return false;
  };
  for (int i = 0; i < 600 && !staged(); ++i) usleep(50 * 1000);
  REQUIRE(staged());
  usleep(500 * 1000);
  REQUIRE(kill(pid, SIGINT) == 0);
  for (int i = 0; i < 200 && kill(pid, 0) == 0; ++i) usleep(50 * 1000);
  CHECK(kill(pid, 0) != 0);  // it stopped

  CHECK_FALSE(staged());
  for (const auto& e : fs::recursive_directory_iterator(out))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp-") == std::string::npos, e.path().string());
  CHECK(slurp(out / "x86-int8" / "manifest.json") == manifest);
}

TEST_CASE("qsdk run with a qat: section fine-tunes with fake-quantize and converts like PTQ") {
  TempDir tmp("qsdk_run_qat");
  const auto cfg = write(tmp.path / "qat.yaml",
                         "model: zoo:mnist_cnn_trained\nbackends: [x86-int8]\n"
                         "calibration: {source: mnist, batch_size: 32}\n"
                         "qat: {steps: 30, lr: 0.005, freeze_bn_after: 20}\n"
                         "measure: {latency: false, layers: false}\n"
                         "output: {dir: " +
                             (tmp.path / "out").string() + "}\n");
  const auto r = qsdk_run(shell_quote(cfg.string()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto manifest = nlohmann::json::parse(slurp(tmp.path / "out" / "x86-int8" / "manifest.json"));
  CHECK(manifest["mode"] == "qat");
  CHECK(manifest["qat"]["steps"] == 30);
  CHECK(manifest["qat"]["final_loss"].get<double>() < 1.0);
  CHECK(manifest["accuracy"]["quantized_top1"].get<double>() > 0.95);  // a trained MNIST CNN stays trained
  CHECK(r.out.find("x86-int8  qat") != std::string::npos);
  auto module = torch::jit::load((tmp.path / "out" / "x86-int8" / "model.pt").string());
  CHECK(module.forward({torch::randn({32, 1, 28, 28})}).toTensor().sizes() == at::IntArrayRef{32, 10});
}

TEST_CASE("qsdk convert composes backends in order, each with its own -o NAME:KEY=VALUE options") {
  TempDir tmp("qsdk_convert_compose");
  const auto out = tmp.path / "out";
  const auto r = run_command(shell_quote(QSDK_TEST_EXE) +
                             " convert zoo:conv_bn_relu -b arm -b per-channel -o per-channel:weight_bits=4 "
                             "--batches 1 --batch-size 2 --output " +
                             shell_quote(out.string()));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto manifest = nlohmann::json::parse(slurp(out / "arm+per-channel" / "manifest.json"));
  REQUIRE(manifest["backends"].size() == 2);
  CHECK(manifest["backends"][1]["name"] == "per-channel");
  CHECK(manifest["backends"][1]["options"]["weight_bits"] == "4");
  const auto bad = run_command(shell_quote(QSDK_TEST_EXE) + " convert zoo:conv_bn_relu -b arm -o x86-int8:isa=avx2 " +
                               "--output " + shell_quote(out.string()));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--option x86-int8:isa=avx2: 'x86-int8' is not one of the --backend names given") !=
        std::string::npos);
}
