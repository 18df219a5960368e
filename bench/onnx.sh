#!/usr/bin/env bash
# ONNX Runtime 1.30 int8 (qsdk's QDQ export, graph optimizations "all")
# against ONNX Runtime float (the float graph through the same exporter) and
# against qsdk's lowered LibTorch int8 model (onednn for x86-int8, qnnpack for
# arm), at batch 1 and 8, for the MNIST CNN and torchvision resnet18,
# resnet50, mobilenet_v2, mobilenet_v3_small and transformer_encoder. One
# process, the three sides interleaved round by round (bench/onnx_bench.cpp).
# Writes bench/RESULTS_onnx.md and bench/results_onnx.json, and prints the table.
#
# Environment overrides (defaults in brackets):
#   MODELS   [mnist_cnn resnet18 resnet50 mobilenet_v2 mobilenet_v3_small transformer_encoder]
#   BACKENDS [x86-int8 arm]   REPEAT [5] timed runs per side per round   ROUNDS [5]
#   THREADS [1] intra-op threads, LibTorch and ONNX Runtime alike   QSDK_BUILD_DIR [build]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
PY=/usr/bin/python3  # Debian's python3-torch, for tools/export_models.py
MODELS="${MODELS:-mnist_cnn resnet18 resnet50 mobilenet_v2 mobilenet_v3_small transformer_encoder}"
BACKENDS="${BACKENDS:-x86-int8 arm}"
REPEAT="${REPEAT:-5}"
ROUNDS="${ROUNDS:-5}"
THREADS="${THREADS:-1}"
# OpenMP threads spin-wait at barriers; set before process start (bench/run.sh).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "bench: configuring $BUILD_DIR" >&2
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
# qsdk: the bundled plugins and share/qsdk/tools/ort_run.js the bench runs ONNX Runtime with.
cmake --build "$BUILD_DIR" --target qsdk qsdk_bench_onnx -j"$(nproc)" >/dev/null
ARGS=(--repeat "$REPEAT" --rounds "$ROUNDS" --threads "$THREADS")
for b in $BACKENDS; do ARGS+=(--backend "$b"); done
for m in $MODELS; do
  if [ "$m" = mnist_cnn ]; then
    ARGS+=(--model zoo:mnist_cnn)
  else
    if [ ! -f "$BUILD_DIR/models/$m.pt" ] || [ ! -f "$BUILD_DIR/models/$m.json" ]; then
      echo "bench: exporting $m to $BUILD_DIR/models" >&2
      "$PY" tools/export_models.py "$BUILD_DIR/models" --only "$m" >&2
    fi
    ARGS+=(--model "$BUILD_DIR/models/$m.pt")
  fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
