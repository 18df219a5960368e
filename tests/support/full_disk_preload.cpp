// LD_PRELOAD shim for tests: makes the disk look full under one directory.
// Every write(2)-family call on a file whose path starts with
// $QSDK_TEST_FULL_DISK_UNDER fails with ENOSPC, as on a full filesystem;
// everything else passes through to libc.
#include <dlfcn.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool on_full_disk(int fd) {
  const char* under = std::getenv("QSDK_TEST_FULL_DISK_UNDER");
  if (!under || !*under) return false;
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return false;
  return std::strncmp(target, under, std::strlen(under)) == 0;
}

template <typename Fn>
Fn* next(const char* name) {
  return reinterpret_cast<Fn*>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t count) {
  if (on_full_disk(fd)) {
    errno = ENOSPC;
    return -1;
  }
  static auto* real = next<ssize_t(int, const void*, size_t)>("write");
  return real(fd, buf, count);
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (on_full_disk(fd)) {
    errno = ENOSPC;
    return -1;
  }
  static auto* real = next<ssize_t(int, const struct iovec*, int)>("writev");
  return real(fd, iov, iovcnt);
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  if (on_full_disk(fd)) {
    errno = ENOSPC;
    return -1;
  }
  static auto* real = next<ssize_t(int, const void*, size_t, off_t)>("pwrite");
  return real(fd, buf, count, offset);
}

}  // extern "C"
