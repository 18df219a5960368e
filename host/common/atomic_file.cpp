#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <sstream>
#include <system_error>

#include "common/error.h"
#include "common/interrupt.h"

namespace qsdk {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Writes all of `data` to `fd`, retrying short writes and EINTR. Returns 0
// or the errno that stopped it (ENOSPC for a full disk).
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data.remove_prefix(std::size_t(n));
  }
  return 0;
}

void store(const fs::path& target, std::string_view contents) {
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(dir.string(), "cannot create directory: " + ec.message());

  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(std::random_device{}()));
  const interrupt::TemporaryPath cleanup_on_signal(tmp);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw InputError(tmp.string(), "cannot create file: " + errno_text(errno));
  auto fail = [&](const std::string& cause) {
    ::close(fd);
    fs::remove(tmp, ec);
    throw InputError(target.string(), cause + "; the previous file, if any, is unchanged");
  };
  if (const int err = write_all(fd, contents)) fail("write failed: " + errno_text(err));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || std::uintmax_t(st.st_size) != contents.size())
    fail("write failed: " + std::to_string(contents.size()) + " bytes written, " + std::to_string(st.st_size) +
         " on disk");
  if (::fsync(fd) != 0) fail("write failed at fsync: " + errno_text(errno));
  if (::close(fd) != 0) {
    const int err = errno;
    fs::remove(tmp, ec);
    throw InputError(target.string(), "write failed at close: " + errno_text(err));
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw InputError(target.string(), "cannot replace file: " + ec.message());
  }
  sync_directory(dir);
}

}  // namespace

void write_file_atomically(const fs::path& target, const std::function<void(std::ostream&)>& write) {
  std::ostringstream out(std::ios::binary);
  write(out);
  if (!out) throw InputError(target.string(), "could not render the file's contents");
  store(target, out.str());
}

void write_file_atomically(const fs::path& target, std::string_view contents) { store(target, contents); }

void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

namespace {

// Opens without blocking (a FIFO would otherwise wait for a writer) and
// checks the type on the open descriptor, so the file checked is the file read.
int open_regular(const fs::path& path, const std::string& kind, struct stat& st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw InputError(path.string(), "no such " + kind);
    throw InputError(path.string(), "cannot open " + kind + ": " + errno_text(err));
  }
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw InputError(path.string(), "cannot read " + kind + ": " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw InputError(path.string(), std::string("is ") + what + ", expected a regular " + kind);
  }
  return fd;
}

}  // namespace

void require_regular_file(const fs::path& path, const std::string& kind) {
  struct stat st {};
  ::close(open_regular(path, kind, st));
}

std::string read_file(const fs::path& path, const std::string& kind, std::uintmax_t max_bytes) {
  struct stat st {};
  const int fd = open_regular(path, kind, st);
  auto fail = [&](const std::string& cause) {
    ::close(fd);
    throw InputError(path.string(), cause);
  };
  if (std::uintmax_t(st.st_size) > max_bytes)
    fail("is " + std::to_string(st.st_size) + " bytes, more than the " + std::to_string(max_bytes >> 20) + " MiB a " +
         kind + " may have");
  std::string data;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read " + kind + ": " + errno_text(errno));
    }
    if (n == 0) break;
    data.append(buffer, std::size_t(n));
    // The file may grow while it is read.
    if (data.size() > max_bytes) fail("grew past the " + std::to_string(max_bytes >> 20) + " MiB limit while read");
  }
  ::close(fd);
  return data;
}

}  // namespace qsdk
