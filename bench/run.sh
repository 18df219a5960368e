#!/usr/bin/env bash
# Capture benchmark, side by side with PyTorch (README "Benchmarks").
#
#   bench/run.sh            ROUNDS=3 REPEAT=5 THREADS=2 by default (environment overrides)
#
# Builds qsdk_bench_capture if needed, exports build/models/resnet50.pt if
# missing, then runs ROUNDS rounds of {qsdk bench, PyTorch peer} (order
# alternating per round) so machine noise hits both, each with one warm-up and
# REPEAT timed runs per measure. Pools the timed runs of all rounds, takes
# medians, and writes bench/results.json and bench/RESULTS.md (the table it
# also prints). Target (issue "Capture"): qsdk capture of resnet50 < 1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
ROUNDS="${ROUNDS:-3}"
REPEAT="${REPEAT:-5}"
THREADS="${THREADS:-2}"  # torch intra-op threads, both sides
MODEL="$BUILD_DIR/models/resnet50.pt"
SHAPE="1,3,224,224"
TARGET_S=1.0
PY=/usr/bin/python3  # Debian's python3-torch; the pyenv python3 on PATH has no torch

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "bench: configuring $BUILD_DIR" >&2
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
echo "bench: building qsdk_bench_capture" >&2
cmake --build "$BUILD_DIR" --target qsdk_bench_capture -j"$(nproc)" >/dev/null
BENCH="$BUILD_DIR/bin/qsdk_bench_capture"

if [ ! -f "$MODEL" ]; then
  echo "bench: exporting resnet50 to $MODEL" >&2
  "$PY" tools/export_models.py "$BUILD_DIR/models" --only resnet50 >&2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

uptime_load() { cut -d' ' -f1-3 /proc/loadavg; }
# Share of all CPUs busy over 2 s before the run (other processes: the
# benchmark has not started). Torch's OpenMP threads spin-wait at barriers, so
# a busy core inflates 2-thread timings several-fold, not by a few percent.
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
if ((BUSY_BEFORE > 20)); then
  echo "bench: warning: the machine is ${BUSY_BEFORE}% busy before the run; figures will be noisy" >&2
fi
LOAD_BEFORE=$(uptime_load)
for ((r = 1; r <= ROUNDS; r++)); do
  run_qsdk() {
    echo "bench: round $r/$ROUNDS: qsdk" >&2
    "$BENCH" "$MODEL" --input-shape "$SHAPE" --repeat "$REPEAT" --threads "$THREADS" --phases \
      --annotate x86-int8 >"$WORK/qsdk.$r.json"
  }
  run_peer() {
    echo "bench: round $r/$ROUNDS: pytorch" >&2
    "$PY" bench/peer_capture.py "$MODEL" --input-shape "$SHAPE" --repeat "$REPEAT" --threads "$THREADS" \
      --fx-model resnet50 >"$WORK/peer.$r.json"
  }
  if ((r % 2)); then run_qsdk; run_peer; else run_peer; run_qsdk; fi
done
# Calibration cost (issue "Prepare and calibrate"): prepared resnet18 batch
# against the float graph, qsdk and FX each in their own process.
echo "bench: calibration: qsdk" >&2
cmake --build "$BUILD_DIR" --target qsdk_bench_calibrate -j"$(nproc)" >/dev/null
"$BUILD_DIR/bin/qsdk_bench_calibrate" zoo:resnet18 --batch-size 8 --repeat "$REPEAT" --threads "$THREADS" \
  >"$WORK/calib_qsdk.json"
echo "bench: calibration: pytorch" >&2
"$PY" bench/peer_calibrate.py --batch-size 8 --repeat "$REPEAT" --threads "$THREADS" >"$WORK/calib_peer.json"
LOAD_AFTER=$(uptime_load)

export WORK ROUNDS REPEAT MODEL SHAPE TARGET_S LOAD_BEFORE LOAD_AFTER BUSY_BEFORE
export CPU_MODEL="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
export NPROC="$(nproc)"
export DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
export GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export BLAS="$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)"
export OUT_DIR="$ROOT/bench"

"$PY" - <<'PYEOF'
import json, os, statistics

env = os.environ
rounds = int(env["ROUNDS"])
work = env["WORK"]
qsdk_runs = [json.load(open(f"{work}/qsdk.{r}.json")) for r in range(1, rounds + 1)]
peer_runs = [json.load(open(f"{work}/peer.{r}.json")) for r in range(1, rounds + 1)]


