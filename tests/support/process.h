// Runs a command line (through /bin/sh) and captures exit code, stdout and
// stderr, for tests that drive the qsdk executable as users do.
#pragma once

#include <string>

namespace qsdk::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

CommandResult run_command(const std::string& command_line);

// Single-quotes `s` for /bin/sh.
std::string shell_quote(const std::string& s);

}  // namespace qsdk::test
