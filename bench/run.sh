#!/usr/bin/env bash
# qsdk vs PyTorch's own quantization flows (README "Benchmarks", issue 12).
#
#   bench/run.sh     one command, one run; writes bench/RESULTS.md (the table
#                    it also prints) and bench/results.json
#
# Environment overrides (defaults in brackets):
#   MODELS           [mnist_cnn resnet18 resnet50 mobilenet_v2 mobilenet_v3_small transformer_encoder]
#   CALIB_BATCHES [4] BATCH_SIZE [8]   calibration batches (plus one evaluation batch)
#   PIPELINE_REPEAT [3] REPEAT [5]     pipeline runs; timed runs per latency
#   THREADS [2]                        torch intra-op threads, every process
#   SCALING_NODES ["1000 10000 100000"]  STARTUP_REPEAT [10]
#   QSDK_BUILD_DIR [build]   REPORT_ONLY=1: re-render the last run's report only
#
# For each model, in alternating order so machine noise hits both sides:
#   qsdk_bench_compare (bench/compare_bench.cpp) and bench/peer_compare.py
#   (PyTorch FX prepare_fx/convert_fx and TorchScript prepare_jit/convert_jit),
#   on the same TorchScript file, the same calibration and evaluation batches
#   (seeded, written once to a tensor file both read), onednn and qnnpack.
# Then: qsdk_bench_scaling (synthetic graphs of 1,000..100,000 nodes), and
# the start-up time of `qsdk plugins list`. Every figure compared is a ratio
# of two measurements of this run: absolute times drift on shared machines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
MODELS="${MODELS:-mnist_cnn resnet18 resnet50 mobilenet_v2 mobilenet_v3_small transformer_encoder}"
CALIB_BATCHES="${CALIB_BATCHES:-4}"
BATCH_SIZE="${BATCH_SIZE:-8}"
PIPELINE_REPEAT="${PIPELINE_REPEAT:-3}"
REPEAT="${REPEAT:-5}"
THREADS="${THREADS:-2}"
SCALING_NODES="${SCALING_NODES:-1000 10000 100000}"
STARTUP_REPEAT="${STARTUP_REPEAT:-10}"
PY=/usr/bin/python3  # Debian's python3-torch; the pyenv python3 on PATH has no torch
# OpenMP threads spin-wait at barriers; on a shared machine a spinning thread
# competes with the other process's work. Must be set before process start.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
START=$(date +%s)

# Raw outputs of the last run (kept for inspection; REPORT_ONLY=1 re-renders
# bench/RESULTS.md from them, e.g. after editing bench/RESULTS_notes.md).
WORK="$BUILD_DIR/bench_run"
if [ "${REPORT_ONLY:-0}" = 1 ]; then
  export WORK OUT_DIR="$ROOT/bench"
  set -a; . "$WORK/env"; set +a
  exec "$PY" bench/compare_report.py
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "bench: configuring $BUILD_DIR" >&2
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
echo "bench: building qsdk, qsdk_bench_compare, qsdk_bench_scaling" >&2
cmake --build "$BUILD_DIR" --target qsdk qsdk_bench_compare qsdk_bench_scaling -j"$(nproc)" >/dev/null

MODEL_DIR="$BUILD_DIR/models"
mkdir -p "$MODEL_DIR"
declare -A FILE SHAPE
for m in $MODELS; do
  if [ "$m" = mnist_cnn ]; then
    # zoo:mnist_cnn's architecture, defined in Python with the same module
    # names, traced once; both sides quantize this file.
    FILE[$m]="$MODEL_DIR/bench_mnist_cnn.pt"
    SHAPE[$m]="1,1,28,28"
    [ -f "${FILE[$m]}" ] || "$PY" bench/peer_compare.py export-mnist "${FILE[$m]}"
  else
    FILE[$m]="$MODEL_DIR/$m.pt"
    if [ ! -f "${FILE[$m]}" ] || [ ! -f "$MODEL_DIR/$m.json" ]; then
      echo "bench: exporting $m to $MODEL_DIR" >&2
      "$PY" tools/export_models.py "$MODEL_DIR" --only "$m" >&2
    fi
    SHAPE[$m]=$("$PY" -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["input_shapes"][0])))' \
      "$MODEL_DIR/$m.json")
  fi
done

