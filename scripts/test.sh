#!/usr/bin/env bash
# The README's second command: set up, build, check formatting, and run
# every test through CTest. Pass CTest arguments through, e.g. `-L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/setup.sh
scripts/check_format.sh
scripts/build.sh
ctest --test-dir "${QSDK_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)" "$@"
echo "test.sh: finished in $(( $(date +%s) - start )) s"
