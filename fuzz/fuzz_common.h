// Shared by the libFuzzer targets: a scratch directory for path resolution,
// and the rule every target enforces: bad input may only surface as
// qsdk::InputError. Anything else that escapes (another exception type, a
// crash, a sanitizer report, a hang) is a finding.
#pragma once

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace qsdk_fuzz {

// An empty directory made once per process (removed by scripts/fuzz.sh's
// TMPDIR cleanup), so relative paths in inputs resolve somewhere cheap.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qsdk-fuzz-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) abort();
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

inline std::string as_text(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace qsdk_fuzz
