// Out-of-process probing of plugin libraries. dlopen runs a library's
// constructors before the host can check anything (ABI version included), so
// a library that aborts or hangs there would take the whole command with it.
// Each new or changed library is therefore loaded first in a child process
// (this executable again, with a hidden argument) that runs the constructors,
// the ABI check, the factory and validation, under a timeout. Verdicts (not
// timeouts) are cached by content hash in the user's cache directory.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qsdk {

// The hidden first argument of `qsdk` that makes it a probe child:
// `qsdk --internal-probe-plugin LIBRARY`.
inline constexpr const char* kProbePluginArgument = "--internal-probe-plugin";

struct PluginProbeSettings {
  std::filesystem::path executable;  // run as `executable --internal-probe-plugin LIBRARY`
  std::chrono::milliseconds timeout{10000};
  std::filesystem::path cache_dir;  // empty: probe every time, cache nothing
};

// Settings for the running qsdk executable: QSDK_PLUGIN_PROBE_TIMEOUT
// (seconds, default 10; 0 turns probing off, giving nullopt), cache in
// $XDG_CACHE_HOME/qsdk/plugin-probes or ~/.cache/qsdk/plugin-probes. Throws
// InputError for a timeout that is not a number of seconds in [0, 3600].
std::optional<PluginProbeSettings> plugin_probe_settings_from_environment(const std::filesystem::path& executable);

struct ProbeVerdict {
  bool probed = false;  // false: the child could not be started (load in process as before)
  std::string fault;    // empty: loading it does not crash or hang; else why not, one line
  bool cached = false;  // the verdict came from the cache
};

// Probes each library (resolved paths) in its own child process, a few at a
// time, or answers from the cache; verdicts in the order given.
std::vector<ProbeVerdict> probe_plugins(const PluginProbeSettings& settings,
                                        const std::vector<std::filesystem::path>& libraries);

// The child's side (`qsdk --internal-probe-plugin LIBRARY`): loads the
// library as the registry does and exits with kProbeSurvivedExitCode, skipping
// exit handlers. Whatever else ends the process is the library's fault.
int run_plugin_probe_child(const std::filesystem::path& library);
inline constexpr int kProbeSurvivedExitCode = 86;

}  // namespace qsdk
