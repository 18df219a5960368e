#include "common/fingerprint.h"

#include <boost/uuid/detail/sha1.hpp>
#include <cstdio>
#include <fstream>

#include "common/error.h"

namespace qsdk {

struct Fingerprint::Impl {
  boost::uuids::detail::sha1 sha;
};

Fingerprint::Fingerprint() : impl_(new Impl) {}
Fingerprint::~Fingerprint() { delete impl_; }

void Fingerprint::add(const void* data, std::size_t size) { impl_->sha.process_bytes(data, size); }

std::string Fingerprint::hex() {
  boost::uuids::detail::sha1::digest_type digest;
  impl_->sha.get_digest(digest);
  char buf[41];
  for (int i = 0; i < 5; ++i) std::snprintf(buf + 8 * i, 9, "%08x", digest[i]);
  return std::string(buf, 40);
}

std::string Fingerprint::of_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot open file");
  Fingerprint f;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) f.add(buf, static_cast<std::size_t>(in.gcount()));
  return f.hex();
}

nlohmann::json file_records(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& name : names) {
    const auto path = dir / name;
    out[name] = {{"bytes", std::filesystem::file_size(path)}, {"sha1", Fingerprint::of_file(path)}};
  }
  return out;
}

std::vector<std::string> check_file_records(const std::filesystem::path& dir, const nlohmann::json& records) {
  std::vector<std::string> problems;
  for (const auto& [name, record] : records.items()) {
    const auto path = dir / name;
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    if (ec) {
      problems.push_back(name + ": missing (" + ec.message() + ")");
      continue;
    }
    const auto made_bytes = record.value("bytes", std::uintmax_t(0));
    if (bytes != made_bytes) {
      problems.push_back(name + ": " + std::to_string(bytes) + " bytes, the manifest records " +
                         std::to_string(made_bytes) + (bytes < made_bytes ? " (truncated)" : ""));
      continue;
    }
    if (Fingerprint::of_file(path) != record.value("sha1", ""))
      problems.push_back(name + ": contents differ from the manifest's record (altered after it was written)");
  }
  return problems;
}

}  // namespace qsdk
