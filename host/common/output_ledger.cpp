#include "common/output_ledger.h"

#include <unistd.h>

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

void commit_outputs(const fs::path& staging, const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(staging)) names.push_back(entry.path().filename().string());
  check_replaceable(dir, names);

  Ledger ledger = read_ledger(dir);
  for (const auto& name : names) {
    const fs::path from = staging / name, target = dir / name;
    Ledger::Entry entry;
    entry.directory = fs::is_directory(from);
    if (entry.directory) entry.files = files_under(from);
    if (entry.directory && fs::is_directory(fs::symlink_status(target))) {
      // Checked above: everything in it is qsdk's.
      const fs::path old = dir / (".qsdk-old-" + name + "-" + std::to_string(getpid()));
      fs::rename(target, old);
      fs::rename(from, target);
      fs::remove_all(old);
    } else {
      fs::rename(from, target);
    }
    ledger.entries[name] = std::move(entry);
  }
  write_ledger(dir, ledger);
  fs::remove_all(staging);
}

}  // namespace qsdk