"$BUILD_DIR/bin/qsdk_bench_onnx" "${ARGS[@]}" >"$tmp/run.json"
RUNTIME_S=$(($(date +%s) - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$tmp/run.json" bench/results_onnx.json.tmp && mv bench/results_onnx.json.tmp bench/results_onnx.json
CPU="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
FLAGS="$(grep -o -w 'avx2\|avx512_vnni\|avx_vnni\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')" \
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain -- host sdk plugins 2>/dev/null | grep -q . && echo ' with uncommitted changes in host/sdk/plugins')" \
NPROC="$(nproc)" LOAD_BEFORE="$LOAD_BEFORE" LOAD_AFTER="$LOAD_AFTER" RUNTIME_S="$RUNTIME_S" \
"$PY" - <<'PYEOF'
import json, os, re
d = json.load(open("bench/results_onnx.json"))
engine = {"x86-int8": "onednn", "arm": "qnnpack"}

def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")

def ms(side):
    if "median_ms" in side:
        return f"{side['median_ms']:.2f}"
    # ONNX Runtime's own message, without the scratch file's path in front.
    return cell(re.sub(r"^\S+\.onnx: ONNX Runtime failed \([^)]*\): ort_run: \S+\.onnx: ", "ONNX Runtime: ",
                       side.get("error", "-")))

def agreement(a):
    v = a.get("ort_int8_vs_libtorch_int8")
    if v is None:
        return "-"
    return f"{v:.0f}" if a.get("output_scale", 0) > 0 else f"{v:.3f} abs"

lines = ["# ONNX Runtime benchmark: ORT int8 (qsdk QDQ export) vs ORT float and LibTorch int8 (qsdk)", "",
         "ORT int8: qsdk's QDQ export of the backend's reference model in ONNX Runtime 1.30 with graph "
         "optimizations \"all\" (QDQ pairs fused into QLinear kernels). ORT float: the float graph through the "
         "same exporter. LibTorch int8: qsdk's lowered model (onednn for x86-int8, qnnpack for arm). Speedup: "
         "ORT float / ORT int8 (> 1: int8 faster). LibTorch / ORT: > 1 means ONNX Runtime's int8 is faster. "
         "Steps: largest difference of ORT int8's output from the lowered LibTorch output, in output "
         "quantization steps (batch of the row, first round; \"abs\": the output is not quantized, so the absolute "
         "difference).", "",
         "| model | backend | batch | ORT float ms | ORT int8 ms | ORT int8 speedup vs float | LibTorch int8 ms | "
         "LibTorch int8 / ORT int8 | ORT int8 vs LibTorch (steps) |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
recaptured = set()
for model, per_backend in d["results"].items():
    for backend, r in per_backend.items():
        name = f"{backend} ({r.get('engine', engine.get(backend, '?'))})"
        if "error" in r:
            lines.append(f"| {model} | {name} | - | {cell(r['error'])} | | | | | |")
            continue
        for batch, b in r["batch"].items():
            speed = b.get("ort_int8_speedup_vs_float")
            ratio = b.get("libtorch_int8_over_ort_int8")
            if "recaptured_at_batch" in b:
                recaptured.add(model)
                batch += "*"
            lines.append(f"| {model} | {name} | {batch} | {ms(b['ort_float'])} | {ms(b['ort_int8'])} | "
                         f"{'-' if speed is None else f'{speed:.2f}'} | {ms(b['libtorch_int8'])} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} | {agreement(b.get('agreement', {}))} |")
t = d["target"]
if recaptured:
    lines += ["", f"\\* {', '.join(sorted(recaptured))}: the export folds the traced shape arithmetic "
              "(aten::size) from the captured shapes, so each file runs at its captured batch size only; at this "
              "batch size the model was captured again (same calibration data, so the same quantization) and all "
              "three sides ran that capture."]
lines += ["", f"Machine: {os.environ['CPU']} ({os.environ['NPROC']} cores; flags: {os.environ['FLAGS'].strip()}; "
          f"onednn ISA {t['onednn_isa']}, x86-int8 kernels {t['int8_isa']}), {os.environ['DATE']}; "
          f"LibTorch {d['libtorch']}, ONNX Runtime {d['onnxruntime']} on CPU. "
          f"{d['threads']} intra-op thread(s) on both sides (ONNX Runtime: 1 inter-op thread, sequential), "
          "chosen so that the 2-core machine has a core to spare for the OS and other work and both engines "
          "are compared kernel for kernel; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '')}. Method: one process; per model, backend and batch size, "
          f"{d['rounds']} rounds, each timing ORT int8, ORT float and LibTorch int8 for {d['repeat']} runs "
          "(the side that starts rotating each round) so machine noise hits all three; each figure is the "
          f"median of its {d['rounds'] * d['repeat']} runs. ONNX Runtime runs in a node child process "
          "(tools/ort_run.js): process start, session creation and its warm-up run are not timed; LibTorch "
          "gets one warm-up run and one lowered graph per batch size. Inputs random; calibration on 4 random "
          "batches of 4; torchvision weights randomly initialised (latency does not depend on them). "
          f"Load average before/after: {os.environ['LOAD_BEFORE']} / {os.environ['LOAD_AFTER']}; the whole run "
          f"took {os.environ['RUNTIME_S']} s; qsdk {os.environ['GIT_REV']}. Compare ratios, not absolute times: they "
          "drift on shared machines. Sub-millisecond ORT figures (mnist_cnn) include onnxruntime-node's per-call "
          "overhead (wrapping the tensors, the asynchronous call into the native session).",
          ""]
text = "\n".join(lines)
open("bench/RESULTS_onnx.md.tmp", "w").write(text)
os.replace("bench/RESULTS_onnx.md.tmp", "bench/RESULTS_onnx.md")
print(text, end="")
PYEOF
