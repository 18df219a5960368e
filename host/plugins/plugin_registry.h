// Discovery and loading of backend plugins through the versioned C ABI
// (sdk/include/qsdk/abi.h; read by plugin_abi.h), with Boost.DLL.
//
// Every failure is contained to its file: the registry records one error
// line for it and goes on with the other plugins.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plugins/plugin_probe.h"
#include "qsdk/backend.h"

namespace qsdk {

struct LoadedPlugin {
  // Keeps the plugin library loaded for as long as this pointer (or any copy
  // of it) lives: code constraints call into the library.
  std::shared_ptr<const Backend> backend;
  std::filesystem::path file;
  std::uint32_t abi_version = 0;  // major (qsdk/abi.h)
  std::uint32_t abi_minor = 0;    // the revision the plugin was built against
  std::string rule_hash;          // of the backend with default options (backend_yaml.h)
  // What the default instance was made with: empty, or the backend's target
  // option resolved for this machine (e.g. {isa: avx2}; qsdk/backend.h).
  BackendOptions default_options;
};

struct PluginError {
  std::filesystem::path file;
  std::string cause;
  std::string message() const { return file.string() + ": " + cause; }
};

class PluginRegistry {
 public:
  PluginRegistry();
  ~PluginRegistry();
  PluginRegistry(PluginRegistry&&) noexcept;
  PluginRegistry& operator=(PluginRegistry&&) noexcept;

  // Loads every "*.so" file in each directory, directories in the given
  // order, files in name order within one. A directory that does not exist
  // is an error; a backend name already loaded from an earlier file is one.
  void load_directory(const std::filesystem::path& dir);
  // Loads one library. Returns false (and records an error) on failure.
  bool load_file(const std::filesystem::path& file);

  // Loading policy (plugin_trust.h): a library that anyone but root or the
  // invoking user owns, or that a directory above it lets others replace, is
  // refused unless this is set (qsdk --allow-unsafe-plugins).
  void set_allow_unsafe(bool allow) { allow_unsafe_ = allow; }
  // With settings, each library is first loaded in a child process
  // (plugin_probe.h), so one that crashes or hangs while loading is an error
  // line instead of the end of this process. Off by default (library users
  // such as tests load in process); the qsdk CLI turns it on.
  void set_probe(std::optional<PluginProbeSettings> settings) { probe_ = std::move(settings); }

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<PluginError>& errors() const { return errors_; }

  // nullptr when no loaded plugin has this backend name.
  const LoadedPlugin* find(const std::string& name) const;
  // All backend names, in load order.
  std::vector<std::string> names() const;

  // Calls the plugin's factory again with user options (after checking them
  // against the options it declares) and validates the result. Throws
  // InputError naming the plugin file on any failure.
  // The backend's target option, given as "auto" or not at all, is resolved
  // for this machine first (resolve_options).
  std::shared_ptr<const Backend> instantiate(const std::string& name, const BackendOptions& options) const;

  // `given` checked against the options the backend declares, with its
  // target option (qsdk/backend.h) set to this machine's choice unless given
  // explicitly. What the factory is called with, and what manifests record.
  BackendOptions resolve_options(const std::string& name, const BackendOptions& given) const;

  struct Library;  // Boost.DLL handle + factory; defined in the .cpp

 private:
  std::vector<LoadedPlugin> plugins_;
  std::vector<std::shared_ptr<Library>> libraries_;  // parallel to plugins_
  std::vector<PluginError> errors_;
  bool allow_unsafe_ = false;
  bool needs_probe(const std::filesystem::path& library) const;
  std::optional<PluginProbeSettings> probe_;
  std::map<std::filesystem::path, ProbeVerdict> probe_verdicts_;  // probed ahead by load_directory

  // The checks that run none of the library's code (a regular file, the
  // loading policy, an ELF library for this machine): "" and the path to
  // load (symlinks resolved), or the cause.
  std::string check_before_loading(const std::filesystem::path& file, std::filesystem::path& library_path) const;
};

// Where plugins are searched, highest precedence first: each --plugin-dir
// flag, then QSDK_PLUGIN_PATH (colon separated), then the config file's
// search paths, then the bundled location next to the executable
// (<prefix>/lib/qsdk/plugins for bin/qsdk). Duplicates are dropped.
std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::filesystem::path>& flag_dirs,
                                                      const std::vector<std::filesystem::path>& config_dirs);

// <directory of the running executable>/../lib/qsdk/plugins
std::filesystem::path bundled_plugin_dir();

}  // namespace qsdk
