// Include this instead of <doctest/doctest.h> in tests that use LibTorch,
// and before any other header. Debian's LibTorch is built with glog, whose
// CHECK macros collide with doctest's: torch comes first, its macros are
// dropped, then doctest defines its own.
#pragma once

#include <torch/script.h>

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT

#include <doctest/doctest.h>
