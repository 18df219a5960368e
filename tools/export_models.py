#!/usr/bin/python3
"""Export real architectures to TorchScript files for qsdk to capture.

Usage: tools/export_models.py OUTDIR [--only NAME...] [--set tests|architectures] [--force]

--set tests (the default) exports the models the specs and tests use;
--set architectures exports one model of every classification architecture
torchvision 0.14 builds (the smallest of each family), for
bench/robustness.sh. Writes OUTDIR/NAME.pt (torch.jit.trace, eval mode) and OUTDIR/NAME.json
({"name", "input_shapes", "torch_version", "torchvision_version"}) for each
model. A model whose two files already exist is skipped unless --force.

Runs with Debian's python3-torch (1.13) and python3-torchvision (0.14); the
pyenv python3 on PATH has no torch, hence the explicit shebang.
"""

import argparse
import json
import os
import sys
import tempfile
import time

try:
    import torch
    import torchvision
except ImportError as e:
    sys.exit(f"export_models.py: error: {e}; run with /usr/bin/python3 (Debian's python3-torch, python3-torchvision)")

IMAGE_SHAPE = [1, 3, 224, 224]

# Fused ops that PyTorch 1.13's eval-mode fast path emits for transformer
# layers: one opaque node that no quantizer rule can match.
FAST_PATH_OPS = ("aten::_transformer_encoder_layer_fwd", "aten::_native_multi_head_attention")


def reestimate_batchnorm(model, input_shape, batches=4, batch_size=8, seed=0):
    # Randomly initialised torchvision nets have BN stats (0, 1) that do not
    # match their activations, so outputs collapse towards 0 (MobileNets give
    # ~1e-9) and quantization error measurements mean nothing. A cumulative
    # average over a few random batches gives statistics that fit the weights.
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn([batch_size] + list(input_shape[1:]), generator=gen))
    model.eval()


def torchvision_model(name):
    def build():
        return getattr(torchvision.models, name)(weights=None)

    return build


def build_transformer_encoder():
    return torch.nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=1024, batch_first=True)


# name -> (builder, input shapes, trace with grad enabled)
MODELS = {
    "resnet18": (torchvision_model("resnet18"), [IMAGE_SHAPE], False),
    "resnet50": (torchvision_model("resnet50"), [IMAGE_SHAPE], False),
    "mobilenet_v2": (torchvision_model("mobilenet_v2"), [IMAGE_SHAPE], False),
    "mobilenet_v3_small": (torchvision_model("mobilenet_v3_small"), [IMAGE_SHAPE], False),
    # Grad enabled with parameters requiring grad is what turns off 1.13's
    # eval-mode fast path, so the trace shows linear/softmax/layer_norm ops.
    "transformer_encoder": (build_transformer_encoder, [[1, 32, 256]], True),
}


# One model per classification architecture torchvision 0.14 builds: the
# smallest size of each family, since sizes of one family share their ops
# (bench/robustness.sh). inception_v3 is traced at its own 299x299;
# vit_b_16 with grad enabled, like transformer_encoder, to keep 1.13's fused
# attention fast path out of the trace.
ARCHITECTURES = {
    name: (torchvision_model(name), [shape], with_grad)
    for name, shape, with_grad in [
        ("alexnet", IMAGE_SHAPE, False),
        ("convnext_tiny", IMAGE_SHAPE, False),
        ("densenet121", IMAGE_SHAPE, False),
        ("efficientnet_b0", IMAGE_SHAPE, False),
        ("efficientnet_v2_s", IMAGE_SHAPE, False),
        ("googlenet", IMAGE_SHAPE, False),
        ("inception_v3", [1, 3, 299, 299], False),
        ("mnasnet0_5", IMAGE_SHAPE, False),
        ("mobilenet_v2", IMAGE_SHAPE, False),
        ("mobilenet_v3_small", IMAGE_SHAPE, False),
        ("mobilenet_v3_large", IMAGE_SHAPE, False),
        ("regnet_x_400mf", IMAGE_SHAPE, False),
        ("regnet_y_400mf", IMAGE_SHAPE, False),
        ("resnet18", IMAGE_SHAPE, False),
        ("resnet50", IMAGE_SHAPE, False),
        ("resnext50_32x4d", IMAGE_SHAPE, False),
        ("wide_resnet50_2", IMAGE_SHAPE, False),
        ("shufflenet_v2_x0_5", IMAGE_SHAPE, False),
        ("squeezenet1_1", IMAGE_SHAPE, False),
        ("swin_t", IMAGE_SHAPE, False),
        ("swin_v2_t", IMAGE_SHAPE, False),
        ("vgg11", IMAGE_SHAPE, False),
        ("vgg11_bn", IMAGE_SHAPE, False),
        ("vit_b_16", IMAGE_SHAPE, True),
    ]
}

