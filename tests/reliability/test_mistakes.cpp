// A user's mistake is an error naming the input and the cause, exit 2, one
// line, no traceback: never an "internal error", never a crash, never an
// allocation the machine cannot make.
#include <torch/script.h>
#include <torch/serialize.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

#include "reliability/run_qsdk.h"
#include "support/process.h"
#include "support/temp_files.h"
#include "support/torch_doctest.h"  // first: see the header

namespace fs = std::filesystem;
using qsdk::test::run_command;
using qsdk::test::run_qsdk;
using qsdk::test::shell_quote;
using qsdk::test::TempDir;

namespace {

// A conv model saved from LibTorch, taking [N, 3, H, W].
fs::path save_conv_model(const fs::path& file) {
  torch::jit::Module m("Conv");
  m.register_parameter("weight", torch::randn({4, 3, 3, 3}), false);
  m.define("def forward(self, x):\n  return torch.conv2d(x, self.weight)\n");
  m.save(file.string());
  return file;
}

void check_user_error(const qsdk::test::CommandResult& r, const std::string& expected) {
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(expected) != std::string::npos);
  CHECK(r.err.find("internal error") == std::string::npos);
  CHECK(r.err.find("Traceback") == std::string::npos);
  CHECK(r.err.find("frame #") == std::string::npos);
}

}  // namespace

TEST_CASE("an input shape of the wrong rank, or too large to allocate, is an error naming it") {
  TempDir tmp("qsdk_bad_shapes");
  const auto model = shell_quote(save_conv_model(tmp.path / "conv.pt").string());
  const auto out = " -b arm --output " + shell_quote((tmp.path / "o").string());
  check_user_error(run_qsdk("convert " + model + " --input-shape 1,3" + out),
                   "input shape [1,3] does not fit the model: RuntimeError: Expected 3D (unbatched) or 4D");
  check_user_error(run_qsdk("convert " + model + " --input-shape 99999999999,3,8,8" + out),
                   "example inputs [99999999999,3,8,8]: needs ");
  check_user_error(run_qsdk("convert " + model + " --input-shape 4611686018427387904,4611686018427387904" + out),
                   "the tensor's size overflows 64 bits");
  check_user_error(run_qsdk("--memory-budget 1 convert " + model + " --input-shape 1,3,32,32 --batch-size 4096" + out),
                   "a batch of 4096 for " + (tmp.path / "conv.pt").string() + ": needs ");
  CHECK_FALSE(fs::exists(tmp.path / "o" / "arm"));
}

TEST_CASE("a model file declaring huge weights it does not store is refused before it is materialized") {
  TempDir tmp("qsdk_bomb_model");
  torch::jit::Module m("Bomb");
  // 4 bytes stored, a 20000x20000 (1.5 GiB) stride-0 view declared.
  m.register_parameter("w", torch::zeros({1}).expand({20000, 20000}), false);
  m.define("def forward(self, x):\n  return torch.linear(x, self.w)\n");
  const auto file = tmp.path / "bomb.pt";
  m.save(file.string());
  REQUIRE(fs::file_size(file) < 10000);
  check_user_error(run_qsdk("convert " + shell_quote(file.string()) + " --input-shape 1,20000 -b arm --output " +
                            shell_quote((tmp.path / "o").string())),
                   "tensor 'w' is a [20000,20000] view of 4 bytes of storage");
}

TEST_CASE("NaN in a model's weights is blamed on the weight and the file, not on the calibration data") {
  TempDir tmp("qsdk_nan_weights");
  torch::jit::Module inner("Inner");
  auto w = torch::randn({4, 3, 3, 3});
  w[2][1][0][2] = std::numeric_limits<float>::quiet_NaN();
  inner.register_parameter("weight", w, false);
  inner.define("def forward(self, x):\n  return torch.conv2d(x, self.weight)\n");
  torch::jit::Module m("Outer");
  m.register_module("features", inner);
  m.define("def forward(self, x):\n  return self.features.forward(x)\n");
  const auto file = tmp.path / "nan.pt";
  m.save(file.string());
  const auto r = run_qsdk("convert " + shell_quote(file.string()) + " --input-shape 1,3,8,8 -b arm --output " +
                          shell_quote((tmp.path / "o").string()));
  check_user_error(r, file.string() +
                          ": tensor 'features.weight' [4,3,3,3] holds 1 NaN or Inf value(s), the first "
                          "at [2, 1, 0, 2]");
  CHECK(r.err.find("calibration") == std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path / "o" / "arm"));
}

