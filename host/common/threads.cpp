#include "common/threads.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <thread>

namespace qsdk {

int configure_compute_threads(int requested) {
  int n = requested;
  if (n <= 0 && std::getenv("OMP_NUM_THREADS") != nullptr) return at::get_num_threads();
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return at::get_num_threads();
}

}  // namespace qsdk
