#!/usr/bin/env bash
# Float vs lowered int8 latency (batch 1 and 8), SQNR and file size for the
# MNIST CNN and torchvision resnet18/resnet50/mobilenet_v2, on onednn
# (x86-int8) and qnnpack (arm). Writes bench/RESULTS_lowering.md and
# bench/results_lowering.json, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
PY=/usr/bin/python3
cmake --build "$BUILD_DIR" --target qsdk_bench_lowering -j"$(nproc)" >/dev/null
for m in resnet18 resnet50 mobilenet_v2; do
  [ -f "$BUILD_DIR/models/$m.pt" ] || "$PY" tools/export_models.py "$BUILD_DIR/models" --only "$m" >&2
done
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$BUILD_DIR/bin/qsdk_bench_lowering" --model zoo:mnist_cnn --model "$BUILD_DIR/models/resnet18.pt" \
  --model "$BUILD_DIR/models/resnet50.pt" --model "$BUILD_DIR/models/mobilenet_v2.pt" --repeat "${REPEAT:-5}" >"$tmp"
cp "$tmp" bench/results_lowering.json.tmp && mv bench/results_lowering.json.tmp bench/results_lowering.json
CPU="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
"$PY" - <<'PYEOF'
import json, os
d = json.load(open("bench/results_lowering.json"))
lines = ["# Lowering benchmark: float vs lowered int8 (qsdk)", "",
         "Issue \"Convert\" targets: onednn int8 resnet50 at batch 1 at least 2x faster than float; its file at most "
         "0.3x the float file.", "",
         "| model | backend (engine) | float b1 (ms) | int8 b1 (ms) | speedup b1 | float b8 (ms) | int8 b8 (ms) | "
         "speedup b8 | SQNR (dB) | size int8/float |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
engine = {"x86-int8": "onednn", "arm": "qnnpack"}
for model, per_backend in d["results"].items():
    for backend, r in per_backend.items():
        lines.append(f"| {os.path.basename(model)} | {backend} ({engine.get(backend, '?')}) | {r['float_b1_s']*1e3:.1f} | "
                     f"{r['int8_b1_s']*1e3:.1f} | {r['speedup_b1']:.2f} | {r['float_b8_s']*1e3:.1f} | "
                     f"{r['int8_b8_s']*1e3:.1f} | {r['speedup_b8']:.2f} | {r['sqnr_db']:.1f} | {r['size_ratio']:.2f} |")
r50 = next((v["x86-int8"] for k, v in d["results"].items() if k.endswith("resnet50.pt")), None)
if r50:
    lines += ["", f"resnet50 onednn batch 1: {r50['speedup_b1']:.2f}x faster than float "
              f"({'holds' if r50['speedup_b1'] >= 2 else 'does not hold'}); size {r50['size_ratio']:.2f}x "
              f"({'holds' if r50['size_ratio'] <= 0.3 else 'does not hold'})."]
lines += ["", f"Machine: {os.environ['CPU']}, {d['threads']} threads, {os.environ['DATE']}; median of {d['repeat']} runs "
          "after a warm-up. Calibration on random data (4 batches of 4) and randomly initialised torchvision weights, "
          "so SQNR here is a lower bound, not an accuracy figure. qnnpack kernels are built for ARM; on this x86 "
          "machine they are slower than float, as in PyTorch. No PyTorch peer yet (issue \"Performance\").", ""]
text = "\n".join(lines)
open("bench/RESULTS_lowering.md.tmp", "w").write(text)
os.replace("bench/RESULTS_lowering.md.tmp", "bench/RESULTS_lowering.md")
print(text, end="")
PYEOF
