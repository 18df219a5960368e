#!/usr/bin/env bash
# Issue 23: held-out accuracy and SQNR of the per-channel backend at w8a8,
# w4a8, w4a4 and w3a8 on zoo:mnist_cnn_trained (and w4a8 on
# zoo:tiny_lm_trained), arm by arm: plain PTQ, each PTQ algorithm, all of
# them, mixed precision at a 0.5-point target (sensitivity order, and the
# by-layer-order baseline) and QAT. One `qsdk run` per arm, all in this run.
# Writes bench/results_accuracy.json and the table of bench/RESULTS_accuracy.md
# (bench/accuracy_table.md; RESULTS_accuracy.md adds the reading).
#   QUICK=1   MNIST only
# About 10 min on a 2-core machine (MNIST ~5, the language model ~5).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
cmake --build "$BUILD_DIR" --target qsdk -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 bench/accuracy.py --qsdk "$BUILD_DIR/bin/qsdk" --work "$work" --json bench/results_accuracy.json \
  --markdown bench/accuracy_table.md ${QUICK:+--quick}
cat bench/accuracy_table.md