TEST_CASE("a graph that fixes its batch is refused at capture, naming the node, unless calibrated at that batch") {
  TempDir tmp("qsdk_fixed_batch");
  torch::jit::Module m("FixedBatch");
  m.register_parameter("weight", torch::randn({4, 3, 3, 3}), false);
  m.define("def forward(self, x):\n  return torch.conv2d(x, self.weight).reshape(1, -1)\n");
  const auto file = tmp.path / "fixed.pt";
  m.save(file.string());
  const auto model = shell_quote(file.string()) + " --input-shape 1,3,8,8 -b arm --data random --batches 2";
  const auto r = run_qsdk("convert " + model + " --batch-size 4 --output " + shell_quote((tmp.path / "o").string()));
  check_user_error(r,
                   "the traced graph fixes the batch at 1: %1 aten::reshape takes the constant shape [1,-1]; output 0 "
                   "keeps 1 rows at batch 2");
  CHECK(r.err.find("Calibrate with batch_size 1") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path / "o" / "arm"));
  const auto ok = run_qsdk("convert " + model + " --batch-size 1 --output " + shell_quote((tmp.path / "ok").string()));
  INFO(ok.out, ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("note: capture: the traced graph fixes the batch at 1") != std::string::npos);
  // A batch-free model says nothing.
  const auto free = run_qsdk("convert " + shell_quote(save_conv_model(tmp.path / "free.pt").string()) +
                             " --input-shape 1,3,8,8 -b arm --data random --batches 2 --batch-size 4 --output " +
                             shell_quote((tmp.path / "free").string()));
  CHECK(free.exit_code == 0);
  CHECK(free.out.find("fixes the batch") == std::string::npos);
}

TEST_CASE("calibration data that overflows float32 inside the model names the value it reached") {
  TempDir tmp("qsdk_huge_values");
  const auto data = tmp.path / "huge.pt";
  const auto bytes = torch::pickle_save(torch::full({4, 64}, 3e38));
  std::ofstream(data, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  check_user_error(run_qsdk("convert zoo:linear_relu -b arm --data " + shell_quote(data.string()) + " --output " +
                            shell_quote((tmp.path / "o").string())),
                   "NaN or Inf reached this observer");
}

TEST_CASE("limits that cannot be represented are refused instead of wrapping to 0 s") {
  for (const char* value : {"1e10", "inf", "nan", "-1"}) {
    CAPTURE(value);
    auto r = run_qsdk(std::string("conformance --timeout ") + value);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--timeout") != std::string::npos);
    r = run_qsdk(std::string("run --isolate --backend-timeout ") + value);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--backend-timeout") != std::string::npos);
  }
  const auto r = run_qsdk("conformance --memory-limit 99999999999");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--memory-limit") != std::string::npos);
}

TEST_CASE("--batches 0 on a source without an end is an error, not silently ignored") {
  TempDir tmp("qsdk_batches_0");
  const auto r = run_qsdk("run --model zoo:linear_relu -b arm --data random --batches 0 --no-specs -o " +
                          shell_quote((tmp.path / "o").string()));
  check_user_error(r, "source random needs batches >= 1");
}

TEST_CASE("an error quoting a huge input stays readable") {
  const std::string path(20000, 'p');
  const auto r = run_qsdk("run " + path + ".yaml");
  CHECK(r.exit_code == 2);
  CHECK(r.err.size() < 2000);
  CHECK(r.err.find("characters omitted") != std::string::npos);
}

TEST_CASE("a model that takes integer token ids, given float example inputs, is one line and exit 2") {
  TempDir tmp("qsdk_token_model");
  // An embedding: its input must be Long indices, which a float --input-shape is not.
  torch::jit::Module m("Tokens");
  m.register_parameter("table", torch::randn({100, 16}), false);
  m.define("def forward(self, x):\n  return torch.embedding(self.table, x)\n");
  const auto file = tmp.path / "tokens.pt";
  m.save(file.string());
  const auto r = run_qsdk("convert " + shell_quote(file.string()) + " --input-shape 1,8 -b arm --output " +
                          shell_quote((tmp.path / "o").string()));
  check_user_error(r,
                   "input 0 (x) of the model wants int64 token ids (it indexes aten::embedding (100 rows)), "
                   "not float32: declare it, e.g. --input 1,8:int64");
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);

  // Declared, it runs: the range comes from the table's 100 rows.
  const auto ok = run_qsdk("convert " + shell_quote(file.string()) + " --input 1,8:int64 -b arm --data random " +
                           "--batches 2 --output " + shell_quote((tmp.path / "o").string()));
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  // A range past the table is refused before anything runs.
  const auto past = run_qsdk("convert " + shell_quote(file.string()) + " --input 1,8:int64:0..300 -b arm --output " +
                             shell_quote((tmp.path / "o2").string()));
  check_user_error(past,
                   "input 0 (x): range 0..300 does not fit aten::embedding (100 rows): token ids must lie in 0..100");
}

TEST_CASE("global options are accepted after the subcommand, as people type them") {
  TempDir tmp("qsdk_global_after");
  const auto before = run_qsdk("--plugin-dir " + shell_quote(tmp.path.string()) + " plugins list");
  const auto after = run_qsdk("plugins list --plugin-dir " + shell_quote(tmp.path.string()));
  INFO(after.err);
  CHECK(after.exit_code == 0);
  CHECK(after.out == before.out);
  CHECK(run_qsdk("inspect zoo:conv_bn_relu --threads 1").exit_code == 0);
  CHECK(run_qsdk("plugins list --no-such-flag").exit_code == 2);
}
