// Whether a plugin library may be loaded: loading runs its code, so, as a
// system loader treats a setuid program's libraries, the library must be one
// that only root or the invoking user could have written.
#pragma once

#include <filesystem>
#include <string>

namespace qsdk {

struct PluginTrust {
  std::filesystem::path resolved;  // the library after resolving every symlink
  std::string problem;             // empty: safe to load

  bool safe() const { return problem.empty(); }
};

// Resolves `file` (symlinks included) and checks the target and every
// directory above it up to "/": each must be owned by root or the effective
// user and not writable by group or others. One exception: a directory above
// the library's own one may be world-writable with the sticky bit (/tmp), since
// then nobody else can rename or remove the (checked) entry below it. The
// problem names the path, the owner or write bit at fault and the fix.
PluginTrust check_plugin_trust(const std::filesystem::path& file);

}  // namespace qsdk
