#include "common/atomic_file.h"

#include <fstream>
#include <random>
#include <sstream>
#include <system_error>

#include "common/error.h"
#include "common/interrupt.h"

namespace qsdk {

void write_file_atomically(const std::filesystem::path& target, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(dir.string(), "cannot create directory: " + ec.message());

  std::random_device rd;
  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(rd()));
  const interrupt::TemporaryPath cleanup_on_signal(tmp);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw InputError(tmp.string(), "cannot open for writing");
      write(out);
      out.flush();
      if (!out) throw InputError(target.string(), "write failed (disk full?)");
    }
    fs::rename(tmp, target, ec);
    if (ec) throw InputError(target.string(), "cannot replace file: " + ec.message());
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents) {
  write_file_atomically(target,
                        [&](std::ostream& out) { out.write(contents.data(), std::streamsize(contents.size())); });
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qsdk
