// Child processes for work that must not share a process: LibTorch's
// quantized engine (onednn / qnnpack) is process-global, so conformance cases
// run one per child. A job is an argv; its stdout and stderr go to files;
// an optional timeout kills it (SIGKILL to its process group). A pool runs
// jobs with at most N at a time and reports each one's result by index, so
// results do not depend on which job finished first. Torch-free, POSIX.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace qsdk {

struct ChildJob {
  std::vector<std::string> argv;      // argv[0] is the executable path
  std::filesystem::path stdout_file;  // empty: /dev/null
  std::filesystem::path stderr_file;  // empty: /dev/null
  std::optional<std::chrono::milliseconds> timeout;
  std::vector<std::pair<std::string, std::string>> env;  // extra environment variables
  // Address-space limit (RLIMIT_AS) of the child: a runaway allocation fails
  // there instead of taking the machine's memory.
  std::optional<std::size_t> memory_limit_bytes;
  // SIGKILL the child when the parent dies (PR_SET_PDEATHSIG), so its
  // timeout cannot be outlived. Set it only when run_child is called from a
  // thread that lives as long as the child should: the signal follows the
  // thread that forked. On by default: qsdk runs children (isolated
  // backends, conformance cases, plugin probes) from the thread that waits
  // for them, and a killed qsdk must not leave one running past its timeout.
  bool die_with_parent = true;
};

struct ChildResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it (SIGKILL after a timeout)
  bool timed_out = false;
  bool started = false;  // false: fork/exec failed (`error` says why)
  std::string error;
  double seconds = 0;

  bool ok() const { return started && !timed_out && signal == 0 && exit_code == 0; }
  std::string describe() const;  // "exit code 3", "killed by signal 9 (SIGKILL)", "timed out after 30 s"
};

// Runs one job and waits for it.
ChildResult run_child(const ChildJob& job);

// Runs every job, at most `parallel` at a time (>= 1), in index order of
// start. `on_done(index, result)` is called in the calling thread as each
// finishes (completion order); the returned vector is in job order.
std::vector<ChildResult> run_children(const std::vector<ChildJob>& jobs, int parallel,
                                      const std::function<void(std::size_t, const ChildResult&)>& on_done = nullptr);

// This executable's path (/proc/self/exe), for re-invoking it.
std::filesystem::path self_executable();

// Last `max_bytes` of a file (a child's stderr), for error messages.
std::string tail_of_file(const std::filesystem::path& file, std::size_t max_bytes = 2000);

}  // namespace qsdk
