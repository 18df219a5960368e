#!/usr/bin/python3
"""PyTorch's side of the calibration benchmark: FX graph mode quantization.

Prepares torchvision resnet18 with prepare_fx and times one calibration batch
against the float model's forward on the same batch, interleaved, for two
activation observers: PyTorch's onednn default (HistogramObserver, the
counterpart of qsdk x86-int8's MSE observer) and a moving-average min/max
qconfig (the counterpart of qsdk arm's). Prints one JSON object (seconds).
Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision).
"""
import argparse
import copy
import json
import statistics
import time

import torch
import torchvision
from torch.ao.quantization import QConfig, QConfigMapping, get_default_qconfig_mapping
from torch.ao.quantization.observer import MovingAverageMinMaxObserver, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import prepare_fx


def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    batch = torch.randn(args.batch_size, 3, 224, 224)
    mappings = {
        "histogram (onednn default)": get_default_qconfig_mapping("onednn"),
        "moving_average_minmax": QConfigMapping().set_global(
            QConfig(activation=MovingAverageMinMaxObserver.with_args(dtype=torch.quint8),
                    weight=default_per_channel_weight_observer)),
    }
    result = {"tool": "pytorch-fx", "model": args.model, "batch_size": args.batch_size, "repeat": args.repeat,
              "threads": torch.get_num_threads(), "torch_version": torch.__version__, "observers": {}}
    with torch.no_grad():
        for name, mapping in mappings.items():
            prepared = prepare_fx(copy.deepcopy(model), mapping, (batch,))
            model(batch)
            prepared(batch)  # warm-up
            float_times, prepared_times = [], []
            for _ in range(args.repeat):
                float_times.append(seconds(lambda: model(batch)))
                prepared_times.append(seconds(lambda: prepared(batch)))
            f, p = statistics.median(float_times), statistics.median(prepared_times)
            result["observers"][name] = {"float_batch_s": f, "prepared_batch_s": p, "ratio": p / f}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
