// Errors the host reports to users. Every message names where the problem
// is (a file, file:line:column, or a plugin) and what is wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace qsdk {

// Process exit codes, documented in README.md. kExitInternalError is a bug
// in qsdk (or a plugin): never the user's mistake, so never 2.
enum ExitCode : int { kExitOk = 0, kExitCheckFailed = 1, kExitBadInput = 2, kExitInternalError = 3 };

// Bad input from the user: a file, model, plugin, config or data. The CLI
// prints "qsdk: error: <where>: <cause>" and exits with kExitBadInput.
class InputError : public std::runtime_error {
 public:
  InputError(std::string where, std::string cause)
      : std::runtime_error(where.empty() ? cause : where + ": " + cause),
        where_(std::move(where)),
        cause_(std::move(cause)) {}
  const std::string& where() const { return where_; }
  const std::string& cause() const { return cause_; }

 private:
  std::string where_;
  std::string cause_;
};

}  // namespace qsdk