SETS = {"tests": MODELS, "architectures": ARCHITECTURES}
CATALOGUE = {**MODELS, **ARCHITECTURES}


def atomic_write(path, write_fn):
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path))
    os.close(fd)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(name, outdir):
    builder, input_shapes, trace_with_grad = CATALOGUE[name]
    torch.manual_seed(0)
    model = builder()
    if name.startswith("vit_"):
        # torchvision zero-initialises the ViT head: every output would be
        # its bias (0), and quantization error could not be measured.
        torch.nn.init.normal_(model.heads.head.weight, std=0.02)
    reestimate_batchnorm(model, input_shapes[0])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(trace_with_grad)

    gen = torch.Generator().manual_seed(1)
    inputs = tuple(torch.randn(shape, generator=gen) for shape in input_shapes)
    with torch.set_grad_enabled(trace_with_grad):
        # trace's own check re-runs the model under no_grad, where the fast
        # path kicks in and the graphs differ; the reload check below covers it.
        traced = torch.jit.trace(model, inputs, check_trace=not trace_with_grad)
        expected = model(*inputs)
    for p in traced.parameters():
        p.requires_grad_(False)

    kinds = {n.kind() for n in traced.inlined_graph.nodes()}
    fused = sorted(kinds.intersection(FAST_PATH_OPS))
    if fused:
        raise RuntimeError(f"traced graph has fused fast-path ops {fused}")

    pt_path = os.path.join(outdir, name + ".pt")

    def write_pt(tmp):
        # Through a file object: given a path, torch.jit.save names the
        # archive's top folder after the (temporary) file name.
        with open(tmp, "wb") as f:
            torch.jit.save(traced, f)

    atomic_write(pt_path, write_pt)

    # Check what was written, not what is in memory.
    loaded = torch.jit.load(pt_path)
    with torch.no_grad():
        got = loaded(*inputs)
    if got.shape != expected.shape or not torch.allclose(got, expected.detach(), rtol=1e-4, atol=1e-5):
        raise RuntimeError(f"{pt_path}: reloaded model's output differs from the eager model's")

    meta = {
        "name": name,
        "input_shapes": input_shapes,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
    }

    def write_json(tmp):
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")

    # The .json goes last: its presence marks a complete export.
    atomic_write(os.path.join(outdir, name + ".json"), write_json)


def main():
    parser = argparse.ArgumentParser(description="Export torchvision models and a transformer layer to TorchScript.")
    parser.add_argument("outdir", help="directory for NAME.pt and NAME.json")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(CATALOGUE), help="export only these models")
    parser.add_argument("--set", choices=list(SETS), default="tests", help="which models to export (default: tests)")
    parser.add_argument("--force", action="store_true", help="re-export models whose files already exist")
    args = parser.parse_args()

    os.makedirs(args.outdir, exist_ok=True)
    failed = []
    for name in args.only or list(SETS[args.set]):
        pt = os.path.join(args.outdir, name + ".pt")
        js = os.path.join(args.outdir, name + ".json")
        if not args.force and os.path.exists(pt) and os.path.exists(js):
            print(f"{name}: exists, skipped", flush=True)
            continue
        start = time.monotonic()
        try:
            export(name, args.outdir)
        except Exception as e:  # report every model, then fail
            print(f"{name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(f"{name}: {pt} ({time.monotonic() - start:.1f} s)", flush=True)
    if failed:
        sys.exit(f"export_models.py: error: failed to export {', '.join(failed)}")


if __name__ == "__main__":
    main()
