#!/usr/bin/env bash
# The README's first command: set up, build, and run the main job: `qsdk run`
# with the built-in default config (configs/default.yaml). Arguments go to
# `qsdk run`, e.g. a config file or --backend arm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec "${QSDK_BUILD_DIR:-build}/bin/qsdk" run "$@"
