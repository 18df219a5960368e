#!/usr/bin/env bash
# The README's first command: set up, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec "${QSDK_BUILD_DIR:-build}/bin/qsdk" plugins list "$@"
