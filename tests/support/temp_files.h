// Small file helpers for tests that drive qsdk on real directories.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qsdk::test {

// A fresh directory under the system temp dir, removed again at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) : path(std::filesystem::temp_directory_path() / name) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// The whole file ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qsdk::test
