// Content fingerprints for manifests: which model file and which calibration
// data a quantized model was made from. SHA-1 (Boost's), hex encoded; a
// fingerprint, not a security measure.
#pragma once

#include <filesystem>
#include <string>

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

}  // namespace qsdk
