#!/usr/bin/python3
"""bench/run.sh's report: reads the run's JSON files from $WORK, writes
bench/results.json and bench/RESULTS.md (and prints the Markdown).

Every comparison is a ratio of two figures measured in the same run. A
hand-written closing note, bench/RESULTS_notes.md (profile findings, why a
target does not hold), is appended when present."""
import json
import math
import os

env = os.environ
work = env["WORK"]
models = env["MODELS"].split()
ENGINES = [("x86-int8", "onednn"), ("arm", "qnnpack")]
OBSERVERS = {
    "onednn": "activations HistogramObserver / qsdk MSE, weights per-channel symmetric min/max",
    "qnnpack": "activations moving-average min/max, weights per-tensor symmetric min/max",
}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{path}: {e}"}


def fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return str(x)
    return f"{x:.{digits}g}"


def ms(x):
    return "-" if x is None else f"{x * 1000:.4g}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


rows = []  # one per model x engine
raw = {}
for m in models:
    q, p = load(f"{work}/qsdk_{m}.json"), load(f"{work}/peer_{m}.json")
    raw[m] = {"qsdk": q, "pytorch": p}
    for backend, engine in ENGINES:
        qr = q.get("backends", {}).get(backend, {})
        fx = p.get("engines", {}).get(engine, {}).get("fx", {})
        jit = p.get("engines", {}).get(engine, {}).get("jit", {})
        rows.append({"model": m, "backend": backend, "engine": engine, "qsdk": qr, "fx": fx, "jit": jit,
                     "errors": [f"{tool}: {e}" for tool, e in (("qsdk", q.get("error")), ("qsdk", qr.get("error")),
                                                                ("pytorch", p.get("error")), ("FX", fx.get("error")),
                                                                ("TorchScript", jit.get("error"))) if e]})


def get(r, tool, key):
    return r[tool].get(key)


scaling = load(f"{work}/scaling.json")
startup = load(f"{work}/startup.json")

# Targets: (name, list of (where, measured, holds)).
targets = []


def target(name, checks):
    targets.append({"target": name, "checks": checks,
                    "holds": bool(checks) and all(c["holds"] for c in checks if c["holds"] is not None)})


def check(where, value, holds, text):
    return {"where": where, "value": value, "holds": holds, "text": text}


r50 = [r for r in rows if r["model"] == "resnet50" and r["engine"] == "onednn"]
target("Pipeline without calibration <= 1/10 of FX prepare_fx + convert_fx (resnet50, onednn)",
       [check("resnet50 onednn", v, v <= 0.1, f"qsdk/FX = {fmt(v)}")
        for r in r50 for v in [ratio(get(r, "qsdk", "pipeline_s"), get(r, "fx", "pipeline_s"))] if v is not None])
target("Pipeline without calibration no slower than TorchScript prepare_jit + convert_jit (every model)",
       [check(f"{r['model']} {r['engine']}", v, v <= 1.0, f"{fmt(v)}")
        for r in rows for v in [ratio(get(r, "qsdk", "pipeline_s"), get(r, "jit", "pipeline_s"))] if v is not None])
target("Calibration batch <= 1.2x the float graph's batch",
       [check(f"{r['model']} {r['engine']}", v, v <= 1.2, fmt(v))
        for r in rows for v in [get(r, "qsdk", "calib_ratio")] if v is not None])
lat = []
for r in rows:
    for b in ("b1", "b8"):
        for peer in ("fx", "jit"):
            v = ratio(get(r, "qsdk", f"int8_{b}_s"), get(r, peer, f"int8_{b}_s"))
            if v is not None:
                lat.append(check(f"{r['model']} {r['engine']} {b} vs {peer.upper()}", v, v <= 1.0, fmt(v)))
target("Lowered int8 latency no slower than the peers' lowered models (same engine)", lat)
target("onednn int8 resnet50 batch 1 at least 2x faster than float",
       [check("resnet50 onednn b1", v, v >= 2.0, f"speedup {fmt(v)}")
        for r in r50 for v in [ratio(get(r, "qsdk", "float_b1_s"), get(r, "qsdk", "int8_b1_s"))] if v is not None])
