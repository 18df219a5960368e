// The qsdk executable under test, run through /bin/sh with a time limit, so
// that a regression that blocks (on a FIFO, a lock, a huge input) shows as a
// failure (exit 124), not a hung suite.
#pragma once

#include <string>

#include "support/process.h"

namespace qsdk::test {

inline CommandResult run_qsdk(const std::string& args) {
  return run_command("timeout 120 " + shell_quote(QSDK_TEST_EXE) + " " + args);
}

}  // namespace qsdk::test
