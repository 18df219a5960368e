// Assertions shared by capture tests: the canonical form every stage relies on.
#pragma once

#include <string>

#include "capture/capture.h"
#include "support/torch_doctest.h"

namespace qsdk::test {

// No traced-only or in-place op kinds left, every tensor value typed with a
// complete shape and dtype, module paths on every module op, and outputs
// equal to the original model's (1e-5 relative).
void check_canonical_form(const CapturedModel& m);

}  // namespace qsdk::test
