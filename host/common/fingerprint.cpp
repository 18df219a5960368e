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

}  // namespace qsdk
