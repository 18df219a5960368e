// What a command ending in an exception prints, and its exit code.
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "common/error_report.h"
#include "support/torch_doctest.h"

using qsdk::report_failure;

TEST_CASE("bad input is one 'error:' line and exit 2") {
  std::ostringstream err;
  CHECK(report_failure(qsdk::InputError("cfg.yaml:3:5", "unknown key 'x'"), err) == qsdk::kExitBadInput);
  CHECK(err.str() == "qsdk: error: cfg.yaml:3:5: unknown key 'x'\n");
  std::ostringstream fs_err;
  const std::filesystem::filesystem_error full("write", "/out/model.pt",
                                               std::make_error_code(std::errc::no_space_on_device));
  CHECK(report_failure(full, fs_err) == qsdk::kExitBadInput);
  CHECK(fs_err.str().find("qsdk: error: /out/model.pt: No space left on device") == 0);
}

TEST_CASE("a bug is exit 3, one line without its traceback, and says how to report it") {
  const std::runtime_error bug(
      "The following operation failed in the TorchScript interpreter.\n"
      "Traceback of TorchScript (most recent call last):\n  File \"code\", line 3\n"
      "RuntimeError: oops");
  std::ostringstream err;
  CHECK(report_failure(bug, err) == qsdk::kExitInternalError);
  CHECK(qsdk::kExitInternalError != qsdk::kExitBadInput);
  const std::string text = err.str();
  CHECK(text.find("qsdk: internal error: The following operation failed in the TorchScript interpreter.\n") == 0);
  CHECK(text.find("Traceback") == std::string::npos);
  CHECK(text.find("please report it") != std::string::npos);
  std::ostringstream debug;
  report_failure(bug, debug, /*debug=*/true);
  CHECK(debug.str().find("Traceback of TorchScript") != std::string::npos);
}

TEST_CASE("a huge message is shortened, keeping its start and end") {
  const std::string huge = "start" + std::string(100000, 'x') + "end";
  const std::string s = qsdk::shortened(huge);
  CHECK(s.size() < 2000);
  CHECK(s.rfind("start", 0) == 0);
  CHECK(s.substr(s.size() - 3) == "end");
}
