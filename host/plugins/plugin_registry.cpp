#include "plugins/plugin_registry.h"

#include <dlfcn.h>
#include <elf.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "plugins/backend_yaml.h"
#include "plugins/plugin_abi.h"
#include "plugins/plugin_probe.h"
#include "plugins/plugin_trust.h"
#include "plugins/rule_validation.h"
#include "qsdk/abi.h"
#include "target/cpu_target.h"

namespace qsdk {

namespace fs = std::filesystem;

struct PluginRegistry::Library {
  boost::dll::shared_library lib;
  const qsdk_plugin_api* api = nullptr;  // static in the library
};

namespace {

// A backend object that also owns a reference to its library, so the
// library stays mapped while anyone holds the backend.
struct BackendHolder {
  std::shared_ptr<PluginRegistry::Library> library;  // destroyed last
  std::unique_ptr<Backend> backend;
};

// The plugin's create_backend, read into a Backend (plugin_abi.h).
std::unique_ptr<Backend> create_backend(const std::shared_ptr<PluginRegistry::Library>& library,
                                        const BackendOptions& options, std::string& cause) {
  return import_backend(*library->api, options, library, cause);
}

// The plugin table of revision 2.0: every later revision only appends.
constexpr std::size_t kPluginApi20Size = offsetof(qsdk_plugin_api, release_status) + sizeof(void*);

// ABI 1 (qsdk 0.1) passed C++ objects across dlopen and exported
// qsdk_abi_version through a Boost.DLL alias. Its version is read through
// that alias only to name it; nothing else in such a library is called.
constexpr const char* kAbi1VersionSymbol = "qsdk_abi_version";

// Any 2.x revision loads: older ones fully, newer ones as far as this host
// knows them (qsdk/abi.h, "Versioning").
std::string supported_abi() { return std::to_string(kAbiVersion); }

void normalize_specs(Backend& b) {
  for (auto& r : b.rules) {
    for (auto& a : r.annotations) a.spec = normalized(a.spec);
    for (auto& w : r.widths)
      for (auto& a : w.annotations) a.spec = normalized(a.spec);
  }
}

std::string join_problems(const std::vector<std::string>& problems) {
  std::string out = "invalid rules: ";
  for (std::size_t i = 0; i < problems.size(); ++i) out += (i ? "; " : "") + problems[i];
  return out;
}

// Every command loads every plugin and hashes its rules (rule_hash emits
// them as YAML), so a plugin with a huge rule list would stall them all.
// Real backends declare tens of rules; 4096 leaves room and keeps the worst
// load near a second.
constexpr std::size_t kMaxRulesPerBackend = 4096;

std::string too_many_rules(const Backend& b) {
  if (b.rules.size() <= kMaxRulesPerBackend) return {};
  return "backend '" + b.name.substr(0, 80) + "' declares " + std::to_string(b.rules.size()) +
         " rules, more than the " + std::to_string(kMaxRulesPerBackend) + " a backend may have";
}

const BackendOption* target_option(const Backend& b) {
  for (const auto& o : b.options)
    if (o.name == kTargetOptionName &&
        std::find(o.allowed.begin(), o.allowed.end(), kTargetOptionAuto) != o.allowed.end())
      return &o;
  return nullptr;
}

// The best of the target option's allowed values this machine runs exactly.
std::string choose_target(const Backend& b, const BackendOption& option, std::string& cause) {
  const auto usable = usable_isa_names(cpu_target());
  for (const auto& name : usable)
    if (std::find(option.allowed.begin(), option.allowed.end(), name) != option.allowed.end()) return name;
  std::string allowed;
  for (const auto& a : option.allowed) allowed += (allowed.empty() ? "" : ", ") + a;
  cause = "backend '" + b.name + "': option " + option.name + ": none of " + allowed +
          " runs on this CPU (onednn ISA " + cpu_target().onednn_isa + ")";
  return {};
}

std::string machine_name(unsigned machine) {
  switch (machine) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "aarch64";
    case EM_386: return "i386";
    case EM_ARM: return "32-bit arm";
    case EM_RISCV: return "riscv";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390";
    default: return "ELF machine " + std::to_string(machine);
  }
}

#if defined(__x86_64__)
constexpr unsigned kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kHostMachine = EM_AARCH64;
#else
constexpr unsigned kHostMachine = EM_NONE;  // not checked here; dlopen says it
#endif

// Reads the ELF header: "" for a library of this machine, else why not.
// Checked before dlopen, whose messages for these cases are obscure (a text
// file) or wrong (Boost.DLL reports a foreign architecture as "No such file").
std::string elf_problem(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  unsigned char header[20] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (in.gcount() < 4 || std::memcmp(header, ELFMAG, SELFMAG) != 0) return "not a shared library (no ELF header)";
  if (in.gcount() < static_cast<std::streamsize>(sizeof header)) return "not a shared library (truncated ELF header)";
  const bool little_endian = header[EI_DATA] == ELFDATA2LSB;
  const unsigned machine = little_endian ? header[18] | header[19] << 8 : header[18] << 8 | header[19];
  if (kHostMachine != EM_NONE && machine != kHostMachine)
    return "wrong architecture: built for " + machine_name(machine) + ", this host is " + machine_name(kHostMachine);
  if (header[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32))
    return std::string("wrong architecture: a ") + (header[EI_CLASS] == ELFCLASS32 ? "32" : "64") +
           "-bit library, this host is " + std::to_string(8 * sizeof(void*)) + "-bit";
  return "";
}

// dlopen's own message for a library that just failed to load (Boost.DLL's
// exception loses it), so trying again runs none of its code.
std::string dlopen_error(const fs::path& file) {
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle) {
    dlclose(handle);
    return "";
  }
  const char* error = dlerror();
  return error ? error : "";
}

}  // namespace