rm -rf "$WORK"
mkdir -p "$WORK"
log() { echo "bench: $(date -u +%H:%M:%S) $*" >&2; }

# Share of all CPUs busy over 2 s (other processes, before the benchmark).
cpu_busy_pct() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local total=0 idle i
  for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $(((100 * (total - idle)) / (total > 0 ? total : 1)))
}
BUSY_BEFORE=$(cpu_busy_pct)
((BUSY_BEFORE > 20)) && echo "bench: warning: the machine is ${BUSY_BEFORE}% busy before the run" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

SAMPLES=$(((CALIB_BATCHES + 1) * BATCH_SIZE))
i=0
for m in $MODELS; do
  "$PY" bench/peer_compare.py data "$WORK/data_$m.pt" --shape "${SHAPE[$m]}" --samples "$SAMPLES"
  run_qsdk() {
    "$BUILD_DIR/bin/qsdk_bench_compare" "${FILE[$m]}" --shape "${SHAPE[$m]}" --data "$WORK/data_$m.pt" \
      --calib-batches "$CALIB_BATCHES" --batch-size "$BATCH_SIZE" --pipeline-repeat "$PIPELINE_REPEAT" \
      --repeat "$REPEAT" --threads "$THREADS" >"$WORK/qsdk_$m.json" ||
      echo "{\"error\": \"qsdk_bench_compare exited with $?\"}" >"$WORK/qsdk_$m.json"
  }
  run_peer() {
    "$PY" bench/peer_compare.py run "$m" "${FILE[$m]}" --data "$WORK/data_$m.pt" \
      --calib-batches "$CALIB_BATCHES" --batch-size "$BATCH_SIZE" --pipeline-repeat "$PIPELINE_REPEAT" \
      --repeat "$REPEAT" --threads "$THREADS" >"$WORK/peer_$m.json" ||
      echo "{\"error\": \"peer_compare.py exited with $?\"}" >"$WORK/peer_$m.json"
  }
  log "$m"
  if ((i % 2 == 0)); then run_qsdk; run_peer; else run_peer; run_qsdk; fi
  i=$((i + 1))
done

log "scaling"
# LibTorch's interpreter compiles a chain of single-use values recursively
# (one level per node), which overflows the default 8 MB stack between
# 3,000 and 10,000 chained nodes; hence the unlimited stack.
# shellcheck disable=SC2046
(ulimit -s unlimited && "$BUILD_DIR/bin/qsdk_bench_scaling" $(for n in $SCALING_NODES; do echo --nodes "$n"; done) \
  --threads "$THREADS" >"$WORK/scaling.json") ||
  echo "{\"error\": \"qsdk_bench_scaling exited with $?\"}" >"$WORK/scaling.json"

log "start-up (qsdk plugins list)"
"$PY" - "$BUILD_DIR/bin/qsdk" "$STARTUP_REPEAT" >"$WORK/startup.json" <<'PYEOF'
import json, statistics, subprocess, sys, time
qsdk, n = sys.argv[1], int(sys.argv[2])
out = subprocess.run([qsdk, "plugins", "list"], check=True, capture_output=True, text=True).stdout
times = []
for _ in range(n):
    start = time.perf_counter()
    subprocess.run([qsdk, "plugins", "list"], check=True, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - start)
print(json.dumps({"median_s": statistics.median(times), "min_s": min(times), "times_s": times,
                  "plugins": [l.split()[0] for l in out.splitlines()[1:] if l.strip()]}))
PYEOF
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

export WORK MODELS LOAD_BEFORE LOAD_AFTER BUSY_BEFORE CALIB_BATCHES BATCH_SIZE PIPELINE_REPEAT REPEAT THREADS
export CPU_MODEL="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
export NPROC="$(nproc)"
export DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
export GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export OUT_DIR="$ROOT/bench"
export RUNTIME_S=$(($(date +%s) - START))
for v in LOAD_BEFORE LOAD_AFTER BUSY_BEFORE CPU_MODEL NPROC DATE GIT_REV RUNTIME_S MODELS CALIB_BATCHES BATCH_SIZE \
  PIPELINE_REPEAT REPEAT THREADS OMP_WAIT_POLICY; do
  printf '%s=%q\n' "$v" "${!v}"
done >"$WORK/env"
"$PY" bench/compare_report.py
