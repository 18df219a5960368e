#include "plugins/plugin_probe.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/child_process.h"
#include "common/error.h"
#include "common/fingerprint.h"
#include "plugins/plugin_registry.h"

namespace qsdk {
namespace fs = std::filesystem;

namespace {

fs::path user_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && fs::path(xdg).is_absolute()) return fs::path(xdg) / "qsdk" / "plugin-probes";
  const char* home = std::getenv("HOME");
  if (home && fs::path(home).is_absolute()) return fs::path(home) / ".cache" / "qsdk" / "plugin-probes";
  return {};
}

// The cache key: the library's bytes and the host that probed it (a rebuilt
// host probes again). Empty when the library cannot be read.
std::string cache_key(const PluginProbeSettings& settings, const fs::path& library) {
  try {
    Fingerprint key;
    key.add("qsdk plugin probe v1\n" + Fingerprint::of_file(library) + "\n" + settings.executable.string() + "\n");
    struct stat st {};
    if (stat(settings.executable.c_str(), &st) == 0)
      key.add(std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec));
    return key.hex();
  } catch (const std::exception&) {
    return {};
  }
}

// A cache entry is "ok" or "fault\n<why>". Timeouts are not cached: on a
// loaded machine a healthy library can miss the limit once, and a cached
// timeout would refuse it in every later command.
std::optional<ProbeVerdict> cached_verdict(const fs::path& entry) {
  std::ifstream in(entry);
  std::string kind, fault;
  if (!std::getline(in, kind)) return std::nullopt;
  std::getline(in, fault);
  ProbeVerdict v{true, {}, true};
  if (kind == "ok") return v;
  if (kind == "fault" && !fault.empty()) {
    v.fault = fault;
    return v;
  }
  return std::nullopt;
}

void store_verdict(const fs::path& entry, const std::string& text) {
  try {
    std::error_code ec;
    fs::create_directories(entry.parent_path(), ec);
    write_file_atomically(entry, text);
  } catch (const std::exception&) {
    // An unwritable cache only means probing again next time.
  }
}

}  // namespace

std::optional<PluginProbeSettings> plugin_probe_settings_from_environment(const fs::path& executable) {
  PluginProbeSettings settings;
  settings.executable = executable;
  settings.cache_dir = user_cache_dir();
  if (const char* text = std::getenv("QSDK_PLUGIN_PROBE_TIMEOUT")) {
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (end == text || *end != '\0' || !std::isfinite(seconds) || seconds < 0 || seconds > 3600)
      throw InputError("QSDK_PLUGIN_PROBE_TIMEOUT", "'" + std::string(text).substr(0, 40) +
                                                        "' is not a number of seconds in [0, 3600] (0 turns "
                                                        "probing off)");
    if (seconds == 0) return std::nullopt;
    settings.timeout = std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000)));
  }
  return settings;
}

std::vector<ProbeVerdict> probe_plugins(const PluginProbeSettings& settings, const std::vector<fs::path>& libraries) {
  std::vector<ProbeVerdict> verdicts(libraries.size());
  std::vector<fs::path> entries(libraries.size());
  std::vector<ChildJob> jobs;
  std::vector<std::size_t> probed;  // index into libraries, per job
  for (std::size_t i = 0; i < libraries.size(); ++i) {
    if (!settings.cache_dir.empty())
      if (const std::string key = cache_key(settings, libraries[i]); !key.empty())
        entries[i] = settings.cache_dir / key;
    if (!entries[i].empty())
      if (auto v = cached_verdict(entries[i])) {
        verdicts[i] = *v;
        continue;
      }
    ChildJob job;
    job.argv = {settings.executable.string(), kProbePluginArgument, libraries[i].string()};
    job.timeout = settings.timeout;
    job.die_with_parent = true;
    jobs.push_back(std::move(job));
    probed.push_back(i);
  }
  if (jobs.empty()) return verdicts;

  // Mostly the start-up of a LibTorch program: a few at a time.
  const int parallel = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  const std::vector<ChildResult> results = run_children(jobs, parallel);
  for (std::size_t k = 0; k < results.size(); ++k) {
    const ChildResult& r = results[k];
    const std::size_t i = probed[k];
    if (!r.started) continue;  // cannot probe: the caller loads in process, as without probing
    ProbeVerdict& v = verdicts[i];
    v.probed = true;
    std::optional<std::string> stored = "ok";
    if (r.timed_out) {
      std::ostringstream limit;
      limit << settings.timeout.count() / 1000.0;
      v.fault = "loading it did not finish within " + limit.str() +
                " s in a probe process (a constructor or the factory hangs; QSDK_PLUGIN_PROBE_TIMEOUT sets the "
                "limit); not loaded";
      stored.reset();
    } else if (r.exit_code != kProbeSurvivedExitCode) {
      v.fault = std::string("loading it ") + (r.signal ? "crashed" : "ended") + " a probe process (" + r.describe() +
                "): a constructor, the ABI check or the factory fails; not loaded";
      stored = "fault\n" + v.fault;
    }
    if (stored && !entries[i].empty()) store_verdict(entries[i], *stored + "\n");
  }
  return verdicts;
}

int run_plugin_probe_child(const fs::path& library) {
  PluginRegistry registry;
  registry.set_allow_unsafe(true);  // the parent checked trust; this only runs the library's code
  registry.load_file(library);      // a clean refusal is fine: the parent reports it itself
  std::cout.flush();
  std::cerr.flush();
  // Skip exit handlers and the library's destructors: only loading is judged.
  std::_Exit(kProbeSurvivedExitCode);
}

}  // namespace qsdk
