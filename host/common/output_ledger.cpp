#include "common/output_ledger.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"

namespace qsdk {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// entry name -> the files qsdk wrote inside it (empty for a plain file).
struct Ledger {
  struct Entry {
    bool directory = false;
    std::set<std::string> files;  // relative to the entry
  };
  std::map<std::string, Entry> entries;
};

Ledger read_ledger(const fs::path& dir) {
  Ledger ledger;
  const fs::path file = dir / kOutputLedgerName;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) return ledger;
  try {
    const json j = json::parse(read_file(file));
    for (const auto& [name, e] : j.at("entries").items()) {
      Ledger::Entry entry;
      entry.directory = e.at("directory").get<bool>();
      for (const auto& f : e.at("files")) entry.files.insert(f.get<std::string>());
      ledger.entries[name] = std::move(entry);
    }
  } catch (const json::exception& e) {
    throw InputError(file.string(), std::string("not a qsdk output ledger (") + e.what() +
                                        "); qsdk will not replace anything in " + dir.string() + " without it");
  }
  return ledger;
}

std::set<std::string> files_under(const fs::path& root) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (!e.is_directory() || e.is_symlink()) out.insert(e.path().lexically_relative(root).string());
  return out;
}

void write_ledger(const fs::path& dir, const Ledger& ledger) {
  json j{{"qsdk_output_ledger", 1}, {"entries", json::object()}};
  for (const auto& [name, e] : ledger.entries) j["entries"][name] = {{"directory", e.directory}, {"files", e.files}};
  write_file_atomically(dir / kOutputLedgerName, j.dump(2) + "\n");
}

const char* const kAdvice = "move it away or choose another output directory";

}  // namespace

void check_replaceable(const fs::path& dir, const std::vector<std::string>& names) {
  const Ledger ledger = read_ledger(dir);
  for (const auto& name : names) {
    const fs::path target = dir / name;
    std::error_code ec;
    const auto status = fs::symlink_status(target, ec);
    if (!fs::exists(status)) continue;
    const auto it = ledger.entries.find(name);
    if (it == ledger.entries.end())
      throw InputError(target.string(),
                       std::string("exists and was not written by qsdk, so qsdk will not replace it; ") + kAdvice);
    const bool is_directory = fs::is_directory(status);
    if (is_directory != it->second.directory)
      throw InputError(target.string(), std::string("qsdk wrote a ") + (it->second.directory ? "directory" : "file") +
                                            " here and it is now a " + (is_directory ? "directory" : "file") +
                                            ", so qsdk will not replace it; " + kAdvice);
    if (!is_directory) continue;
    for (const auto& file : files_under(target))
      if (!it->second.files.count(file))
        throw InputError((target / file).string(), "was not written by qsdk, so qsdk will not replace " +
                                                       target.string() + ", which holds it; " + kAdvice);
  }
}