PluginRegistry::PluginRegistry() = default;
PluginRegistry::~PluginRegistry() = default;
PluginRegistry::PluginRegistry(PluginRegistry&&) noexcept = default;
PluginRegistry& PluginRegistry::operator=(PluginRegistry&&) noexcept = default;

void PluginRegistry::load_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    errors_.push_back({dir, "plugin directory does not exist"});
    return;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".so" && !entry.is_directory()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (probe_) {
    // Probe every library that passes the checks at once (children run in
    // parallel), then load them in order.
    std::vector<fs::path> libraries;
    for (const auto& f : files)
      if (fs::path library; check_before_loading(f, library).empty() && needs_probe(library))
        libraries.push_back(library);
    const auto verdicts = probe_plugins(*probe_, libraries);
    for (std::size_t i = 0; i < libraries.size(); ++i) probe_verdicts_[libraries[i]] = verdicts[i];
  }
  for (const auto& f : files) load_file(f);
}

// The bundled plugins are built and installed with this qsdk: their code is
// qsdk's own, so a probe would only cost start-up time (and, on a loaded CI
// machine, risk a spurious timeout).
bool PluginRegistry::needs_probe(const fs::path& library) const {
  std::error_code ec;
  const fs::path bundled = fs::weakly_canonical(bundled_plugin_dir(), ec);
  return ec || fs::weakly_canonical(library, ec).parent_path() != bundled;
}

std::string PluginRegistry::check_before_loading(const fs::path& file, fs::path& library_path) const {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return "not a file";
  // Loading a library runs its code: refuse one that anyone but root or the
  // user could have replaced, unless the user said otherwise. What is loaded
  // is the checked target, so a symlink cannot be swapped in between.
  if (allow_unsafe_) {
    library_path = fs::canonical(file, ec);
    if (ec) library_path = file;
  } else {
    const PluginTrust trust = check_plugin_trust(file);
    if (!trust.safe()) return trust.problem;
    library_path = trust.resolved;
  }
  return elf_problem(library_path);
}

