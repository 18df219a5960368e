// Inputs that would stall or exhaust qsdk are refused up front, naming the
// file: FIFOs and devices (which would block or never end) and files far
// larger than any real config.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

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

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  return file;
}

}  // namespace

TEST_CASE("a FIFO or a device given as any input is refused, naming it, without waiting on it") {
  TempDir tmp("qsdk_fifo_inputs");
  const fs::path fifo = tmp.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto cfg = write(tmp.path / "run.yaml",
                         "model: zoo:linear_relu\nbackends: [arm]\n"
                         "calibration: {source: random, batches: 1, batch_size: 2}\nmeasure: {latency: false}\n"
                         "output: {dir: " +
                             (tmp.path / "out").string() + "}\n");
  const std::string f = shell_quote(fifo.string()), c = shell_quote(cfg.string());
  struct Case {
    std::string args, expected;
  };
  const Case cases[] = {
      {"run " + f, "fifo: is a FIFO, expected a regular config file"},
      {"run /dev/zero", "/dev/zero: is a character device, expected a regular config file"},
      {"run " + c + " --model " + f + " --input-shape 2,4", "fifo: is a FIFO, expected a regular TorchScript file"},
      {"run " + c + " --data " + f, "fifo: is a FIFO"},
      {"convert zoo:linear_relu -b arm --overrides " + f + " --output " + shell_quote((tmp.path / "o").string()),
       "fifo: is a FIFO, expected a regular YAML file"},
      {"convert zoo:linear_relu -b arm --load-stats /dev/zero --output " + shell_quote((tmp.path / "o").string()),
       "/dev/zero: is a character device, expected a regular statistics file"},
      {"conformance " + f, "fifo: is a FIFO"},
  };
  for (const auto& k : cases) {
    CAPTURE(k.args);
    const auto r = run_qsdk(k.args);
    INFO(r.err);
    CHECK(r.exit_code == 2);  // 124 would be the timeout: it blocked
    CHECK(r.err.find(k.expected) != std::string::npos);
    CHECK(r.err.find("internal error") == std::string::npos);
  }
}

TEST_CASE("a config far larger than any real one is refused before it is read") {
  TempDir tmp("qsdk_huge_config");
  const fs::path big = tmp.path / "big.yaml";
  write(big, "model: zoo:linear_relu\n");
  fs::resize_file(big, std::uintmax_t(64) << 20);  // sparse: costs no disk
  const auto r = run_qsdk("run " + shell_quote(big.string()));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("big.yaml: is 67108864 bytes, more than the 16 MiB a config file may have") != std::string::npos);
}
