// qsdk replaces only what it wrote, and a run's outputs replace the previous
// run's as a whole.
//
// Every output directory qsdk commits into holds:
//   .qsdk-outputs.json  the ledger: each entry qsdk put there and, for a
//                       directory, every file in it. An existing entry is
//                       replaced only when the ledger lists it and nothing
//                       inside it is unlisted, so a file a user added
//                       (out/arm/src/main.c) or an `arm/` folder qsdk never
//                       wrote stops the run with exit 2 before any work.
//   .qsdk-lock          an advisory lock (flock) held for the whole run: a
//                       second qsdk writing to the same directory fails at
//                       once with a message naming the first one's pid.
//   .qsdk-run-PID/      the staging directory outputs are written into.
//   .qsdk-commit.json   the commit journal, present only while a commit
//                       moves staged entries into place. A run killed
//                       mid-commit (even by SIGKILL) leaves it behind, and
//                       the next run to open the directory finishes that
//                       commit before it starts, so the directory never stays
//                       a mix of two runs.
//   .qsdk-old-PID/      replaced entries, removed at the end of a commit.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/interrupt.h"

namespace qsdk {

inline constexpr const char* kOutputLedgerName = ".qsdk-outputs.json";

// Throws InputError naming the first path under `dir` that replacing the
// entries `names` would remove although qsdk did not write it.
void check_replaceable(const std::filesystem::path& dir, const std::vector<std::string>& names);

// One run's exclusive use of an output directory.
class OutputDirectory {
 public:
  // Creates `dir` if needed, takes its lock (InputError when another qsdk
  // holds it), finishes a commit an earlier run left interrupted, removes
  // staging directories of runs that died, checks that the `planned`
  // entries are replaceable (check_replaceable) and creates the staging
  // directory. A non-empty directory without a ledger (not qsdk's) is
  // refused unless `allow_unrelated_files`: then qsdk writes beside the
  // files there, never over them.
  OutputDirectory(std::filesystem::path dir, std::vector<std::string> planned, bool allow_unrelated_files = false);
  // Removes the staging directory unless committed; releases the lock.
  ~OutputDirectory();
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  const std::filesystem::path& staging() const { return staging_; }

  // Moves every staged entry into place and removes planned entries this
  // run did not produce (a previous run's output of a backend that failed
  // now), all recorded in the ledger. Checked again first, so a refusal
  // moves nothing.
  void commit();

 private:
  std::filesystem::path dir_, staging_;
  std::vector<std::string> planned_;
  int lock_fd_ = -1;
  std::optional<interrupt::TemporaryPath> remove_staging_on_signal_;
  bool committed_ = false;
};

}  // namespace qsdk
