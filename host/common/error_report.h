// What the user sees when a command ends in an exception, and the exit
// code: bad input (InputError, a file system refusal, running out of
// memory) is one "qsdk: error:" line and exit 2; anything else is a bug in
// qsdk or a plugin: one "qsdk: internal error:" line (never an
// interpreter's traceback), how to report it, and exit 3.
#pragma once

#include <exception>
#include <iosfwd>
#include <string>

namespace qsdk {

// Prints the report of `error` to `err` and returns the exit code.
// `debug`: also print the whole message of an internal error (QSDK_DEBUG=1).
int report_failure(const std::exception& error, std::ostream& err, bool debug = false);

// A message stays readable when it quotes a huge input (a 50 MB path).
std::string shortened(const std::string& message);

}  // namespace qsdk