def pooled(runs, name):
    times = [t for run in runs if name in run["measures"] for t in run["measures"][name]["times_s"]]
    if not times:
        return None
    return {"times_s": times, "median_s": statistics.median(times), "min_s": min(times),
            "round_medians_s": [run["measures"][name]["median_s"] for run in runs if name in run["measures"]]}


target = float(env["TARGET_S"])
ANNOTATE_TARGET_S = 0.05  # issue "Annotate": annotation of resnet50 under 50 ms
# (measure, qsdk measure, peer measure, target in seconds or None)
rows = [
    ("capture vs TorchScript load+freeze (torch.jit.freeze)", "capture", "jit_load_freeze", target),
    ("capture vs load+freeze pass alone (_freeze_module)", "capture", "jit_load_freeze_module", target),
    ("capture vs load+freeze+one forward (same work, no canonicalization)", "capture", "jit_load_freeze_forward", target),
    ("capture vs FX symbolic_trace + ShapeProp", "capture", "fx_trace_shapeprop", target),
    ("capture vs FX symbolic_trace alone", "capture", "fx_trace", target),
    ("annotate (x86-int8 rules) vs FX prepare_fx (matching + observers, onednn)", "annotate", "fx_prepare",
     ANNOTATE_TARGET_S),
    ("phase: load (LibTorch C++ vs Python)", "load", "jit_load", None),
    ("phase: load+eval+freeze_module (C++ vs Python)", "load_freeze", "jit_load_freeze_module", None),
    ("phase: one forward of the frozen module (C++ vs Python)", "forward", "jit_forward", None),
]
qsdk_m = {name: pooled(qsdk_runs, name) for name in {r[1] for r in rows}}
peer_m = {name: pooled(peer_runs, name) for name in {r[2] for r in rows}}
table = []
for label, q, p, row_target in rows:
    qm, pm = qsdk_m[q], peer_m[p]
    if qm is None or pm is None:
        continue
    row = {"measure": label, "qsdk": q, "peer": p, "qsdk_median_s": qm["median_s"], "peer_median_s": pm["median_s"],
           "ratio": qm["median_s"] / pm["median_s"]}
    if row_target is not None:
        row["target_s"] = row_target
        row["holds"] = qm["median_s"] < row_target
    table.append(row)

capture = qsdk_m["capture"]
machine = {"cpu": env["CPU_MODEL"], "nproc": int(env["NPROC"]), "date": env["DATE"], "git_rev": env["GIT_REV"],
           "torch_version": peer_runs[0]["torch_version"], "libtorch_version": qsdk_runs[0]["torch_version"],
           "torchvision_version": peer_runs[0]["torchvision_version"], "threads": qsdk_runs[0]["threads"],
           "blas": env["BLAS"], "loadavg_before": env["LOAD_BEFORE"], "loadavg_after": env["LOAD_AFTER"],
           "cpu_busy_before_pct": int(env["BUSY_BEFORE"]),
           "omp_env": {k: v for k, v in sorted(env.items()) if k.startswith(("OMP_", "GOMP_", "MKL_"))}}
results = {
    "issue": "Capture",
    "target": f"qsdk capture of torchvision resnet50 from its TorchScript file < {target:g} s",
    "target_holds": capture["median_s"] < target,
    "annotate_target": f"annotation of resnet50 with x86-int8 rules < {ANNOTATE_TARGET_S * 1000:g} ms",
    "annotate_target_holds": bool(qsdk_m.get("annotate")) and qsdk_m["annotate"]["median_s"] < ANNOTATE_TARGET_S,
    "model": env["MODEL"], "input_shape": env["SHAPE"], "rounds": rounds, "repeat": int(env["REPEAT"]),
    "machine": machine,
    "nodes": {"qsdk": qsdk_runs[0]["nodes"], **{f"pytorch_{k}": v for k, v in peer_runs[0]["nodes"].items()}},
    "table": table,
    "qsdk": {k: v for k, v in qsdk_m.items() if v}, "pytorch": {k: v for k, v in peer_m.items() if v},
    "raw": {"qsdk": qsdk_runs, "pytorch": peer_runs},
}