bool PluginRegistry::load_file(const fs::path& file) {
  auto fail = [&](std::string cause) {
    errors_.push_back({file, std::move(cause)});
    return false;
  };
  fs::path library_path;
  if (auto cause = check_before_loading(file, library_path); !cause.empty()) return fail(cause);
  // Its constructors run at dlopen, before any check: try that in a child
  // first (load_directory probes a whole directory ahead).
  if (probe_ && needs_probe(library_path)) {
    auto ahead = probe_verdicts_.find(library_path);
    const ProbeVerdict verdict =
        ahead != probe_verdicts_.end() ? ahead->second : probe_plugins(*probe_, {library_path}).front();
    if (ahead != probe_verdicts_.end()) probe_verdicts_.erase(ahead);
    if (!verdict.fault.empty()) return fail(verdict.fault);
  }

  auto library = std::make_shared<Library>();
  try {
    // RTLD_LOCAL (the default): plugins cannot see each other's symbols.
    library->lib.load(boost::dll::fs::path(library_path.string()), boost::dll::load_mode::rtld_now);
  } catch (const std::exception& e) {
    const std::string why = dlopen_error(library_path);
    return fail("cannot load shared library: " + (why.empty() ? std::string(e.what()) : why));
  }

  // The entry point's table says which ABI the library speaks; nothing else
  // in it is called unless that is this host's.
  if (!library->lib.has(QSDK_ENTRY_SYMBOL)) {
    if (library->lib.has(kAbi1VersionSymbol)) {
      const std::uint32_t old = library->lib.get_alias<std::uint32_t()>(kAbi1VersionSymbol)();
      return fail("ABI version mismatch: plugin was built for qsdk ABI " + std::to_string(old) +
                  " (C++ objects across the boundary, no longer loaded), this host supports " + supported_abi() +
                  "; rebuild the plugin against this SDK (CONTRIBUTING.md, \"ABI versioning\")");
    }
    return fail(std::string("missing entry symbol '") + QSDK_ENTRY_SYMBOL +
                "': not a qsdk plugin (declare it with QSDK_PLUGIN(factory) from qsdk/plugin.h, or define it in C "
                "as qsdk/abi.h says)");
  }
  library->api = library->lib.get<qsdk_plugin_entry_fn>(QSDK_ENTRY_SYMBOL)();
  const qsdk_plugin_api* api = library->api;
  if (!api) return fail(std::string(QSDK_ENTRY_SYMBOL) + " returned no table");
  if (api->abi_version != kAbiVersion)
    return fail("ABI version mismatch: plugin was built for qsdk ABI " + std::to_string(api->abi_version) +
                ", this host supports " + supported_abi() + "; rebuild the plugin against this SDK");
  if (api->struct_size < kPluginApi20Size || !api->create_backend || !api->release_backend || !api->status_message ||
      !api->release_status)
    return fail(std::string(QSDK_ENTRY_SYMBOL) + ": the table is incomplete (struct_size " +
                std::to_string(api->struct_size) + ", ABI 2.0 needs " + std::to_string(kPluginApi20Size) +
                " and every function)");

  std::string cause;
  auto backend = create_backend(library, {}, cause);
  if (!backend) return fail(cause);
  // A backend with a target option is made again with this machine's choice.
  BackendOptions default_options;
  if (const BackendOption* target = target_option(*backend)) {
    const std::string choice = choose_target(*backend, *target, cause);
    if (choice.empty()) return fail(cause);
    default_options[target->name] = choice;
    backend = create_backend(library, default_options, cause);
    if (!backend) return fail(cause);
  }
  if (auto cause = too_many_rules(*backend); !cause.empty()) return fail(cause);
  normalize_specs(*backend);
  if (auto problems = validate_backend(*backend); !problems.empty())
    return fail("backend '" + backend->name + "': " + join_problems(problems));
  if (const LoadedPlugin* other = find(backend->name))
    return fail("backend name '" + backend->name + "' is already provided by " + other->file.string() +
                " (the earlier one in the search path is kept)");

  auto holder = std::make_shared<BackendHolder>(BackendHolder{library, std::move(backend)});
  plugins_.push_back({std::shared_ptr<const Backend>(holder, holder->backend.get()), file, api->abi_version,
                      api->abi_minor, rule_hash(*holder->backend), std::move(default_options)});
  libraries_.push_back(library);
  return true;
}

