// Content fingerprints for manifests: which model file and which calibration
// data a quantized model was made from. SHA-1 (Boost's), hex encoded; a
// fingerprint, not a security measure.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace qsdk {

class Fingerprint {
 public:
  Fingerprint();
  ~Fingerprint();
  Fingerprint(const Fingerprint&) = delete;
  Fingerprint& operator=(const Fingerprint&) = delete;

  void add(const void* data, std::size_t size);
  void add(const std::string& text) { add(text.data(), text.size()); }
  std::string hex();  // ends the fingerprint

  static std::string of_file(const std::filesystem::path& path);  // throws InputError

 private:
  struct Impl;
  Impl* impl_;
};

// The "files" record of a manifest: for each named file in `dir`, its size
// in bytes and fingerprint, so `qsdk verify` notices a truncated or altered
// output. {"model.pt": {"bytes": 1234, "sha1": "..."}, ...}
nlohmann::json file_records(const std::filesystem::path& dir, const std::vector<std::string>& names);

// One line per file in `records` that is missing from `dir` or differs from
// its record; empty when all match.
std::vector<std::string> check_file_records(const std::filesystem::path& dir, const nlohmann::json& records);

}  // namespace qsdk
