// Compatibility stamps: every exported model's manifest records, per
// backend, the plugin's name, version, ABI version and a hash of its rules
// (plugins/backend_yaml.h rule_hash), plus the SDK ABI and LibTorch versions,
// and the rules themselves sit next to the model (rules-<backend>.yaml).
// `qsdk verify` checks a model directory against the plugins installed now.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "qsdk/backend.h"

namespace qsdk {

class PluginRegistry;

struct BackendVerdict {
  enum class Status {
    Unchanged,     // same rule hash (the version may differ: said in `notes`)
    RulesChanged,  // the installed plugin's rules differ from the model's
    Missing        // no installed plugin has this backend name
  };
  std::string name;
  Status status = Status::Unchanged;
  std::string made_version, now_version;
  std::string made_hash, now_hash;
  std::vector<std::string> differences;  // rule by rule (compare_backends), when the rules file is there
};

struct VerifyReport {
  std::vector<BackendVerdict> backends;
  std::vector<std::string> notes;  // version differences that do not change the rules
  // Output files whose size or fingerprint differ from the manifest's
  // "files" record (truncated by a full disk, edited, or missing).
  std::vector<std::string> file_problems;
  std::size_t files_checked = 0;
  bool ok() const;
};

// Reads dir/manifest.json (and dir/rules-<backend>.yaml when present) and
// compares with the loaded plugins, instantiated with the options the model
// was made with, and checks the output files against the manifest's record
// of their sizes and fingerprints. InputError for a missing or malformed
// manifest.
VerifyReport verify_model_dir(const PluginRegistry& plugins, const std::filesystem::path& dir);

// A backend to compare: a loaded backend's name, a plugin library (.so,
// loaded on its own), or a rules YAML file (`qsdk plugins describe` output).
// `keep_alive` holds the library of a .so. InputError when it is none of these.
std::shared_ptr<const Backend> resolve_backend(const PluginRegistry& plugins, const std::string& what,
                                               std::shared_ptr<PluginRegistry>& keep_alive);

}  // namespace qsdk
