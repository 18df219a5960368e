#include "common/memory_budget.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "common/error.h"

namespace qsdk {

namespace {

std::uintmax_t default_budget() {
  if (const char* env = std::getenv("QSDK_MEMORY_BUDGET_MB"); env && *env) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (end && *end == '\0' && mb > 0 && mb < (1ull << 44)) return std::uintmax_t(mb) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return std::uintmax_t(8) << 30;
  return std::uintmax_t(pages) * std::uintmax_t(page) / 2;
}

}  // namespace

std::uintmax_t memory_budget_bytes() { return default_budget(); }

std::uintmax_t tensor_bytes(const std::vector<std::int64_t>& shape, std::size_t element_size, const std::string& what) {
  std::uintmax_t n = element_size;
  for (const auto d : shape) {
    if (d < 0) throw InputError(what, "negative dimension " + std::to_string(d));
    if (d != 0 && n > std::numeric_limits<std::uintmax_t>::max() / std::uintmax_t(d))
      throw InputError(what, "the tensor's size overflows 64 bits");
    n *= std::uintmax_t(d);
  }
  return n;
}

std::string bytes_text(std::uintmax_t bytes) {
  char buf[32];
  if (bytes >= (std::uintmax_t(1) << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(1ull << 30));
  else if (bytes >= (1u << 20))
    std::snprintf(buf, sizeof buf, "%.0f MiB", double(bytes) / double(1u << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.0f KiB", double(bytes) / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%ju bytes", bytes);
  return buf;
}

void require_within_memory_budget(std::uintmax_t bytes, const std::string& what, const std::string& advice) {
  const auto budget = memory_budget_bytes();
  if (bytes <= budget) return;
  throw InputError(what, "needs " + bytes_text(bytes) + ", more than the memory budget of " + bytes_text(budget) +
                             "; " + advice + ", or raise the budget (--memory-budget MB)");
}

}  // namespace qsdk
