#!/usr/bin/python3
"""PyTorch's side of bench/run.sh: FX and TorchScript graph mode quantization.

  peer_compare.py data OUT.pt --shape 1,3,224,224 --samples N [--seed 0]
      seeded normal batches (torch.save of one [N, ...] tensor) that both
      qsdk and this script calibrate and evaluate on
  peer_compare.py export-mnist OUT.pt [--seed 0]
      the MNIST CNN (qsdk's zoo:mnist_cnn architecture, defined below with
      the same module names) with seeded weights and batchnorm statistics
      re-estimated on random inputs, traced to TorchScript; qsdk captures
      this file, so both sides quantize the same weights
  peer_compare.py run NAME MODEL.pt --shape ... --data DATA.pt [...]
      per engine (onednn, qnnpack): FX (prepare_fx, convert_fx) on the eager
      model (torchvision constructor, or the classes below, with the state
      of MODEL.pt loaded) and TorchScript graph mode (prepare_jit,
      convert_jit) on MODEL.pt itself; the same measures as
      bench/compare_bench.cpp. Prints one JSON object.

Observers (the same as qsdk's backends, so SQNR compares like with like):
  onednn  activations HistogramObserver (quint8, no reduce_range; qsdk
          x86-int8's MSE observer), weights per-channel symmetric min/max
  qnnpack activations MovingAverageMinMaxObserver (quint8), weights
          per-tensor symmetric min/max (qsdk arm)
Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision).
"""
import argparse
import copy
import io
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torch.ao.quantization import QConfig, get_default_qconfig_mapping
from torch.ao.quantization.observer import (HistogramObserver, MovingAverageMinMaxObserver,
                                            default_per_channel_weight_observer, default_weight_observer)
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch.ao.quantization.quantize_jit import convert_jit, prepare_jit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from export_models import reestimate_batchnorm  # noqa: E402


