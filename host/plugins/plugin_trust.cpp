#include "plugins/plugin_trust.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace qsdk {
namespace fs = std::filesystem;

namespace {

std::string user_name(uid_t uid) {
  const passwd* pw = getpwuid(uid);
  return (pw ? std::string(pw->pw_name) + " " : std::string()) + "(uid " + std::to_string(uid) + ")";
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

constexpr const char* kOverride = "or pass --allow-unsafe-plugins";

}  // namespace

PluginTrust check_plugin_trust(const fs::path& file) {
  PluginTrust trust;
  std::error_code ec;
  trust.resolved = fs::canonical(file, ec);
  if (ec) {
    trust.problem = "refused: cannot resolve its path: " + ec.message();
    return trust;
  }
  // A symlink (anywhere on the way) is judged by what it points to.
  const bool via_symlink = trust.resolved != fs::absolute(file).lexically_normal();
  const std::string prefix =
      via_symlink ? "refused: it resolves to " + trust.resolved.string() + ", and " : "refused: ";
  const uid_t me = geteuid();
  const fs::path own_directory = trust.resolved.parent_path();

  for (fs::path p = trust.resolved;; p = p.parent_path()) {
    const std::string what = p == trust.resolved  ? "the file "
                             : p == own_directory ? "its directory "
                                                  : "the directory ";
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) {
      trust.problem = prefix + "cannot check " + what + p.string() + ": " + std::strerror(errno);
      return trust;
    }
    if (st.st_uid != 0 && st.st_uid != me) {
      trust.problem = prefix + what + p.string() + " is owned by " + user_name(st.st_uid) +
                      ", who could replace the code, not by root or the invoking user " + user_name(me) +
                      "; chown it to root or yourself, " + kOverride;
      return trust;
    }
    const bool group_write = st.st_mode & S_IWGRP, others_write = st.st_mode & S_IWOTH;
    const bool sticky_above_own_directory = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && p != own_directory;
    if ((group_write || others_write) && !sticky_above_own_directory) {
      const std::string who = group_write && others_write ? "its group and everyone"
                              : group_write               ? "its group"
                                                          : "everyone";
      trust.problem = prefix + what + p.string() + " is writable by " + who + " (mode " + octal_mode(st.st_mode) +
                      "); chmod go-w " + p.string() + ", " + kOverride;
      return trust;
    }
    if (p == p.root_path()) break;
  }
  return trust;
}

}  // namespace qsdk
