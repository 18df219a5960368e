#!/usr/bin/python3
"""Small TorchScript models for the PT2E-style unit specs in specs/unit/.

Usage: specs/models/make_models.py [OUTDIR]   (default: this directory)

Each model is a few layers, traced in eval mode with a fixed seed, so the
files are small and reproducible. They are committed next to this script;
re-run it only to change a model (then re-bless the specs that use it:
CONTRIBUTING.md, "Conformance specs"). Runs with Debian's python3-torch.
"""

import os
import sys

try:
    import torch
    import torch.nn as nn
except ImportError as e:
    sys.exit(f"make_models.py: error: {e}; run with /usr/bin/python3 (Debian's python3-torch)")


class Conv(nn.Module):
    """A single conv (with bias)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class ConvMaxPool(nn.Module):
    """conv -> max_pool2d: the pool shares the conv output's qparams."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(self.conv(x))


class ConvSigmoid(nn.Module):
    """conv -> sigmoid: fixed output qparams (1/256, 0) where a backend quantizes sigmoid."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return self.sigmoid(self.conv(x))


class ConvFloatConsumer(nn.Module):
    """conv -> softmax: no bundled backend quantizes softmax, so the conv's
    quantized output is dequantized for a float op."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x), dim=1)


class ConvBnRelu6(nn.Module):
    """conv -> batch_norm -> relu6 (MobileNetV2's block): post-training, the
    BatchNorm folds into the conv before annotation, so a rule for conv (+
    activation) covers it, as in PT2E. BN statistics are not the defaults,
    so a missing fold would show."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu6 = nn.ReLU6()
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        return self.relu6(self.bn(self.conv(x)))


class ConvChunkShuffle(nn.Module):
    """conv -> chunk(2) on channels -> one half permuted (H <-> W), the
    other's channels unbound, unsqueezed and concatenated in reverse -> cat
    -> conv: multi-output
    ops whose elements keep the conv output's qparams."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        a, b = torch.chunk(self.conv1(x), 2, dim=1)
        c0, c1, c2, c3 = torch.unbind(b, dim=1)
        b = torch.cat([c.unsqueeze(1) for c in (c3, c2, c1, c0)], dim=1)
        return self.conv2(torch.cat([a.permute(0, 1, 3, 2), b], dim=1))


class LayerScaleResidual(nn.Module):
    """ConvNeXt's residual with layer scale: x + gamma * conv(x), gamma 1e-6
    (its initial value). The scaled operand's scale is about 1e-6 of the
    sum's, below what QNNPACK's add accepts (2^-14)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.full((8, 1, 1), 1e-6))

    def forward(self, x):
        x = self.relu(self.conv1(x))
        return x + self.gamma * self.conv2(x)


class SigmoidOnly(nn.Module):
    """Only a sigmoid: backends without a sigmoid rule quantize nothing."""

    def forward(self, x):
        return torch.sigmoid(x)


class AddMul(nn.Module):
    """Two inputs: (a + b) * b, binary ops without modules."""

    def forward(self, a, b):
        return (a + b) * b


MODELS = {
    "conv2d": (Conv, [[1, 3, 16, 16]]),
    "conv_maxpool": (ConvMaxPool, [[1, 3, 16, 16]]),
    "conv_sigmoid": (ConvSigmoid, [[1, 3, 16, 16]]),
    "conv_softmax": (ConvFloatConsumer, [[1, 3, 16, 16]]),
    "conv_bn_relu6": (ConvBnRelu6, [[1, 3, 16, 16]]),
    "conv_chunk_shuffle": (ConvChunkShuffle, [[1, 3, 16, 16]]),
    "layer_scale_residual": (LayerScaleResidual, [[1, 3, 16, 16]]),
    "add_mul": (AddMul, [[1, 8, 8, 8], [1, 8, 8, 8]]),
    "sigmoid_only": (SigmoidOnly, [[1, 8, 8, 8]]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    for name, (cls, shapes) in MODELS.items():
        torch.manual_seed(0)
        model = cls().eval()
        inputs = tuple(torch.randn(s) for s in shapes)
        with torch.no_grad():
            traced = torch.jit.trace(model, inputs)
        path = os.path.join(out, name + ".pt")
        traced.save(path)
        print(f"{path}: inputs {shapes}")


if __name__ == "__main__":
    main()
