#include "plugins/compatibility.h"

#include <torch/version.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/fingerprint.h"
#include "plugins/backend_yaml.h"
#include "plugins/plugin_registry.h"
#include "qsdk/abi.h"

namespace qsdk {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_manifest(const fs::path& dir) {
  const fs::path file = dir / "manifest.json";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir.string(), "not a directory (expected a model directory)");
  if (!fs::exists(file, ec)) throw InputError(file.string(), "no manifest (is this a qsdk output directory?)");
  try {
    auto m = nlohmann::json::parse(read_file(file, "manifest"));
    if (!m.contains("backends") || !m["backends"].is_array() || m["backends"].empty())
      throw InputError(file.string(), "manifest has no backends list");
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file.string(), std::string("not a valid manifest: ") + e.what());
  }
}

}  // namespace

bool VerifyReport::ok() const {
  for (const auto& b : backends)
    if (b.status != BackendVerdict::Status::Unchanged) return false;
  return file_problems.empty();
}

VerifyReport verify_model_dir(const PluginRegistry& plugins, const fs::path& dir) {
  const auto manifest = read_manifest(dir);
  VerifyReport report;
  BackendOptions first_options;
  if (manifest.contains("backend_options"))
    for (const auto& [k, v] : manifest["backend_options"].items()) first_options[k] = v.get<std::string>();
  bool first = true;
  for (const auto& entry : manifest["backends"]) {
    BackendVerdict v;
    v.name = entry.value("name", "");
    v.made_version = entry.value("version", "");
    v.made_hash = entry.value("rule_hash", "");
    const BackendOptions options = first ? first_options : BackendOptions{};
    first = false;
    if (!plugins.find(v.name)) {
      v.status = BackendVerdict::Status::Missing;
      report.backends.push_back(v);
      continue;
    }
    const auto now = plugins.instantiate(v.name, options);
    v.now_version = now->version;
    v.now_hash = rule_hash(*now);
    if (v.made_hash.empty()) report.notes.push_back(v.name + ": the manifest has no rule hash (made before stamps)");
    if (v.made_hash != v.now_hash) v.status = BackendVerdict::Status::RulesChanged;
    if (v.made_version != v.now_version)
      report.notes.push_back(v.name + ": plugin version " + v.made_version + " -> " + v.now_version);
    const fs::path rules_file = dir / ("rules-" + v.name + ".yaml");
    if (v.status == BackendVerdict::Status::RulesChanged && fs::exists(rules_file))
      v.differences = compare_backends(backend_from_yaml(read_file(rules_file), rules_file.string()), *now);
    report.backends.push_back(v);
  }
  if (manifest.contains("files") && manifest["files"].is_object()) {
    report.file_problems = check_file_records(dir, manifest["files"]);
    report.files_checked = manifest["files"].size();
  } else {
    report.notes.push_back(
        "the manifest records no file sizes or fingerprints (made before qsdk recorded them): files not checked");
  }
  if (manifest.contains("versions")) {
    const auto& versions = manifest["versions"];
    if (versions.value("libtorch", "") != TORCH_VERSION)
      report.notes.push_back("made with LibTorch " + versions.value("libtorch", "?") + ", running " + TORCH_VERSION);
    if (versions.value("sdk_abi", 0u) != kAbiVersion)
      report.notes.push_back("made with SDK ABI " + std::to_string(versions.value("sdk_abi", 0u)) + ", host has " +
                             std::to_string(kAbiVersion));
  }
  return report;
}

std::shared_ptr<const Backend> resolve_backend(const PluginRegistry& plugins, const std::string& what,
                                               std::shared_ptr<PluginRegistry>& keep_alive) {
  const fs::path path(what);
  const auto ext = path.extension().string();
  if (ext == ".so") {
    keep_alive = std::make_shared<PluginRegistry>();
    if (!keep_alive->load_file(path)) throw InputError(what, keep_alive->errors().front().cause);
    return keep_alive->plugins().front().backend;
  }
  if (ext == ".yaml" || ext == ".yml") {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw InputError(what, "no such file");
    return std::make_shared<const Backend>(backend_from_yaml(read_file(path), what));
  }
  if (!plugins.find(what))
    throw InputError(what, "not a loaded backend, a plugin library (.so) or a rules file (.yaml)");
  return plugins.instantiate(what, {});
}

}  // namespace qsdk
