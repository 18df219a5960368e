#!/usr/bin/python3
"""Robustness table: every exported architecture through `qsdk convert` on each backend.

Usage: bench/robustness.py --qsdk BIN --models DIR --work DIR --json OUT.json --markdown OUT.md
                           [--backends B...] [--only NAME...] [--batches N] [--batch-size N]

For each DIR/NAME.pt (with its NAME.json from tools/export_models.py) and each
backend, runs `qsdk convert NAME.pt --input SHAPE -b BACKEND --data random
--batches N --batch-size N --output WORK/NAME` as a child process, and
records: exit code and the error's first line, wall time and the child's
peak resident memory (wait4); from annotation.json the quantized / float /
bookkeeping op counts and the float op kinds with their reasons; from
manifest.json SQNR, the
lowered model's distance from the reference (steps and noise margin), notes
and warnings. A crash (a signal, exit 3 "internal error", a traceback) is what
the table exists to catch; `--fail-on-crash` makes it the exit code.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import threading
import time

CRASH_MARKERS = ("internal error", "Traceback", "terminate called", "Assertion")


def run_one(qsdk, model_pt, shape, backend, out_dir, batches, batch_size):
    cmd = [qsdk, "convert", model_pt, "--input", ",".join(str(d) for d in shape), "-b", backend,
           "--data", "random", "--batches", str(batches), "--batch-size", str(batch_size), "--output", out_dir]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # communicate() reaps the child; wait4 must reap it to read its rusage, so
    # read the pipes first (threads avoid a full-pipe deadlock), then wait4.
    out_chunks, err_chunks = [], []

    def drain(stream, sink):
        sink.append(stream.read())

    threads = [threading.Thread(target=drain, args=(proc.stdout, out_chunks)),
               threading.Thread(target=drain, args=(proc.stderr, err_chunks))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - start
    return {
        "command": " ".join(cmd),
        "exit": proc.returncode,
        "stdout": "".join(out_chunks),
        "stderr": "".join(err_chunks),
        "seconds": round(seconds, 1),
        "peak_mb": round(usage.ru_maxrss / 1024.0),  # ru_maxrss is in KiB on Linux
    }


def summarize(manifest_path, annotation_path):
    with open(manifest_path) as f:
        m = json.load(f)
    with open(annotation_path) as f:
        decisions = json.load(f)["nodes"]
    counts = collections.Counter()
    float_kinds = collections.defaultdict(collections.Counter)  # op -> reason -> count
    for d in decisions:
        if d["status"] == "float" and d.get("bookkeeping"):
            counts["bookkeeping"] += 1
        else:
            counts[d["status"]] += 1
        if d["status"] == "float" and not d.get("bookkeeping"):
            float_kinds[d["op"]][d["reason"]] += 1
    lowering = m.get("lowering", {})
    return {
        "ops": sum(counts.values()),
        "quantized": counts["quantized"],
        "folded": m.get("conversion", {}).get("folded_batch_norms", 0),
        "float": counts["float"],
        "bookkeeping": counts["bookkeeping"],
        "skipped": counts["skipped"],
        "float_kinds": {op: dict(reasons) for op, reasons in sorted(float_kinds.items())},
        "sqnr_db": m.get("sqnr_db"),
        "lowered_ops": lowering.get("lowered_ops"),
        "lowered_max_steps": lowering.get("max_difference_steps"),
        "lowered_noise_margin_db": lowering.get("noise_margin_db"),
        "kernels_checked": lowering.get("op_by_op", {}).get("checked"),
        "notes": m.get("notes", []),
        "output_warning": m.get("output_warning", ""),
    }


def parse_stages(stdout):
    # "stages:         capture 3.1 s (1.20 GB), calibrate 9.0 s (1.31 GB), ..."
    for line in stdout.splitlines():
        if line.startswith("stages:"):
            out = []
            for part in line.split(":", 1)[1].split("),"):
                m = re.match(r"\s*(.+?) ([0-9.]+) s \(([0-9.]+) GB", part)
                if m:
                    out.append({"stage": m.group(1), "seconds": float(m.group(2)), "peak_gb": float(m.group(3))})
            return out
    return []


def heaviest(stages):
    # The slowest stage, and the stage that raised the peak memory most.
    if not stages:
        return "-"
    slow = max(stages, key=lambda s: s["seconds"])
    rise, prev, grew = None, 0.0, 0.0
    for s in stages:
        if s["peak_gb"] - prev > grew:
            rise, grew = s, s["peak_gb"] - prev
        prev = max(prev, s["peak_gb"])
    return f"{slow['stage']} {slow['seconds']:.0f} s; peak in {rise['stage'] if rise else '-'}"


def first_error_line(stderr):
    for line in stderr.splitlines():
        if line.startswith("qsdk:"):
            return line.strip()
    lines = [l for l in stderr.splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


def short_reason(reason):
    # "input not quantized: its producer %12 aten::sigmoid is in float" -> the part before the node
    return reason.split(": ")[0]


def number(x, digits):
    # JSON numbers, or the strings "inf"/"nan" the manifest writes for them
    return x if isinstance(x, str) else f"{x:.{digits}f}"


def markdown(rows, args):
    out = ["# Robustness: torchvision architectures through `qsdk convert`", "",
           f"`bench/robustness.sh` (`qsdk convert MODEL --data random --batches {args.batches} "
           f"--batch-size {args.batch_size}`, traced at batch 1), one model per torchvision 0.14 classification "
           "architecture (tools/export_models.py --set architectures).", "",
           "Ops: quantized / all annotated ops; float = tensor ops left in float (bookkeeping = shape and "
           "scalar arithmetic, counted apart); steps = lowered model vs reference Q/DQ model, in output "
           "quantization steps, with its margin below the quantization noise; peak = the child's peak RSS.", "",
           "| model | backend | exit | quantized / ops | float (+bookkeeping) | SQNR dB | lowered steps (margin dB) "
           "| s | peak MB | slowest stage; peak memory | error / float op kinds |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.get("summary")
        if s:
            kinds = ", ".join(f"{op.replace('aten::', '')} x{sum(reasons.values())} "
                              f"({'; '.join(sorted({short_reason(k) for k in reasons}))})"
                              for op, reasons in s["float_kinds"].items())
            steps = "-" if s["lowered_max_steps"] is None else (
                f"{number(s['lowered_max_steps'], 2)} ({number(s['lowered_noise_margin_db'], 1)})")
            sqnr = "-" if s["sqnr_db"] is None else number(s["sqnr_db"], 1)
            cells = [f"{s['quantized']} / {s['ops']}", f"{s['float']} (+{s['bookkeeping']})", sqnr, steps]
        else:
            kinds, cells = "", ["-", "-", "-", "-"]
        text = r["error"] if r["exit"] != 0 else kinds
        if s and s["output_warning"]:
            text = (text + "; " if text else "") + "warning: " + s["output_warning"]
        out.append(f"| {r['model']} | {r['backend']} | {r['exit']} | " + " | ".join(cells) +
                   f" | {r['seconds']} | {r['peak_mb']} | {heaviest(r.get('stages', []))} | {text.replace('|', '/')} |")
    crashes = [r for r in rows if r["crash"]]
    failures = [r for r in rows if r["exit"] != 0]
    out += ["", f"{len(rows)} runs: {len(rows) - len(failures)} exit 0, {len(failures)} refused or failed a check, "
            f"{len(crashes)} crashes (internal error, signal or traceback)."]
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--qsdk", required=True)
    p.add_argument("--models", required=True, help="directory of NAME.pt + NAME.json")
    p.add_argument("--work", required=True, help="directory for the converted outputs")
    p.add_argument("--json", required=True)
    p.add_argument("--markdown", required=True)
    p.add_argument("--backends", nargs="+", default=["x86-int8", "arm", "per-channel"])
    p.add_argument("--only", nargs="+", metavar="NAME")
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--fail-on-crash", action="store_true")
    args = p.parse_args()

    names = args.only or sorted(f[:-5] for f in os.listdir(args.models) if f.endswith(".json"))
    rows = []
    for name in names:
        with open(os.path.join(args.models, name + ".json")) as f:
            shape = json.load(f)["input_shapes"][0]
        for backend in args.backends:
            out_dir = os.path.join(args.work, name)
            r = run_one(args.qsdk, os.path.join(args.models, name + ".pt"), shape, backend, out_dir, args.batches,
                        args.batch_size)
            row = {"model": name, "backend": backend, "exit": r["exit"], "seconds": r["seconds"],
                   "peak_mb": r["peak_mb"], "error": first_error_line(r["stderr"]) if r["exit"] else "",
                   "crash": r["exit"] < 0 or r["exit"] == 3 or any(k in r["stderr"] for k in CRASH_MARKERS),
                   "command": r["command"]}
            row["stages"] = parse_stages(r["stdout"])
            manifest = os.path.join(out_dir, backend, "manifest.json")
            if os.path.exists(manifest) and os.path.getmtime(manifest) >= time.time() - r["seconds"] - 1:
                row["summary"] = summarize(manifest, os.path.join(out_dir, backend, "annotation.json"))
            rows.append(row)
            print(f"{name} {backend}: exit {r['exit']} {r['seconds']} s {r['peak_mb']} MB {row['error']}",
                  flush=True)
            with open(args.json, "w") as f:  # after every run, so a long run can be read while it goes
                json.dump(rows, f, indent=1)
    with open(args.markdown, "w") as f:
        f.write(markdown(rows, args))
    if args.fail_on_crash and any(r["crash"] for r in rows):
        sys.exit("robustness.py: crashes: " + ", ".join(f"{r['model']}/{r['backend']}" for r in rows if r["crash"]))


if __name__ == "__main__":
    main()