target("SQNR within 0.5 dB of FX's (same observers) or better",
       [check(f"{r['model']} {r['engine']}", d, d >= -0.5, f"{d:+.2f} dB")
        for r in rows if get(r, "qsdk", "sqnr_db") is not None and get(r, "fx", "sqnr_db") is not None
        for d in [get(r, "qsdk", "sqnr_db") - get(r, "fx", "sqnr_db")]])
scal_checks = []
by_kind = {}
for s in scaling.get("results", []):
    by_kind.setdefault((s["backend"], s["kind"]), []).append(s)
for (backend, kind), ss in by_kind.items():
    ss.sort(key=lambda s: s["nodes"])
    if len(ss) >= 2:
        v = ss[-1]["per_node_s"] / ss[0]["per_node_s"]
        scal_checks.append(check(f"{kind} {backend} {ss[-1]['nodes']} vs {ss[0]['nodes']} nodes", v, v <= 2.0,
                                 fmt(v)))
target("Scaling: time per node at 100,000 nodes <= 2x that at 1,000", scal_checks)

machine = {"cpu": env.get("CPU_MODEL"), "nproc": int(env.get("NPROC", "0")), "date": env.get("DATE"),
           "git_rev": env.get("GIT_REV"), "loadavg_before": env.get("LOAD_BEFORE"),
           "loadavg_after": env.get("LOAD_AFTER"), "cpu_busy_before_pct": int(env.get("BUSY_BEFORE", "0")),
           "omp_env": {k: v for k, v in sorted(env.items()) if k.startswith(("OMP_", "GOMP_", "MKL_"))},
           "threads": int(env["THREADS"]), "runtime_s": int(env.get("RUNTIME_S", "0"))}
for m in models:
    p = raw[m]["pytorch"]
    if "torch_version" in p:
        machine["torch_version"], machine["torchvision_version"] = p["torch_version"], p["torchvision_version"]
    q = raw[m]["qsdk"]
    if "torch_version" in q:
        machine["libtorch_version"] = q["torch_version"]

L = []
L += ["# qsdk vs PyTorch FX and TorchScript graph mode quantization", "",
      f"Measured {machine['date']} on {machine['cpu']} (nproc {machine['nproc']}), git {machine['git_rev']}, "
      f"torch {machine.get('torch_version', '?')} (LibTorch {machine.get('libtorch_version', '?')}), torchvision "
      f"{machine.get('torchvision_version', '?')}; {machine['threads']} threads in every process; load average "
      f"before/after {machine['loadavg_before']} / {machine['loadavg_after']}; CPU busy before the run (other "
      f"processes) {machine['cpu_busy_before_pct']}%; "
      + (", ".join(f"`{k}={v}`" for k, v in machine["omp_env"].items()) or "OpenMP defaults")
      + f". Command: `bench/run.sh` ({machine['runtime_s']} s).", ""]
if machine["cpu_busy_before_pct"] > 20:
    L += [f"**The machine was {machine['cpu_busy_before_pct']}% busy with other work before the run**: absolute "
          "times are inflated and noisy; the ratios compare measurements taken minutes apart under similar load.",
          ""]
L += ["Same TorchScript file for all three (torchvision constructors, random weights, batchnorm statistics "
      "re-estimated by tools/export_models.py; the MNIST CNN: zoo:mnist_cnn's architecture defined in "
      "bench/peer_compare.py, traced once). FX quantizes the eager module with the file's state loaded, "
      "TorchScript graph mode the file itself. Same seeded normal data for all: "
      f"{env['CALIB_BATCHES']} calibration batches of {env['BATCH_SIZE']}, then one evaluation batch of "
      f"{env['BATCH_SIZE']} (SQNR, batch-8 latency; its first row for batch 1). Observers: onednn "
      f"{OBSERVERS['onednn']}; qnnpack {OBSERVERS['qnnpack']}. Ratios are qsdk / peer (below 1: qsdk faster).", ""]

