// Outputs are never damaged: a full disk, a second run at the same time and
// a run killed mid-commit all leave either the previous output or the new
// one, whole, and `qsdk verify` notices a file changed after it was written.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/output_ledger.h"
#include "support/process.h"
#include "support/temp_files.h"
#include "support/torch_doctest.h"  // first: see the header

namespace fs = std::filesystem;
using qsdk::test::run_command;
using qsdk::test::shell_quote;
using qsdk::test::slurp;
using qsdk::test::TempDir;

namespace {

qsdk::test::CommandResult run_qsdk(const std::string& args, const std::string& env = "") {
  return run_command(env + (env.empty() ? "" : " ") + shell_quote(QSDK_TEST_EXE) + " " + args);
}

std::string convert_into(const fs::path& out, int seed = 0) {
  return "convert zoo:linear_relu -b arm --batches 1 --seed " + std::to_string(seed) + " --output " +
         shell_quote(out.string());
}

// Every file under `dir` with its contents.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[e.path().lexically_relative(dir).string()] = slurp(e.path());
  return files;
}

std::string full_disk_under(const fs::path& dir) {
  return "LD_PRELOAD=" + shell_quote(QSDK_TEST_FULL_DISK_PRELOAD) +
         " QSDK_TEST_FULL_DISK_UNDER=" + shell_quote(fs::canonical(dir).string());
}

void write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

}  // namespace

TEST_CASE("a full disk during qsdk convert leaves the previous output exactly as it was") {
  TempDir tmp("qsdk_full_disk_convert");
  const fs::path out = tmp.path / "cv";
  REQUIRE(run_qsdk(convert_into(out)).exit_code == 0);
  const auto before = snapshot(out);

  const auto r = run_qsdk(convert_into(out, 5), full_disk_under(out));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("No space left on device") != std::string::npos);
  CHECK(r.err.find("internal error") == std::string::npos);
  CHECK(snapshot(out) == before);  // no temporary, no staging, no half-written model
  CHECK(run_qsdk("verify " + shell_quote((out / "arm").string())).exit_code == 0);
}

TEST_CASE("a full disk during qsdk run is an error naming the file, not a crash, and keeps the previous run") {
  TempDir tmp("qsdk_full_disk_run");
  const fs::path out = tmp.path / "out";
  write(tmp.path / "run.yaml",
        "model: zoo:linear_relu\nbackends: [arm]\ncalibration: {source: random, batches: 2, batch_size: 4}\n"
        "measure: {latency: false}\n");
  const std::string run = "run " + shell_quote((tmp.path / "run.yaml").string()) + " -o " + shell_quote(out.string());
  REQUIRE(run_qsdk(run).exit_code == 0);
  const auto before = snapshot(out);

  const auto r = run_qsdk(run, full_disk_under(out));
  CHECK(r.exit_code == 2);  // not 134 (std::terminate)
  CHECK(r.err.find("write failed: No space left on device") != std::string::npos);
  CHECK(snapshot(out) == before);
}

TEST_CASE("qsdk verify catches a model file truncated or altered after it was written") {
  TempDir tmp("qsdk_verify_files");
  const fs::path out = tmp.path / "cv";
  REQUIRE(run_qsdk(convert_into(out)).exit_code == 0);
  const fs::path model = out / "arm" / "model.pt";
  const auto verify = "verify " + shell_quote((out / "arm").string());
  auto r = run_qsdk(verify);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("files: 5 match") != std::string::npos);

  std::string bytes = slurp(model);
  bytes[bytes.size() / 2] ^= 0x5a;  // same size, different contents
  std::ofstream(model, std::ios::binary) << bytes;
  r = run_qsdk(verify);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("FILE CHANGED: model.pt: contents differ") != std::string::npos);

  fs::resize_file(model, 100);
  r = run_qsdk(verify);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("model.pt: 100 bytes, the manifest records") != std::string::npos);
  CHECK(r.out.find("(truncated)") != std::string::npos);
}

TEST_CASE("a second qsdk writing to a locked output directory fails at once, naming the holder") {
  TempDir tmp("qsdk_locked_output");
  const fs::path out = tmp.path / "cv";
  REQUIRE(run_qsdk(convert_into(out)).exit_code == 0);
  const auto before = snapshot(out);

  // Hold the lock as a running qsdk does.
  const int fd = ::open((out / ".qsdk-lock").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const auto r = run_qsdk(convert_into(out, 3));
  ::close(fd);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("another qsdk process (pid ") != std::string::npos);
  CHECK(r.err.find("calibrating") == std::string::npos);  // refused before any work
  CHECK(snapshot(out) == before);

  CHECK(run_qsdk(convert_into(out, 3)).exit_code == 0);  // free again
}

