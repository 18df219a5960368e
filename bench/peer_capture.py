#!/usr/bin/python3
"""PyTorch's own capture of the same model, timed the way qsdk_bench_capture times qsdk.

Usage: bench/peer_capture.py MODEL.pt --input-shape 1,3,224,224 [--repeat N] [--fx-model NAME]

Each measure runs once to warm up, then N timed times; prints one JSON object,
all times in seconds. Measures (torch threads: 2, like the qsdk bench):

  jit_load                  torch.jit.load(path)
  jit_load_freeze           + .eval() + torch.jit.freeze(m)  (freeze + frozen optimizations:
                            conv-bn folding, linear/conv-add fusion, ...)
  jit_load_freeze_module    + .eval() + torch._C._freeze_module(m._c)  (the freezing pass
                            alone: what qsdk's capture calls)
  jit_load_freeze_forward   jit_load_freeze_module + one forward on an input of the shape:
                            the same work as qsdk's capture minus its canonicalization
  jit_forward               one forward of the frozen module alone
  fx_trace                  torch.fx.symbolic_trace(torchvision.models.NAME()), model
                            construction excluded (prepare_fx starts here)
  fx_trace_shapeprop        fx_trace + torch.fx.passes.shape_prop.ShapeProp on the input
                            (qsdk's capture also types every value by running the model)

Runs with Debian's python3-torch 1.13 and python3-torchvision (the shebang):
the pyenv python3 on PATH has no torch.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torch.fx
    import torchvision
    from torch.fx.passes.shape_prop import ShapeProp
except ImportError as e:
    sys.exit(f"peer_capture.py: error: {e}; run with /usr/bin/python3 (Debian's python3-torch, python3-torchvision)")


def parse_shape(text):
    try:
        shape = [int(x) for x in text.split(",")]
    except ValueError:
        shape = []
    if not shape or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got '{text}'")
    return shape


def measure(repeat, work):
    def once():
        start = time.perf_counter()
        work()
        return time.perf_counter() - start

    warmup = once()
    times = [once() for _ in range(repeat)]
    return {"warmup_s": warmup, "times_s": times, "median_s": statistics.median(times), "min_s": min(times)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="TorchScript file (.pt)")
    parser.add_argument("--input-shape", type=parse_shape, required=True, metavar="SHAPE")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fx-model", help="torchvision model for the FX measures (default: the file's stem)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    if not os.path.isfile(args.model):
        sys.exit(f"peer_capture.py: error: {args.model}: no such file")
    fx_name = args.fx_model or os.path.splitext(os.path.basename(args.model))[0]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x = torch.randn(args.input_shape)
    path = args.model
    measures = {}

    def load_eval():
        return torch.jit.load(path).eval()

    measures["jit_load"] = measure(args.repeat, lambda: torch.jit.load(path))
    measures["jit_load_freeze"] = measure(args.repeat, lambda: torch.jit.freeze(load_eval()))
    freeze_module_error = None
    try:
        torch._C._freeze_module(load_eval()._c)
        measures["jit_load_freeze_module"] = measure(args.repeat, lambda: torch._C._freeze_module(load_eval()._c))

        def load_freeze_forward():
            frozen = torch.jit._recursive.wrap_cpp_module(torch._C._freeze_module(load_eval()._c))
            with torch.no_grad():
                frozen(x)

        measures["jit_load_freeze_forward"] = measure(args.repeat, load_freeze_forward)
        frozen = torch.jit._recursive.wrap_cpp_module(torch._C._freeze_module(load_eval()._c))
        with torch.no_grad():
            measures["jit_forward"] = measure(args.repeat, lambda: frozen(x))
    except (AttributeError, RuntimeError) as e:
        freeze_module_error = str(e).splitlines()[0]

    nodes = {}
    fx_error = None
    builder = getattr(torchvision.models, fx_name, None)
    if builder is None:
        fx_error = f"torchvision.models has no '{fx_name}'"
    else:
        model = builder(weights=None).eval()  # construction is not timed
        traced = {}

        def trace():
            traced["gm"] = torch.fx.symbolic_trace(model)

        def trace_shapeprop():
            gm = torch.fx.symbolic_trace(model)
            with torch.no_grad():
                ShapeProp(gm).propagate(x)
            traced["gm"] = gm

        # FX graph mode quantization's prepare step: pattern matching against
        # the backend config plus observer insertion, the nearest peer of
        # qsdk's annotate (PT2E's annotate is not in torch 1.13).
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import prepare_fx

        torch.backends.quantized.engine = "onednn"
        qconfig_mapping = get_default_qconfig_mapping("onednn")

        def fx_prepare():
            prepare_fx(copy.deepcopy(model), qconfig_mapping, (x,))

        measures["fx_prepare"] = measure(args.repeat, fx_prepare)
        measures["fx_trace"] = measure(args.repeat, trace)
        measures["fx_trace_shapeprop"] = measure(args.repeat, trace_shapeprop)
        nodes["fx"] = sum(1 for n in traced["gm"].graph.nodes if n.op in ("call_module", "call_function", "call_method"))

    frozen_graph = torch.jit.freeze(load_eval()).graph
    nodes["jit_frozen"] = sum(1 for n in frozen_graph.nodes() if n.kind() != "prim::Constant")

    result = {
        "tool": "pytorch",
        "model": path,
        "fx_model": fx_name,
        "input_shapes": [args.input_shape],
        "repeat": args.repeat,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "nodes": nodes,
        "measures": measures,
    }
    if freeze_module_error:
        result["freeze_module_error"] = freeze_module_error
    if fx_error:
        result["fx_error"] = fx_error
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