L += ["## Targets", "", "| target | holds | measured (worst first) |", "| --- | --- | --- |"]
for t in targets:
    cs = sorted(t["checks"], key=lambda c: (c["holds"], c["where"]))
    failing = [c for c in cs if not c["holds"]]
    shown = (failing or cs)[:6]
    text = "; ".join(f"{c['where']}: {c['text']}" for c in shown)
    if failing and len(failing) > len(shown):
        text += f"; and {len(failing) - len(shown)} more failing"
    if failing:
        text = f"{len(failing)} of {len(cs)} fail: " + text
    L.append(f"| {t['target']} | {'**yes**' if t['holds'] else '**no**'} | {text or 'not measured'} |")
L.append("")

L += ["## Pipeline time without calibration", "",
      "qsdk: capture (load, freeze, canonicalize, type) + annotate + prepare + convert + lower, median of "
      f"{env['PIPELINE_REPEAT']} runs. FX: prepare_fx + convert_fx (trace, match, observers; lowering is part of "
      "convert_fx). TorchScript: prepare_jit + convert_jit on the loaded module (conv-bn folding, observers; "
      "convert_jit lowers and freezes); its torch.jit.load is not counted (qsdk's capture includes loading).", "",
      "| model | engine | qsdk (ms) | of which capture | FX (ms) | qsdk/FX | TorchScript (ms) | qsdk/TS | nodes |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    q = r["qsdk"]
    L.append(f"| {r['model']} | {r['engine']} | {ms(q.get('pipeline_s'))} | "
             f"{ms(q.get('stages_s', {}).get('capture'))} | {ms(get(r, 'fx', 'pipeline_s'))} | "
             f"{fmt(ratio(q.get('pipeline_s'), get(r, 'fx', 'pipeline_s')))} | {ms(get(r, 'jit', 'pipeline_s'))} | "
             f"{fmt(ratio(q.get('pipeline_s'), get(r, 'jit', 'pipeline_s')))} | {q.get('nodes', '-')} |")
L += ["", "qsdk stages (ms, medians):", "",
      "| model | engine | capture | annotate | prepare | convert | lower |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    st = r["qsdk"].get("stages_s", {})
    L.append(f"| {r['model']} | {r['engine']} | " + " | ".join(ms(st.get(k)) for k in
                                                                 ("capture", "annotate", "prepare", "convert", "lower"))
             + " |")
L.append("")

L += ["## Calibration cost per batch", "",
      f"Prepared graph / float graph on the same batch of {env['BATCH_SIZE']}, interleaved, median over the "
      "calibration batches; each tool against its own float model.", "",
      "| model | engine | qsdk float (ms) | qsdk prepared (ms) | qsdk ratio | FX ratio | TorchScript ratio |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    q = r["qsdk"]
    L.append(f"| {r['model']} | {r['engine']} | {ms(q.get('calib_float_batch_s'))} | "
             f"{ms(q.get('calib_prepared_batch_s'))} | {fmt(q.get('calib_ratio'))} | "
             f"{fmt(get(r, 'fx', 'calib_ratio'))} | {fmt(get(r, 'jit', 'calib_ratio'))} |")
L.append("")

L += ["## Lowered int8 latency", "",
      f"Medians of {env['REPEAT']} runs after a warm-up. speedup = float / int8 (qsdk's own float graph); "
      "qsdk/FX and qsdk/TS: int8 latency ratios (FX's converted GraphModule runs eagerly, TorchScript's "
      "convert_jit module is frozen).", "",
      "| model | engine | batch | qsdk float (ms) | qsdk int8 (ms) | speedup | FX int8 (ms) | qsdk/FX | TS int8 (ms) | "
      "qsdk/TS |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    q = r["qsdk"]
    for b, n in (("b1", 1), ("b8", env["BATCH_SIZE"])):
        L.append(f"| {r['model']} | {r['engine']} | {n} | {ms(q.get(f'float_{b}_s'))} | {ms(q.get(f'int8_{b}_s'))} | "
                 f"{fmt(ratio(q.get(f'float_{b}_s'), q.get(f'int8_{b}_s')))} | {ms(get(r, 'fx', f'int8_{b}_s'))} | "
                 f"{fmt(ratio(q.get(f'int8_{b}_s'), get(r, 'fx', f'int8_{b}_s')))} | "
                 f"{ms(get(r, 'jit', f'int8_{b}_s'))} | "
                 f"{fmt(ratio(q.get(f'int8_{b}_s'), get(r, 'jit', f'int8_{b}_s')))} |")
L.append("")

L += ["## SQNR against float and exported size", "",
      "SQNR (dB) of each tool's lowered int8 output against its float model on the evaluation batch. Sizes: "
      "qsdk's lowered model as exported; FX: torch.jit.trace of the converted module, saved; TorchScript: "
      "the convert_jit module, saved.", "",
      "| model | engine | qsdk SQNR | FX SQNR | qsdk - FX | TS SQNR | qsdk (KB) | FX (KB) | qsdk/FX | TS (KB) | "
      "qsdk/float |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for r in rows:
    q = r["qsdk"]
    qs, fs = q.get("sqnr_db"), get(r, "fx", "sqnr_db")
    kb = lambda v: "-" if v is None else f"{v / 1024:.0f}"  # noqa: E731
    L.append(f"| {r['model']} | {r['engine']} | {fmt(qs, 4)} | {fmt(fs, 4)} | "
             f"{'-' if qs is None or fs is None else f'{qs - fs:+.2f}'} | {fmt(get(r, 'jit', 'sqnr_db'), 4)} | "
             f"{kb(q.get('int8_bytes'))} | {kb(get(r, 'fx', 'int8_bytes'))} | "
             f"{fmt(ratio(q.get('int8_bytes'), get(r, 'fx', 'int8_bytes')))} | {kb(get(r, 'jit', 'int8_bytes'))} | "
             f"{fmt(ratio(q.get('int8_bytes'), q.get('float_bytes')))} |")
L.append("")

L += ["## Scaling with graph size", "",
      "Synthetic graphs built in C++ (bench/scaling_bench.cpp): a chain of linear -> relu, and residual blocks "
      "linear -> relu -> linear -> add -> relu, on [1, 16] tensors, x86-int8 rules; annotate + prepare + convert "
      "+ lower (no capture: the graph is built directly), per op node.", "",
      "| graph | nodes | total (s) | per node (us) | annotate | prepare | convert | lower | per node / smallest |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for (backend, kind), ss in by_kind.items():
    base = ss[0]["per_node_s"]
    for s in ss:
        st = s.get("stages_per_node_s", {})
        L.append(f"| {kind} ({backend}) | {s['nodes']} | {s['total_s']:.3g} | {s['per_node_s'] * 1e6:.3g} | "
                 + " | ".join(f"{st.get(k, 0) * 1e6:.3g}" for k in ("annotate", "prepare", "convert", "lower"))
                 + f" | {s['per_node_s'] / base:.3g} |")
if "error" in scaling:
    L.append(f"\nScaling run failed: {scaling['error']}")
L.append("")

L += ["## Start-up", ""]
if "median_s" in startup:
    L.append(f"`qsdk plugins list` with the bundled plugins ({', '.join(startup['plugins'])}): median "
             f"{startup['median_s'] * 1000:.0f} ms (min {startup['min_s'] * 1000:.0f} ms) over "
             f"{len(startup['times_s'])} process starts, LibTorch load included.")
else:
    L.append(f"not measured: {startup.get('error')}")
L.append("")

errors = [(r["model"], r["engine"], e) for r in rows for e in r["errors"]]
if errors:
    L += ["## Errors", ""] + [f"- {m} {e}: {msg}" for m, e, msg in errors] + [""]

notes_path = os.path.join(env["OUT_DIR"], "RESULTS_notes.md")
if os.path.exists(notes_path):
    L += [open(notes_path).read().rstrip(), ""]
L += ["Raw figures: bench/results.json.", ""]
markdown = "\n".join(L)

results = {"issue": 12, "machine": machine, "targets": targets, "rows": rows, "scaling": scaling,
           "startup": startup, "config": {k: env[k] for k in ("CALIB_BATCHES", "BATCH_SIZE", "PIPELINE_REPEAT",
                                                                 "REPEAT", "THREADS", "MODELS")}}


def write_atomic(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


write_atomic(os.path.join(env["OUT_DIR"], "results.json"), json.dumps(results, indent=2, default=str) + "\n")
write_atomic(os.path.join(env["OUT_DIR"], "RESULTS.md"), markdown)
print(markdown, end="")