class MnistCnn(torch.nn.Module):
    """host/capture/zoo/mnist_cnn.cpp, module for module."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 5, padding=2)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.conv2 = torch.nn.Conv2d(16, 32, 5)
        self.bn2 = torch.nn.BatchNorm2d(32)
        self.fc1 = torch.nn.Linear(32 * 5 * 5, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class EncoderLayerSlowPath(torch.nn.TransformerEncoderLayer):
    """nn.TransformerEncoderLayer without its fast-path checks, which FX's
    symbolic tracing cannot follow (branches on tensor properties). Same
    computation as the traced file (post-norm, no masks, eval dropout)."""

    def forward(self, src):
        x = self.norm1(src + self._sa_block(src, None, None))
        return self.norm2(x + self._ff_block(x))


def eager_model(name):
    if name == "mnist_cnn":
        return MnistCnn()
    if name == "transformer_encoder":
        return EncoderLayerSlowPath(d_model=256, nhead=8, dim_feedforward=1024, batch_first=True)
    return getattr(torchvision.models, name)(weights=None)


def qconfig_mapping(engine):
    if engine == "onednn":
        qconfig = QConfig(activation=HistogramObserver.with_args(dtype=torch.quint8, reduce_range=False),
                          weight=default_per_channel_weight_observer)
    else:
        qconfig = QConfig(activation=MovingAverageMinMaxObserver.with_args(dtype=torch.quint8),
                          weight=default_weight_observer)
    # The engine's default mapping keeps its fixed-qparams entries (sigmoid,
    # hardsigmoid, ...); the global qconfig is ours.
    return qconfig, get_default_qconfig_mapping(engine).set_global(qconfig)


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latency(fn, repeat):
    fn()
    return statistics.median(seconds(fn) for _ in range(repeat))


def sqnr_db(ref, q):
    ref, q = ref.double(), q.double()
    noise = (ref - q).pow(2).sum().item()
    signal = ref.pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def file_size(module):
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return len(buf.getvalue())


def first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def measure_fx(name, path, engine, batches, eval8, args):
    qconfig, mapping = qconfig_mapping(engine)
    model = eager_model(name)
    model.load_state_dict(torch.jit.load(path).state_dict())
    model.eval()
    example = (eval8[:1],)
    r = {"stages_s": {}, "stage_times_s": {"prepare_fx": [], "convert_fx": []}}
    for run in range(args.pipeline_repeat):
        fresh = copy.deepcopy(model)
        holder = {}
        r["stage_times_s"]["prepare_fx"].append(
            seconds(lambda: holder.update(p=prepare_fx(fresh, mapping, example))))
        prepared = holder["p"]
        if run == 0:
            model(batches[0])
            float_t, calib_t = [], []
            for b in batches:
                float_t.append(seconds(lambda: model(b)))
                calib_t.append(seconds(lambda: prepared(b)))
            r.update(calib_float_batch_s=statistics.median(float_t), calib_prepared_batch_s=statistics.median(calib_t),
                     calib_float_times_s=float_t, calib_prepared_times_s=calib_t)
            r["calib_ratio"] = r["calib_prepared_batch_s"] / r["calib_float_batch_s"]
            second = copy.deepcopy(prepared)
        else:
            prepared(batches[0])
        r["stage_times_s"]["convert_fx"].append(seconds(lambda: holder.update(c=convert_fx(prepared))))
        if run == 0:
            lowered1, lowered8 = holder["c"], convert_fx(second)
    for k, v in r["stage_times_s"].items():
        r["stages_s"][k] = statistics.median(v)
    totals = [a + b for a, b in zip(r["stage_times_s"]["prepare_fx"], r["stage_times_s"]["convert_fx"])]
    r["pipeline_s"], r["pipeline_times_s"] = statistics.median(totals), totals
    eval1 = eval8[:1]
    r["float_b1_s"] = latency(lambda: model(eval1), args.repeat)
    r["int8_b1_s"] = latency(lambda: lowered1(eval1), args.repeat)
    r["float_b8_s"] = latency(lambda: model(eval8), args.repeat)
    r["int8_b8_s"] = latency(lambda: lowered8(eval8), args.repeat)
    r["sqnr_db"] = sqnr_db(first(model(eval8)), first(lowered8(eval8)))
    try:
        r["int8_bytes"] = file_size(torch.jit.trace(lowered1, (eval1,), check_trace=False))
    except Exception as e:  # noqa: BLE001 -- reported, not fatal
        r["int8_bytes_error"] = str(e).splitlines()[0]
    return r


def measure_jit(path, engine, batches, eval8, args):
    qconfig, _ = qconfig_mapping(engine)
    float_model = torch.jit.load(path).eval()
    r = {"stages_s": {}, "stage_times_s": {"load": [], "prepare_jit": [], "convert_jit": []}}
    for run in range(args.pipeline_repeat):
        holder = {}
        r["stage_times_s"]["load"].append(seconds(lambda: holder.update(m=torch.jit.load(path).eval())))
        fresh = holder["m"]
        r["stage_times_s"]["prepare_jit"].append(
            seconds(lambda: holder.update(p=prepare_jit(fresh, {"": qconfig}))))
        prepared = holder["p"]
        if run == 0:
            float_model(batches[0])
            prepared(batches[0])  # warm-up: profiling executor specialises on the first calls
            float_t, calib_t = [], []
            for b in batches:
                float_t.append(seconds(lambda: float_model(b)))
                calib_t.append(seconds(lambda: prepared(b)))
            r.update(calib_float_batch_s=statistics.median(float_t), calib_prepared_batch_s=statistics.median(calib_t),
                     calib_float_times_s=float_t, calib_prepared_times_s=calib_t)
            r["calib_ratio"] = r["calib_prepared_batch_s"] / r["calib_float_batch_s"]
        else:
            prepared(batches[0])
        r["stage_times_s"]["convert_jit"].append(seconds(lambda: holder.update(c=convert_jit(prepared))))
        if run == 0:
            lowered1, lowered8 = holder["c"], convert_jit(prepared)
    for k, v in r["stage_times_s"].items():
        r["stages_s"][k] = statistics.median(v)
    totals = [a + b for a, b in zip(r["stage_times_s"]["prepare_jit"], r["stage_times_s"]["convert_jit"])]
    r["pipeline_s"], r["pipeline_times_s"] = statistics.median(totals), totals
    with_load = [a + b for a, b in zip(totals, r["stage_times_s"]["load"])]
    r["pipeline_with_load_s"] = statistics.median(with_load)
    eval1 = eval8[:1]
    r["float_b1_s"] = latency(lambda: float_model(eval1), args.repeat)
    r["int8_b1_s"] = latency(lambda: lowered1(eval1), args.repeat)
    r["float_b8_s"] = latency(lambda: float_model(eval8), args.repeat)
    r["int8_b8_s"] = latency(lambda: lowered8(eval8), args.repeat)
    r["sqnr_db"] = sqnr_db(first(float_model(eval8)), first(lowered8(eval8)))
    r["int8_bytes"] = file_size(lowered1)
    return r


def cmd_data(args):
    shape = [int(s) for s in args.shape.split(",")]
    gen = torch.Generator().manual_seed(args.seed)
    torch.save(torch.randn([args.samples] + shape[1:], generator=gen), args.out)


def cmd_export_mnist(args):
    torch.manual_seed(args.seed)
    model = MnistCnn()
    reestimate_batchnorm(model, [1, 1, 28, 28], seed=args.seed)
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(model.eval(), torch.randn(1, 1, 28, 28)), args.out)


def cmd_run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = torch.load(args.data).float()
    bs = args.batch_size
    batches = [data[i * bs:(i + 1) * bs] for i in range(args.calib_batches)]
    eval8 = data[args.calib_batches * bs:(args.calib_batches + 1) * bs]
    result = {"tool": "pytorch", "model": args.model, "threads": torch.get_num_threads(),
              "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
              "calib_batches": args.calib_batches, "batch_size": bs, "pipeline_repeat": args.pipeline_repeat,
              "repeat": args.repeat, "engines": {}}
    with torch.no_grad():
        for engine in args.engine:
            torch.backends.quantized.engine = engine
            out = {}
            for tool, fn in (("fx", lambda: measure_fx(args.name, args.model, engine, batches, eval8, args)),
                             ("jit", lambda: measure_jit(args.model, engine, batches, eval8, args))):
                print(f"bench: pytorch {tool} {args.name} {engine}", file=sys.stderr)
                try:
                    out[tool] = fn()
                except Exception as e:  # noqa: BLE001 -- one failing peer does not lose the others
                    out[tool] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                    print(f"bench: pytorch {tool} {args.name} {engine}: {out[tool]['error']}", file=sys.stderr)
            result["engines"][engine] = out
    print(json.dumps(result, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data")
    p.add_argument("out")
    p.add_argument("--shape", required=True)
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_data)
    p = sub.add_parser("export-mnist")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_export_mnist)
    p = sub.add_parser("run")
    p.add_argument("name")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--engine", action="append", default=None)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--pipeline-repeat", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(fn=cmd_run)
    args = parser.parse_args()
    if getattr(args, "engine", None) is None and args.command == "run":
        args.engine = ["onednn", "qnnpack"]
    args.fn(args)


if __name__ == "__main__":
    main()
