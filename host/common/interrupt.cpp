#include "common/interrupt.h"

#include <ftw.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace qsdk::interrupt {
namespace {

// Fixed tables the signal handler can read without allocating: a slot is
// claimed with an atomic flag, its path written, then published.
constexpr int kSlots = 64;
constexpr std::size_t kPathMax = 4096;

struct PathSlot {
  std::atomic<int> state{0};  // 0 free, 1 being written, 2 published
  char path[kPathMax];
};
PathSlot g_paths[kSlots];

struct ChildSlot {
  std::atomic<pid_t> pgid{0};
};
ChildSlot g_children[kSlots];

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

void on_signal(int sig) {
  for (auto& c : g_children)
    if (const pid_t g = c.pgid.load(); g > 0) ::kill(-g, SIGKILL);
  for (auto& p : g_paths)
    if (p.state.load() == 2) ::nftw(p.path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);  // children first
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

int register_path(const std::filesystem::path& path) {
  const std::string text = std::filesystem::absolute(path).string();
  if (text.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_paths[i].state.compare_exchange_strong(expected, 1)) {
      std::memcpy(g_paths[i].path, text.c_str(), text.size() + 1);
      g_paths[i].state.store(2);
      return i;
    }
  }
  return -1;
}

void unregister_path(int slot) {
  if (slot >= 0 && slot < kSlots) g_paths[slot].state.store(0);
}

int register_child_group(pid_t pgid) {
  for (int i = 0; i < kSlots; ++i) {
    pid_t expected = 0;
    if (g_children[i].pgid.compare_exchange_strong(expected, pgid)) return i;
  }
  return -1;
}

void unregister_child_group(int slot) {
  if (slot >= 0 && slot < kSlots) g_children[slot].pgid.store(0);
}

}  // namespace qsdk::interrupt
