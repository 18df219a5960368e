// Fault containment: with --isolate, a plugin that segfaults, aborts, hangs
// or exhausts memory marks only its own backend as an error; the other
// backends' results and every report are complete. A plugin that throws is
// named with its rule and constraint.
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

namespace {

const fs::path kFaulty = QSDK_TEST_FAULTY_PLUGIN_DIR;

std::string plugin_dirs(const std::vector<std::string>& faults) {
  std::string args;
  for (const auto& f : faults) args += " --plugin-dir " + shell_quote((kFaulty / f).string());
  return args;
}

}  // namespace

TEST_CASE("--isolate: crashing, aborting, hanging and memory-hungry plugins cost only their own rows") {
  const fs::path tmp = fs::temp_directory_path() / "qsdk_isolation";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::ofstream(tmp / "run.yaml") << "model: zoo:conv_bn_relu\n"
                                     "backends: [x86-int8, faulty-segfault, faulty-abort, faulty-hang, "
                                     "faulty-exhaust-memory, per-channel]\n"
                                     "calibration: {source: random, batches: 1, batch_size: 2}\n"
                                     "measure: {latency: false}\n"
                                     "specs: ["
                                  << (fs::path(QSDK_TEST_SOURCE_DIR) / "specs/unit/conv2d.yaml").string()
                                  << "]\n"
                                     "output: {dir: "
                                  << (tmp / "out").string() << "}\n";
  const auto r =
      run_command(shell_quote(QSDK_TEST_EXE) + plugin_dirs({"segfault", "abort", "hang", "exhaust_memory"}) + " run " +
                  shell_quote((tmp / "run.yaml").string()) + " --isolate --backend-timeout 30 --backend-memory 2048");
  INFO(r.out);
  INFO(r.err);
  CHECK(r.exit_code == 1);  // some backends failed: a failed check, not bad input

  const auto summary = nlohmann::json::parse(slurp(tmp / "out" / "summary.json"));
  std::map<std::string, nlohmann::json> by_backend;
  for (const auto& e : summary["backends"]) by_backend[e["backend"].get<std::string>()] = e;
  REQUIRE(by_backend.size() == 6);
  CHECK(by_backend["faulty-segfault"]["error"].get<std::string>().find("signal 11") != std::string::npos);
  CHECK(by_backend["faulty-abort"]["error"].get<std::string>().find("signal 6") != std::string::npos);
  CHECK(by_backend["faulty-hang"]["error"].get<std::string>().find("timed out after") != std::string::npos);
  // Out of address space, the allocation throws inside the plugin's
  // constraint; the host names the plugin, rule and constraint.
  const auto oom = by_backend["faulty-exhaust-memory"]["error"].get<std::string>();
  CHECK(oom.find("rule 'conv' code constraint 'misbehaves' threw") != std::string::npos);
  CHECK(oom.find("bad_alloc") != std::string::npos);

  // The healthy backends finished, with their models and reports.
  for (const std::string ok : {"x86-int8", "per-channel"}) {
    CHECK_FALSE(by_backend[ok].contains("error"));
    CHECK(fs::exists(tmp / "out" / ok / "model.pt"));
    CHECK(fs::exists(tmp / "out" / ok / "manifest.json"));
  }
  CHECK(r.out.find("ERROR: killed by signal 11") != std::string::npos);  // the summary table's row

  // Conformance ran every backend, with the faulty ones as errors, and wrote all reports.
  const auto results = nlohmann::json::parse(slurp(tmp / "out" / "conformance" / "results.json"));
  std::map<std::string, std::string> status;
  for (const auto& c : results["cases"]) status[c["backend"].get<std::string>()] = c["status"].get<std::string>();
  CHECK(status["x86-int8"] == "pass");
  CHECK(status["per-channel"] == "pass");
  for (const std::string bad : {"faulty-segfault", "faulty-abort", "faulty-hang", "faulty-exhaust-memory"})
    CHECK_MESSAGE(status[bad] == "error", bad);
  CHECK(fs::exists(tmp / "out" / "conformance" / "junit.xml"));
  CHECK(fs::exists(tmp / "out" / "conformance" / "report.html"));
  fs::remove_all(tmp);
}

TEST_CASE("a plugin's exception names the backend, rule, constraint and node") {
  const auto r =
      run_command(shell_quote(QSDK_TEST_EXE) + plugin_dirs({"throw"}) + " annotate zoo:conv_bn_relu -b faulty-throw");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("backend 'faulty-throw': rule 'conv' code constraint 'misbehaves' threw on %0") !=
        std::string::npos);
  CHECK(r.err.find("calibration table missing for this op") != std::string::npos);
}