TEST_CASE("the lock is exclusive within one process too") {
  TempDir tmp("qsdk_lock_in_process");
  qsdk::OutputDirectory first(tmp.path / "out", {"a"});
  CHECK_THROWS_WITH_AS(qsdk::OutputDirectory(tmp.path / "out", {"a"}),
                       doctest::Contains("is writing to this output directory"), qsdk::InputError);
}

TEST_CASE("a commit killed half way is finished by the next qsdk to open the directory") {
  TempDir tmp("qsdk_interrupted_commit");
  const fs::path out = tmp.path / "out";
  {
    qsdk::OutputDirectory o(out, {"arm", "summary.json"});
    write(o.staging() / "arm" / "model.pt", "old model");
    write(o.staging() / "summary.json", "old summary");
    o.commit();
  }
  // The state a SIGKILL leaves after the commit moved arm/ aside but before
  // it moved the new arm/ and summary.json in: no arm/ at all.
  const fs::path staging = out / ".qsdk-run-99999", trash = out / ".qsdk-old-99999";
  write(staging / "arm" / "model.pt", "new model");
  write(staging / "arm" / "qparams.json", "new qparams");
  write(staging / "summary.json", "new summary");
  fs::create_directories(trash);
  fs::rename(out / "arm", trash / "arm");
  write(out / ".qsdk-commit.json",
        R"({"staging": ".qsdk-run-99999", "trash": ".qsdk-old-99999", "entries": ["arm", "summary.json"],)"
        R"( "remove": []})");
  // What the interrupted commit had put in the ledger: both runs' files.
  write(out / ".qsdk-outputs.json", R"({"entries": {"arm": {"directory": true, "files": ["model.pt", "qparams.json"]},)"
                                    R"( "summary.json": {"directory": false, "files": []}}})");

  {
    qsdk::OutputDirectory next(out, {"arm", "summary.json"});
    CHECK(slurp(out / "arm" / "model.pt") == "new model");
    CHECK(slurp(out / "arm" / "qparams.json") == "new qparams");
    CHECK(slurp(out / "summary.json") == "new summary");
    CHECK_FALSE(fs::exists(out / ".qsdk-commit.json"));
    CHECK_FALSE(fs::exists(staging));
    CHECK_FALSE(fs::exists(trash));
  }
  const auto ledger = nlohmann::json::parse(slurp(out / ".qsdk-outputs.json"));
  CHECK(ledger["entries"]["arm"]["files"] == nlohmann::json::array({"model.pt", "qparams.json"}));
}

TEST_CASE("a commit replaces whole entries and drops the planned ones this run did not produce") {
  TempDir tmp("qsdk_commit_stale");
  const fs::path out = tmp.path / "out";
  {
    qsdk::OutputDirectory o(out, {"arm", "x86-int8"});
    write(o.staging() / "arm" / "old.txt", "1");
    write(o.staging() / "x86-int8" / "model.pt", "1");
    o.commit();
  }
  {
    // x86-int8 failed this time: its old model must not stay beside a
    // summary that says "error".
    qsdk::OutputDirectory o(out, {"arm", "x86-int8"});
    write(o.staging() / "arm" / "new.txt", "2");
    o.commit();
  }
  CHECK(fs::exists(out / "arm" / "new.txt"));
  CHECK_FALSE(fs::exists(out / "arm" / "old.txt"));
  CHECK_FALSE(fs::exists(out / "x86-int8"));
  // A staging directory of a run that died is cleaned by the next one.
  fs::create_directories(out / ".qsdk-run-424242" / "arm");
  { qsdk::OutputDirectory o(out, {"arm"}); }
  CHECK_FALSE(fs::exists(out / ".qsdk-run-424242"));
}

TEST_CASE("an output path that is a file is refused before any work") {
  TempDir tmp("qsdk_output_is_file");
  write(tmp.path / "taken", "mine");
  const auto r = run_qsdk(convert_into(tmp.path / "taken"));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("taken: exists and is not a directory") != std::string::npos);
  CHECK(r.err.find("calibrating") == std::string::npos);
  CHECK(slurp(tmp.path / "taken") == "mine");
}