namespace {

const char* const kJournalName = ".qsdk-commit.json";
const char* const kLockName = ".qsdk-lock";
const char* const kStagingPrefix = ".qsdk-run-";
const char* const kTrashPrefix = ".qsdk-old-";

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// A name the journal may move: one entry directly inside the directory.
bool plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

struct Journal {
  std::string staging, trash;
  std::vector<std::string> entries, remove;
};

Journal read_journal(const fs::path& file) {
  Journal j;
  try {
    const json doc = json::parse(read_file(file, "commit journal"));
    j.staging = doc.at("staging").get<std::string>();
    j.trash = doc.at("trash").get<std::string>();
    j.entries = doc.at("entries").get<std::vector<std::string>>();
    j.remove = doc.at("remove").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    throw InputError(file.string(), std::string("not a qsdk commit journal (") + e.what() + "); " + kAdvice);
  }
  bool ok = starts_with(j.staging, kStagingPrefix) && plain_name(j.staging) && starts_with(j.trash, kTrashPrefix) &&
            plain_name(j.trash);
  for (const auto& n : j.entries) ok = ok && plain_name(n);
  for (const auto& n : j.remove) ok = ok && plain_name(n);
  if (!ok) throw InputError(file.string(), std::string("names paths outside its directory; ") + kAdvice);
  return j;
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw InputError(to.string(), "cannot move " + from.string() + " here: " + ec.message());
}

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

// Moves the journal's staged entries into place (old ones aside into the
// trash), records them in the ledger and cleans up. Safe to repeat after an
// interruption at any point: every step checks what is already done.
void finish_commit(const fs::path& dir, const Journal& j) {
  const fs::path staging = dir / j.staging, trash = dir / j.trash;
  std::error_code ec;
  auto set_aside = [&](const std::string& name) {
    if (!present(dir / name)) return;
    fs::create_directories(trash, ec);
    fs::remove_all(trash / name, ec);
    rename_or_throw(dir / name, trash / name);
  };
  for (const auto& name : j.entries) {
    if (!present(staging / name)) continue;  // moved before the interruption
    set_aside(name);
    rename_or_throw(staging / name, dir / name);
  }
  for (const auto& name : j.remove) set_aside(name);

  Ledger ledger = read_ledger(dir);
  for (const auto& name : j.entries) {
    if (!present(dir / name)) continue;
    Ledger::Entry entry;
    entry.directory = fs::is_directory(fs::symlink_status(dir / name));
    if (entry.directory) entry.files = files_under(dir / name);
    ledger.entries[name] = std::move(entry);
  }
  for (const auto& name : j.remove) ledger.entries.erase(name);
  write_ledger(dir, ledger);
  sync_directory(dir);
  fs::remove(dir / kJournalName, ec);
  fs::remove_all(trash, ec);
  fs::remove_all(staging, ec);
}

int take_lock(const fs::path& dir) {
  const fs::path file = dir / kLockName;
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw InputError(file.string(), std::string("cannot create the output lock: ") + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    std::string pid = n > 0 ? std::string(holder, std::size_t(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    pid.erase(0, pid.find_first_not_of(' '));
    throw InputError(dir.string(), "another qsdk process" + (pid.empty() ? "" : " (pid " + pid + ")") +
                                       " is writing to this output directory; wait for it to finish or choose "
                                       "another output directory");
  }
  // Fixed width, so it overwrites the last holder's pid without a truncate
  // (which a full disk would let through and the write not).
  char me[16];
  const int n = std::snprintf(me, sizeof me, "%10d\n", int(getpid()));
  (void)!::pwrite(fd, me, std::size_t(n), 0);
  return fd;
}

}  // namespace

OutputDirectory::OutputDirectory(fs::path dir, std::vector<std::string> planned, bool allow_unrelated_files)
    : dir_(std::move(dir)), planned_(std::move(planned)) {
  std::error_code ec;
  if (present(dir_) && !fs::is_directory(dir_, ec))
    throw InputError(dir_.string(), "exists and is not a directory; choose an output directory");
  fs::create_directories(dir_, ec);
  if (ec) throw InputError(dir_.string(), "cannot create the output directory: " + ec.message());
  lock_fd_ = take_lock(dir_);
  try {
    if (present(dir_ / kJournalName)) {
      std::cerr << "qsdk: " << dir_.string() << ": finishing the commit of an earlier run that was interrupted\n";
      finish_commit(dir_, read_journal(dir_ / kJournalName));
    }
    // We hold the lock, so any staging or trash left here belongs to a run
    // that died.
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (starts_with(name, kStagingPrefix) || starts_with(name, kTrashPrefix)) fs::remove_all(e.path(), ec);
    }
    if (!allow_unrelated_files && !present(dir_ / kOutputLedgerName))
      for (const auto& e : fs::directory_iterator(dir_))
        if (!starts_with(e.path().filename().string(), ".qsdk-"))
          throw InputError(dir_.string(),
                           "is not empty and holds no qsdk outputs (no " + std::string(kOutputLedgerName) +
                               "); choose an empty or new output directory, or pass --allow-unrelated-files to "
                               "write beside what is there (qsdk never replaces files it did not write)");
    check_replaceable(dir_, planned_);
    staging_ = dir_ / (kStagingPrefix + std::to_string(getpid()));
    fs::create_directories(staging_);
    remove_staging_on_signal_.emplace(staging_);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

OutputDirectory::~OutputDirectory() {
  std::error_code ec;
  if (!committed_ && !staging_.empty() && !present(dir_ / kJournalName)) fs::remove_all(staging_, ec);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void OutputDirectory::commit() {
  Journal j;
  j.staging = staging_.filename().string();
  j.trash = kTrashPrefix + std::to_string(getpid());
  for (const auto& entry : fs::directory_iterator(staging_)) j.entries.push_back(entry.path().filename().string());
  std::sort(j.entries.begin(), j.entries.end());
  for (const auto& name : planned_)
    if (std::find(j.entries.begin(), j.entries.end(), name) == j.entries.end() && present(dir_ / name))
      j.remove.push_back(name);
  std::vector<std::string> touched = j.entries;
  touched.insert(touched.end(), j.remove.begin(), j.remove.end());
  check_replaceable(dir_, touched);

  // Until the journal is gone, the ledger lists both the old and the new
  // files of every entry, so whatever state an interruption leaves, all of
  // it is known to be qsdk's.
  Ledger ledger = read_ledger(dir_);
  for (const auto& name : j.entries) {
    auto& entry = ledger.entries[name];
    entry.directory = fs::is_directory(staging_ / name);
    if (entry.directory)
      for (const auto& f : files_under(staging_ / name)) entry.files.insert(f);
  }
  write_ledger(dir_, ledger);

  // From here on a signal must not remove the staging directory: the
  // journal's recovery needs what it has not moved yet.
  remove_staging_on_signal_.reset();
  json doc{{"qsdk_commit_journal", 1},
           {"staging", j.staging},
           {"trash", j.trash},
           {"entries", j.entries},
           {"remove", j.remove}};
  write_file_atomically(dir_ / kJournalName, doc.dump(2) + "\n");
  finish_commit(dir_, j);
  committed_ = true;
}

}  // namespace qsdk
