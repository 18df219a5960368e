#!/usr/bin/env bash
# Robustness run (issue 22): one model of every torchvision 0.14
# classification architecture (tools/export_models.py --set architectures,
# cached in build/models) through `qsdk convert --data random` on every
# bundled backend. Writes bench/RESULTS_robustness.md and
# bench/results_robustness.json; exits non-zero if any run crashed (signal,
# internal error, traceback). A run that refuses a model or fails a check
# with a clear message is a row of the table, not a failure of the bench.
#   MODELS="convnext_tiny regnet_y_400mf"  only these
#   BACKENDS="arm"                         only these backends
#   BATCHES=2 BATCH_SIZE=4                 calibration data (random)
# About 45 min on a 2-core machine for all 24 models x 3 backends.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
PY=/usr/bin/python3  # Debian's python3-torch and python3-torchvision
cmake --build "$BUILD_DIR" --target qsdk -j"$(nproc)" >/dev/null
only=()
[ -n "${MODELS:-}" ] && read -r -a only <<<"$MODELS"
"$PY" tools/export_models.py "$BUILD_DIR/models" --set architectures ${only:+--only "${only[@]}"} >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=("${only[@]}")
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <("$PY" -c 'import sys; sys.path.insert(0, "tools"); import export_models as e; print("\n".join(e.ARCHITECTURES))')
fi
read -r -a backends <<<"${BACKENDS:-x86-int8 arm per-channel}"
"$PY" bench/robustness.py --qsdk "$BUILD_DIR/bin/qsdk" --models "$BUILD_DIR/models" --work "$work" \
  --only "${names[@]}" --backends "${backends[@]}" --batches "${BATCHES:-2}" --batch-size "${BATCH_SIZE:-4}" \
  --json "$work/results.json" --markdown "$work/results.md" --fail-on-crash && rc=0 || rc=$?
CPU="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
FLAGS="$(grep -o -w 'avx2\|avx512_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')"
{ cat "$work/results.md"; echo; echo "Machine: $CPU (flags: ${FLAGS% }), $(nproc) cores, git $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%M:%SZ)."; } \
  >bench/RESULTS_robustness.md.tmp && mv bench/RESULTS_robustness.md.tmp bench/RESULTS_robustness.md
cp "$work/results.json" bench/results_robustness.json.tmp && mv bench/results_robustness.json.tmp bench/results_robustness.json
cat bench/RESULTS_robustness.md
exit "$rc"