const LoadedPlugin* PluginRegistry::find(const std::string& name) const {
  for (const auto& p : plugins_)
    if (p.backend->name == name) return &p;
  return nullptr;
}

std::vector<std::string> PluginRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& p : plugins_) out.push_back(p.backend->name);
  return out;
}

BackendOptions PluginRegistry::resolve_options(const std::string& name, const BackendOptions& given) const {
  const LoadedPlugin* plugin = find(name);
  if (!plugin) {
    std::string known;
    for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
    throw InputError("backend '" + name + "'",
                     "no loaded plugin provides it (loaded: " + (known.empty() ? std::string("none") : known) + ")");
  }
  for (const auto& [key, value] : given) {
    auto it = std::find_if(plugin->backend->options.begin(), plugin->backend->options.end(),
                           [&k = key](const BackendOption& o) { return o.name == k; });
    if (it == plugin->backend->options.end())
      throw InputError("backend '" + name + "'", "unknown option '" + key + "'");
    if (!it->allowed.empty() && std::find(it->allowed.begin(), it->allowed.end(), value) == it->allowed.end()) {
      std::string allowed;
      for (const auto& a : it->allowed) allowed += (allowed.empty() ? "" : ", ") + a;
      throw InputError("backend '" + name + "'", "option '" + key + "' = '" + value + "' is not one of: " + allowed);
    }
  }
  BackendOptions resolved = given;
  for (const auto& [key, choice] : plugin->default_options)
    if (auto it = resolved.find(key); it == resolved.end() || it->second == kTargetOptionAuto) resolved[key] = choice;
  return resolved;
}

std::shared_ptr<const Backend> PluginRegistry::instantiate(const std::string& name,
                                                           const BackendOptions& options) const {
  const BackendOptions resolved = resolve_options(name, options);
  const LoadedPlugin* plugin = find(name);
  if (resolved == plugin->default_options) return plugin->backend;

  const auto index = static_cast<std::size_t>(plugin - plugins_.data());
  const auto& library = libraries_[index];
  std::string cause;
  auto backend = create_backend(library, resolved, cause);
  if (!backend) throw InputError(plugin->file.string(), cause);
  if (auto too_many = too_many_rules(*backend); !too_many.empty()) throw InputError(plugin->file.string(), too_many);
  normalize_specs(*backend);
  if (auto problems = validate_backend(*backend); !problems.empty())
    throw InputError(plugin->file.string(), "backend '" + name + "' with these options: " + join_problems(problems));
  auto holder = std::make_shared<BackendHolder>(BackendHolder{library, std::move(backend)});
  return std::shared_ptr<const Backend>(holder, holder->backend.get());
}

fs::path bundled_plugin_dir() {
  const fs::path exe(boost::dll::program_location().string());
  return (exe.parent_path().parent_path() / "lib" / "qsdk" / "plugins").lexically_normal();
}

std::vector<fs::path> plugin_search_path(const std::vector<fs::path>& flag_dirs,
                                         const std::vector<fs::path>& config_dirs) {
  std::vector<fs::path> dirs = flag_dirs;
  if (const char* env = std::getenv("QSDK_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string item;
    // Empty entries are skipped (in PATH they would mean the current
    // directory; plugins are never loaded from it implicitly), and relative
    // ones are made absolute so reports show where a plugin came from.
    while (std::getline(ss, item, ':'))
      if (!item.empty()) dirs.push_back(fs::absolute(item));
  }
  dirs.insert(dirs.end(), config_dirs.begin(), config_dirs.end());
  dirs.push_back(bundled_plugin_dir());

  std::vector<fs::path> unique;
  std::set<fs::path> seen;
  for (const auto& d : dirs) {
    std::error_code ec;
    fs::path key = fs::weakly_canonical(d, ec);
    if (ec) key = d.lexically_normal();
    if (seen.insert(key).second) unique.push_back(d);
  }
  return unique;
}

}  // namespace qsdk
