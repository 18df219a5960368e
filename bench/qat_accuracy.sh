#!/usr/bin/env bash
# Issue "QAT": held-out MNIST accuracy of zoo:mnist_cnn_trained in float,
# after PTQ and after QAT, for x86-int8 (lowered to onednn) and for the
# per-channel backend at 4-bit weights and 4-bit activations (reference
# Q/DQ), plus a float fine-tuning control. Writes bench/RESULTS_qat.md and
# bench/results_qat.json, and prints the table. Needs MNIST
# (scripts/setup.sh). Extra arguments go to qsdk_bench_qat (--steps, --lr, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${QSDK_BUILD_DIR:-build}"
PY=/usr/bin/python3
cmake --build "$BUILD_DIR" --target qsdk_bench_qat -j"$(nproc)" >/dev/null
# QAT_RENDER_ONLY=1: rewrite the Markdown from the existing results_qat.json.
if [ -z "${QAT_RENDER_ONLY:-}" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  "$BUILD_DIR/bin/qsdk_bench_qat" --case x86-int8 --case per-channel:weight_bits=4,activation_bits=4 \
    --case per-channel:weight_bits=4,activation_bits=3 "$@" >"$tmp"
  cp "$tmp" bench/results_qat.json.tmp && mv bench/results_qat.json.tmp bench/results_qat.json
fi
CPU="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
DATE="$(date -u -r bench/results_qat.json +%Y-%m-%dT%H:%M:%SZ)" \
CMD="bench/qat_accuracy.sh $*" "$PY" - <<'PYEOF'
import json, os
d = json.load(open("bench/results_qat.json"))
q = d["qat"]
pct = lambda x: f"{100 * x:.2f}"
lines = ["# QAT benchmark: float vs PTQ vs QAT accuracy (qsdk)", "",
         "Issue \"QAT\" target: in the low-width setting, QAT recovers at least half of the accuracy PTQ loses.", "",
         f"Model `{d['model']}`; top-1 on the {d['heldout_samples']} held-out MNIST digits (never trained or "
         "calibrated on). PTQ calibrates on the calibration split: the pipeline's default "
         f"{d['calibration']['batches']} batches of {d['calibration']['batch_size']}, and all 8,000 digits. "
         f"QAT: `train_qat`, {q['steps']} steps of batch {q['batch_size']} on the calibration split, {q['optimizer']} "
         f"lr {q['lr']} ({q['lr_schedule']}) momentum {q['momentum']}, BatchNorm statistics frozen after step "
         f"{q['freeze_bn_after']}, activation ranges after step {q['freeze_observers_after']}; then the same "
         "convert and lowering as PTQ.", "",
         "| backend | lowered to | float (%) | PTQ, 256 digits (%) | PTQ, 8,000 digits (%) | QAT (%) | "
         "PTQ loss (points) | QAT recovers |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in d["results"]:
    opts = ", ".join(f"{k}={v}" for k, v in r["options"].items())
    name = r["backend"] + (f" ({opts})" if opts else "")
    lost = r["ptq_loss_points"]
    rec = f"{100 * r['qat_recovered_fraction']:.0f}%" if lost > 0 else "n/a (PTQ loses nothing)"
    lines.append(f"| {name} | {r['lowering']} | {pct(r['float_top1'])} | {pct(r['ptq_top1'])} | "
                 f"{pct(r['ptq_full_top1'])} | {pct(r['qat_top1'])} | {lost:.2f} | {rec} |")
lines += ["", "PTQ loss and recovery are against the better of the two PTQ columns: (QAT - PTQ) / (float - PTQ).",
          "", "Control: QAT is also more training. The float model fine-tuned exactly as QAT trains (same data, steps, "
          f"optimizer, schedule, BatchNorm freeze), without fake-quantize, reaches {pct(d['float_finetuned_top1'])}% "
          f"(float before: {pct(d['float_top1'])}%); PTQ of that fine-tuned model (256 calibration digits):", "",
          "| backend | fine-tuned float (%) | PTQ of fine-tuned (%) | QAT (%) |", "| --- | ---: | ---: | ---: |"]
for r in d["results"]:
    opts = ", ".join(f"{k}={v}" for k, v in r["options"].items())
    name = r["backend"] + (f" ({opts})" if opts else "")
    lines.append(f"| {name} | {pct(d['float_finetuned_top1'])} | {pct(r['ptq_of_finetuned_top1'])} | "
                 f"{pct(r['qat_top1'])} |")
lines.append("")
low = [r for r in d["results"] if r["options"]]
for r in low:
    verdict = "holds" if r["qat_recovered_fraction"] >= 0.5 else "does not hold"
    lines.append(f"Low width ({r['backend']}, " + ", ".join(f"{k}={v}" for k, v in r["options"].items()) +
                 f"): PTQ loses {r['ptq_loss_points']:.2f} points, QAT recovers "
                 f"{100 * r['qat_recovered_fraction']:.0f}% of it ({verdict}).")
    diff = 100 * (r["qat_top1"] - r["ptq_of_finetuned_top1"])
    lines.append(f"Against PTQ of the equally fine-tuned float model, QAT is {diff:+.2f} points "
                 f"({pct(r['qat_top1'])}% vs {pct(r['ptq_of_finetuned_top1'])}%): " +
                 ("within the 0.4-point standard error, so on this model what QAT gains over PTQ of the original "
                  "model comes from the extra training, not from training quantization-aware."
                  if abs(diff) < 0.4 else
                  ("more than the standard error: training quantization-aware pays beyond the extra training."
                   if diff > 0 else "QAT is worse than fine-tuning in float and then quantizing.")))
    if r["ptq_loss_points"] < 2:
        lines.append("PTQ loses less than the 2 points the issue asks the low-width setting to cost: 4-bit weights "
                     "and 4-bit activations are the narrowest widths the per-channel backend offers, and this "
                     "BatchNorm CNN on MNIST keeps most of its accuracy there. One held-out digit is 0.05 points; "
                     "the binomial standard error of a 97% accuracy on 2,000 digits is about 0.4 points.")
lines += ["", f"Command: `{os.environ['CMD'].strip()}`. Machine: {os.environ['CPU']}, {d['threads']} threads, "
          f"{os.environ['DATE']}. Deterministic: the same command gives the same numbers.", ""]
text = "\n".join(lines)
open("bench/RESULTS_qat.md.tmp", "w").write(text)
os.replace("bench/RESULTS_qat.md.tmp", "bench/RESULTS_qat.md")
print(text, end="")
PYEOF
