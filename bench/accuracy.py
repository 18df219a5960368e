"""Issue 23's accuracy table: qsdk's PTQ algorithms, mixed precision and QAT
side by side, every arm a `qsdk run` of one generated config in one run of
this script. Reads each run's manifest.json; writes Markdown and JSON."""
import argparse, glob, json, os, subprocess, sys, time

MNIST = {"name": "mnist_cnn_trained", "model": "zoo:mnist_cnn_trained",
         "calibration": "{source: mnist, batches: 8, batch_size: 32}",
         "widths": [(8, 8), (4, 8), (4, 4), (3, 8)],
         "arms": ["plain", "cle", "smoothquant", "bias_correction", "adaround", "all",
                  "mixed_precision", "mixed_precision_graph_order", "qat"]}
# The language model costs ~100 s per AdaRound run: one width, fewer arms.
TINY_LM = {"name": "tiny_lm_trained", "model": "zoo:tiny_lm_trained",
           "calibration": "{source: fortunes, batches: 8, batch_size: 8}",
           "widths": [(4, 8)], "arms": ["plain", "smoothquant", "bias_correction", "adaround", "all"]}

ALGORITHMS = {"cle": "[cle]", "smoothquant": "[smoothquant]", "bias_correction": "[bias_correction]",
              "adaround": "[adaround]", "all": "[cle, smoothquant, adaround, bias_correction]"}


def config(task, w, a, arm, out):
    lines = [f"model: {task['model']}", "backends:", f"  per-channel: {{weight_bits: {w}, activation_bits: {a}}}",
             f"calibration: {task['calibration']}", "measure: {accuracy: true, latency: false, layers: false}",
             f"output: {{dir: {out}}}"]
    if arm in ALGORITHMS:
        lines.append(f"algorithms: {ALGORITHMS[arm]}")
    if arm.startswith("mixed_precision"):
        order = "graph" if arm.endswith("graph_order") else "sensitivity"
        lines.append(f"accuracy: {{metric: top1, max_drop: 0.5, order: {order}}}")
    if arm == "qat":
        lines.append("qat: {steps: 300, lr: 0.01, batch_size: 32, freeze_bn_after: 200, freeze_observers_after: 250}")
    return "\n".join(lines) + "\n"


def run(qsdk, work, task, w, a, arm):
    out = os.path.join(work, f"{task['name']}-w{w}a{a}-{arm}")
    path = out + ".yaml"
    open(path, "w").write(config(task, w, a, arm, out))
    start = time.time()
    p = subprocess.run([qsdk, "run", path, "--no-specs", "--allow-unrelated-files"],
                       capture_output=True, text=True)
    seconds = time.time() - start
    row = {"model": task["name"], "width": f"w{w}a{a}", "arm": arm, "exit": p.returncode, "seconds": seconds}
    manifests = glob.glob(os.path.join(out, "*", "manifest.json"))
    if p.returncode != 0 or not manifests:
        row["error"] = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no manifest"]
        return row
    m = json.load(open(manifests[0]))
    acc = m.get("accuracy", {})
    row.update(sqnr_db=m.get("sqnr_db"), float_top1=acc.get("float_top1"), top1=acc.get("quantized_top1"),
               perplexity=acc.get("quantized_perplexity"), float_perplexity=acc.get("float_perplexity"))
    if "mixed_precision" in m:
        mp = m["mixed_precision"]
        row.update(fallbacks=len(mp["fallbacks"]), met=mp["met"], units=mp["units"], runs=mp["runs"],
                   moved=[f["unit"] + " -> " + f["to"] for f in mp["fallbacks"]])
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qsdk", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--quick", action="store_true", help="MNIST only")
    args = ap.parse_args()
    rows = []
    for task in [MNIST] + ([] if args.quick else [TINY_LM]):
        for w, a in task["widths"]:
            for arm in task["arms"]:
                row = run(args.qsdk, args.work, task, w, a, arm)
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    json.dump({"rows": rows}, open(args.json, "w"), indent=1)
    md = ["| model | width | arm | top-1 % (float) | drop, points | SQNR dB | perplexity | fallbacks | seconds |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            md.append(f"| {r['model']} | {r['width']} | {r['arm']} | error: {r['error'][0]} | | | | | |")
            continue
        top1 = f"{100 * r['top1']:.2f} ({100 * r['float_top1']:.2f})" if r.get("top1") is not None else ""
        drop = f"{100 * (r['float_top1'] - r['top1']):.2f}" if r.get("top1") is not None else ""
        ppl = f"{r['perplexity']:.3f} ({r['float_perplexity']:.3f})" if r.get("perplexity") else ""
        fb = f"{r['fallbacks']} of {r['units']}{'' if r['met'] else ' (not met)'}" if "fallbacks" in r else ""
        md.append(f"| {r['model']} | {r['width']} | {r['arm']} | {top1} | {drop} | {r['sqnr_db']:.2f} | {ppl} | {fb} | "
                  f"{r['seconds']:.1f} |")
    open(args.markdown, "w").write("\n".join(md) + "\n")


main()