n = rounds * int(env["REPEAT"])
lines = [
    "# Capture and annotate benchmark: qsdk vs PyTorch",
    "",
    f"Issue \"Capture\" target: {results['target']}. "
    f"**{'Holds' if results['target_holds'] else 'Does not hold'}**: qsdk capture median "
    f"{capture['median_s']:.3f} s (min {capture['min_s']:.3f} s).",
    "",
    f"Issue \"Annotate\" target: {results['annotate_target']}. "
    f"**{'Holds' if results['annotate_target_holds'] else 'Does not hold'}**"
    + (f": qsdk annotate median {qsdk_m['annotate']['median_s'] * 1000:.1f} ms." if qsdk_m.get("annotate") else "."),
    "",
    f"Model `{env['MODEL']}`, input {env['SHAPE']}; {rounds} interleaved rounds (qsdk, PyTorch) x "
    f"{env['REPEAT']} timed runs after one warm-up per measure; medians over the {n} pooled runs; "
    f"ratio = qsdk / PyTorch (below 1: qsdk faster). Torch threads: {machine['threads']}.",
    "",
    "| measure | qsdk median (s) | peer median (s) | ratio | target | holds |",
    "| --- | ---: | ---: | ---: | --- | --- |",
]
for row in table:
    tgt = f"< {row['target_s']:g} s" if "target_s" in row else "-"
    holds = ("yes" if row["holds"] else "no") if "holds" in row else "-"
    lines.append(f"| {row['measure']} | {row['qsdk_median_s']:.4g} | {row['peer_median_s']:.4g} | "
                 f"{row['ratio']:.3g} | {tgt} | {holds} |")
calib_q = json.load(open(f"{work}/calib_qsdk.json"))
calib_p = json.load(open(f"{work}/calib_peer.json"))
CALIB_TARGET = 1.2
calib_rows = [
    ("arm (moving-average min/max)", "arm", "moving_average_minmax"),
    ("x86-int8 (MSE = PyTorch's HistogramObserver)", "x86-int8", "histogram (onednn default)"),
]
results["calibration"] = {"qsdk": calib_q, "pytorch": calib_p, "target_ratio": CALIB_TARGET}
lines += [
    "",
    "## Calibration batch cost: prepared graph / float graph (resnet18, batch 8)",
    "",
    f"Issue \"Prepare and calibrate\" target: qsdk's prepared resnet18 at most {CALIB_TARGET}x the float graph per "
    "calibration batch. FX: prepare_fx on torchvision resnet18 with the same observer kind, same batch size.",
    "",
    "| backend (activation observer) | qsdk float (s) | qsdk prepared (s) | qsdk ratio | FX ratio | target | holds |",
    "| --- | ---: | ---: | ---: | ---: | --- | --- |",
]
for label, backend, peer_name in calib_rows:
    q = calib_q["backends"][backend]
    p = calib_p["observers"][peer_name]
    lines.append(f"| {label} | {q['float_batch_s']:.4g} | {q['prepared_batch_s']:.4g} | {q['ratio']:.3g} | "
                 f"{p['ratio']:.3g} | <= {CALIB_TARGET} | {'yes' if q['ratio'] <= CALIB_TARGET else 'no'} |")
nodes = results["nodes"]
lines += [
    "",
    f"Nodes: qsdk canonical graph {nodes['qsdk']}; "
    + "; ".join(f"{k.replace('pytorch_', 'PyTorch ')} {v}" for k, v in nodes.items() if k != "qsdk") + ".",
    "",
    "Machine: " + f"{machine['cpu']}, nproc {machine['nproc']}; {machine['date']}; git {machine['git_rev']}; "
    f"torch {machine['torch_version']} (LibTorch {machine['libtorch_version']}), "
    f"torchvision {machine['torchvision_version']}; BLAS {machine['blas']}; "
    f"load average before/after {machine['loadavg_before']} / {machine['loadavg_after']}; "
    f"CPU busy before the run (other processes) {machine['cpu_busy_before_pct']}%; OpenMP environment: "
    + (", ".join(f"`{k}={v}`" for k, v in machine["omp_env"].items()) or "defaults") + ".",
    "",
]
if machine["cpu_busy_before_pct"] > 20:
    lines += [
        f"**Warning: the machine was {machine['cpu_busy_before_pct']}% busy before the run.** Torch's OpenMP "
        "threads spin-wait at barriers; with another process on one of the cores, 2-thread timings grow "
        "several-fold (`OMP_WAIT_POLICY=PASSIVE bench/run.sh` avoids the spinning). Re-run on a quiet machine "
        "before drawing conclusions.",
        "",
    ]
lines += [
    "Measures: qsdk `capture` = qsdk::capture_model (load, eval, freeze, canonicalize, one run typing every "
    "value); `load`, `load_freeze`, `forward` = LibTorch's own steps alone, from C++. PyTorch side: "
    "bench/peer_capture.py (docstring). Raw times: bench/results.json.",
    "",
]
markdown = "\n".join(lines)


def write_atomic(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


out = env["OUT_DIR"]
write_atomic(f"{out}/results.json", json.dumps(results, indent=2) + "\n")
write_atomic(f"{out}/RESULTS.md", markdown)
print(markdown, end="")
PYEOF
