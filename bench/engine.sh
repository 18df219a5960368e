#!/usr/bin/env bash
# What the bundled engines compute against the integer-exact reference
# (CONTRIBUTING.md, "Checking your engine"). Two measurements, one run:
#  1. LibTorch's own int8 kernels (x86-int8: onednn, arm: qnnpack): the
#     lowered model's output against the integer reference under every
#     declared arithmetic (bench/engine_bench.cpp): which declaration they follow.
#  2. ONNX Runtime 1.30 on qsdk's export, as an engine under test against
#     x86-int8's declaration, on every bundled spec: unfused (optimizations
#     disabled, every quantized tensor) and fused (optimizations all, QLinear
#     kernels, the output): `qsdk conformance --verify-engine exact --engine ...`.
# Writes bench/RESULTS_engine.md and bench/results_engine.json, and prints the tables.
# Environment: QSDK_BUILD_DIR [build], MODELS_DIR [build/models], JOBS [2].
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
MODELS_DIR="${MODELS_DIR:-$BUILD_DIR/models}"
JOBS="${JOBS:-2}"
cmake --build "$BUILD_DIR" --target qsdk qsdk_bench_engine -j"$(nproc)" >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/qsdk-bench-engine.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$BUILD_DIR/bin/qsdk_bench_engine" >"$work/kernels.json"
for engine in onnxruntime onnxruntime-fused; do
  # Cases off the reference fail the exact check: the measurement is the point, not the exit code.
  "$BUILD_DIR/bin/qsdk" conformance specs --models-dir "$MODELS_DIR" --backend x86-int8 --verify-engine exact \
    --engine "$engine" -j "$JOBS" -o "$work/$engine" >"$work/$engine.log" 2>&1 || true
done

/usr/bin/python3 - "$work" <<'PY'
import json, sys, os
work = sys.argv[1]
kernels = json.load(open(os.path.join(work, "kernels.json")))
out = ["# Engines against the integer-exact reference", "",
       f"CPU int8 ISA: {kernels['int8_isa']} (onednn {kernels['onednn_isa']}); {kernels['batch']} random samples per model.", "",
       "## LibTorch's int8 kernels: lowered output vs the integer reference under each declaration", "",
       "Max difference in output steps / fraction of output values equal. The bundled backends declare float32 / half_to_even.", ""]
keys = None
for r in kernels["results"]:
    if "integer_reference" not in r: continue
    if keys is None:
        keys = list(r["integer_reference"])
        out.append("| model | backend | float Q/DQ | " + " | ".join(keys) + " |")
        out.append("|---" * (3 + len(keys)) + "|")
    cell = lambda a: f"{a['max_steps']:.0f} / {a['equal_fraction']:.4f}"
    out.append(f"| {r['model']} | {r['backend']} | {cell(r['float_reference'])} | " +
               " | ".join(cell(r["integer_reference"][k]) for k in keys) + " |")
summary = {"kernels": kernels, "onnxruntime": {}}
for engine in ("onnxruntime", "onnxruntime-fused"):
    path = os.path.join(work, engine, "results.json")
    if not os.path.exists(path):
        out += ["", f"## {engine}: no results ({open(os.path.join(work, engine + '.log')).read()[-400:]})"]
        continue
    cases = json.load(open(path))["cases"]
    out += ["", f"## ONNX Runtime ({engine}) vs the integer reference, x86-int8's declaration", "",
            "| spec | status | tensors exact | worst tensor LSB | values differing (all tensors) | output LSB |",
            "|---|---|---|---|---|---|"]
    rows = []
    for c in cases:
        m = (c.get("measurement") or {}).get("measurements") or {}
        engines = m.get("engines") or []
        if not engines or "tensors" not in engines[0]:
            reason = c.get("reason") or (engines[0].get("unsupported") or engines[0].get("error") if engines else "")
            out.append(f"| {c['spec']} | {c['status']} | - | - | - | {reason[:80]} |")
            continue
        e = engines[0]
        ts = [t for t in e["tensors"] if t["returned"]]
        exact = sum(t["max_lsb"] == 0 for t in ts)
        worst = max([t["max_lsb"] for t in ts], default=0)
        diff = sum(t["mismatched"] for t in ts); total = sum(t["elements"] for t in ts)
        o = e["output"]["max_lsb"]
        rows.append({"spec": c["spec"], "tensors": len(ts), "exact": exact, "worst_lsb": worst,
                     "mismatched": diff, "elements": total, "output_lsb": o})
        tensors = f"{exact} of {len(ts)} | {worst} | {diff} of {total}" if ts else "- | - | - (output only)"
        out.append(f"| {c['spec']} | {c['status']} | {tensors} | "
                   f"{o if o >= 0 else 'float output: |diff| %.3g' % e['output']['max_abs']} |")
    summary["onnxruntime"][engine] = rows
open("bench/RESULTS_engine.md", "w").write("\n".join(out) + "\n")
json.dump(summary, open("bench/results_engine.json", "w"), indent=1)
print("\n".join(out))
PY
