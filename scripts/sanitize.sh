#!/usr/bin/env bash
# The tests under AddressSanitizer + UndefinedBehaviorSanitizer (with
# LeakSanitizer): a clang build in build-asan (scripts/sanitizer_build.sh),
# every test suite built, then CTest on the unit and plugin labels. Any
# sanitizer report (LeakSanitizer's at exit included) fails its test.
#   scripts/sanitize.sh                 # the default selection
#   scripts/sanitize.sh -L integration  # other CTest arguments instead
# Suppressions (scripts/sanitizers/*.supp) cover uninstrumented third-party
# libraries only, never qsdk code.
set -euo pipefail
source "$(dirname "$0")/sanitizer_build.sh"
cd "$QSDK_ROOT"
start=$(date +%s)

san_require_clang
san_configure
# Every test suite (qsdk_*_tests) and what they need; not the benchmarks.
mapfile -t suites < <(cmake --build "$SAN_BUILD_DIR" --target help | sed -n 's/^\.\.\. \(qsdk_[a-z_]*_tests\)$/\1/p')
cmake --build "$SAN_BUILD_DIR" -j"$(nproc)" --target qsdk "${suites[@]}"
built=$(date +%s)

if (($# == 0)); then
  set -- -L "unit|plugin"
fi
ctest --test-dir "$SAN_BUILD_DIR" --output-on-failure -j"$(nproc)" --timeout 1800 "$@"
echo "sanitize.sh: build $((built - start)) s, tests $(($(date +%s) - built)) s"
