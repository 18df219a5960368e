#include "common/error_report.h"

#include <filesystem>
#include <new>
#include <ostream>

#include "common/error.h"

namespace qsdk {

std::string shortened(const std::string& message) {
  constexpr std::size_t kHead = 1000, kTail = 300;
  if (message.size() <= kHead + kTail + 100) return message;
  return message.substr(0, kHead) + " [... " + std::to_string(message.size() - kHead - kTail) +
         " characters omitted ...] " + message.substr(message.size() - kTail);
}

int report_failure(const std::exception& error, std::ostream& err, bool debug) {
  if (const auto* e = dynamic_cast<const InputError*>(&error)) {
    err << "qsdk: error: " << shortened(e->what()) << "\n";
    return kExitBadInput;
  }
  if (const auto* e = dynamic_cast<const std::filesystem::filesystem_error*>(&error)) {
    // The file system refused something (full, read-only, permissions):
    // the environment's problem, not a bug in qsdk.
    err << "qsdk: error: " << shortened(e->path1().string()) << ": " << e->code().message() << "\n";
    return kExitBadInput;
  }
  if (dynamic_cast<const std::bad_alloc*>(&error)) {
    err << "qsdk: error: out of memory; lower --batch-size or give a smaller model or input\n";
    return kExitBadInput;
  }
  const std::string what = error.what();
  // LibTorch's allocator failing is the machine's limit, not a bug.
  if (what.find("DefaultCPUAllocator: can't allocate memory") != std::string::npos) {
    const auto at = what.find("you tried");
    const std::string detail = at == std::string::npos ? "" : what.substr(at, what.find('.', at) - at) + "; ";
    err << "qsdk: error: out of memory: " << detail << "lower --batch-size or give a smaller model or input\n";
    return kExitBadInput;
  }
  // A bug: one line (a traceback is for the report, not the terminal).
  const std::string first = what.substr(0, what.find('\n'));
  err << "qsdk: internal error: " << shortened(first) << "\n"
      << "qsdk: this is a bug in qsdk or a plugin, not in your input; please report it with the command line, "
         "`qsdk --version` and the full message (QSDK_DEBUG=1 prints it)\n";
  if (debug && first != what) err << shortened(what) << "\n";
  return kExitInternalError;
}

}  // namespace qsdk
