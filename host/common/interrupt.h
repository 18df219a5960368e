// Clean interruption: on SIGINT, SIGTERM or SIGHUP the process removes the
// temporary files and staging directories it registered, kills the process
// groups of child processes it registered, and then dies of the same signal
// (so the shell sees an interrupted process, exit status 128 + signal).
// Outputs that were complete before the signal are never touched: only
// registered temporaries are removed.
#pragma once

#include <sys/types.h>

#include <filesystem>

namespace qsdk::interrupt {

// Installs the handlers (once, from main).
void install_handlers();

// A temporary path (file or directory) to remove if a signal arrives while
// it is registered. Returns a slot for unregister_path; -1 when the table is
// full (the path is then simply not cleaned up on a signal).
int register_path(const std::filesystem::path& path);
void unregister_path(int slot);

// A child's process group to kill if a signal arrives.
int register_child_group(pid_t pgid);
void unregister_child_group(int slot);

// RAII registration of a temporary path.
class TemporaryPath {
 public:
  explicit TemporaryPath(const std::filesystem::path& path) : slot_(register_path(path)) {}
  ~TemporaryPath() { unregister_path(slot_); }
  TemporaryPath(const TemporaryPath&) = delete;
  TemporaryPath& operator=(const TemporaryPath&) = delete;

 private:
  int slot_;
};

}  // namespace qsdk::interrupt
