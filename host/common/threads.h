// How many threads LibTorch's kernels use. LibTorch defaults to one per
// physical core, which on these 2-vCPU machines is 1; qsdk uses every
// logical CPU unless told otherwise (--threads, or OMP_NUM_THREADS).
#pragma once

namespace qsdk {

// `requested` > 0 wins; else OMP_NUM_THREADS when set; else all logical CPUs.
// Returns the number of threads now in use.
int configure_compute_threads(int requested = 0);

}  // namespace qsdk
