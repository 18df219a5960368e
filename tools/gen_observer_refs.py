#!/usr/bin/python3
"""Reference qparams for qsdk's observers (host/prepare/observers.h).

Writes tests/data/observer_refs.json: seeded input batches (flat float32
lists with shapes) and, for every case the tests run, the scale and zero
point that

  * PyTorch 1.13's observers compute (torch.ao.quantization.observer:
    MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver, HistogramObserver), or
  * the NumPy reference implementations below compute, for the two kinds
    PyTorch has no observer for (histogram_percentile, histogram_entropy).

Run with Debian's interpreter, which has torch 1.13 (the pyenv python3 on
PATH has no torch):

    tools/gen_observer_refs.py [OUTPUT]   # default: tests/data/observer_refs.json

The output is deterministic; regenerate it only when the cases change.
"""

import json
import math
import os
import re
import sys
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
)

SEED = 20240501

# Keep in step with host/prepare/observers.h.
PERCENTILE = 99.99          # kHistogramPercentile
CLIP_BINS = 2048            # kClipHistogramBins: bins over [0, max|x|] per sign
SMOOTHING_EPS = 1e-4        # kEntropySmoothingEps
AVERAGING_CONSTANT = 0.01   # kMovingAverageConstant
MSE_BINS = 2048             # HistogramObserver defaults in 1.13
MSE_UPSAMPLE_RATE = 128
FLOAT32_EPS = float(np.finfo(np.float32).eps)

# Spec variants, named as the tests name them. Ranges are always passed to
# PyTorch explicitly, as PT2E's QuantizationSpec does.
SPECS = {
    "u8_affine": dict(dtype="uint8", scheme="affine", quant_min=0, quant_max=255),
    "i8_affine": dict(dtype="int8", scheme="affine", quant_min=-128, quant_max=127),
    "i8_symmetric": dict(dtype="int8", scheme="symmetric", quant_min=-127, quant_max=127),
    "i8_symmetric_full": dict(dtype="int8", scheme="symmetric", quant_min=-128, quant_max=127),
    "u8_symmetric": dict(dtype="uint8", scheme="symmetric", quant_min=0, quant_max=255),
    "u8_affine_reduced": dict(dtype="uint8", scheme="affine", quant_min=0, quant_max=255, reduce_range=True),
    "i8_affine_reduced": dict(dtype="int8", scheme="affine", quant_min=-128, quant_max=127, reduce_range=True),
    "i8_symmetric_reduced": dict(dtype="int8", scheme="symmetric", quant_min=-127, quant_max=127,
                                 reduce_range=True),
    "i4_symmetric": dict(dtype="int8", scheme="symmetric", quant_min=-7, quant_max=7),
    "u4_affine": dict(dtype="uint8", scheme="affine", quant_min=0, quant_max=15),
    "i16_affine": dict(dtype="int16", scheme="affine", quant_min=-32768, quant_max=32767),
    "u8_affine_eps": dict(dtype="uint8", scheme="affine", quant_min=0, quant_max=255, eps=1e-3),
    "i8_symmetric_eps": dict(dtype="int8", scheme="symmetric", quant_min=-127, quant_max=127, eps=1e-3),
}

# PyTorch 1.13 has no 16-bit quantized dtype; qint32 only changes its range
# assertion, and every case here passes an explicit range.
TORCH_DTYPES = {"uint8": torch.quint8, "int8": torch.qint8, "int16": torch.qint32, "int32": torch.qint32}


def full_spec(name):
    spec = dict(reduce_range=False, eps=FLOAT32_EPS)
    spec.update(SPECS[name])
    return spec


def effective_range(spec):
    qmin, qmax = spec["quant_min"], spec["quant_max"]
    if spec["reduce_range"]:
        qmin, qmax = qmin // 2, qmax // 2  # PyTorch's calculate_qmin_qmax, explicit range
    return qmin, qmax


# --- inputs ------------------------------------------------------------------

def make_inputs():
    rng = np.random.default_rng(SEED)
    inputs = {}

    # Activations: normal with a drifting scale, plus a few outliers per batch.
    batches = []
    for b in range(3):
        x = rng.standard_normal((4, 8, 16, 16)) * (1.0 + 0.3 * b) + 0.2
        flat = x.reshape(-1)
        where = rng.choice(flat.size, 6, replace=False)
        flat[where] = rng.uniform(6.0, 9.0 + 2.0 * b, 6) * rng.choice([-1.0, 1.0], 6)
        batches.append(x.astype(np.float32))
    inputs["act"] = batches

    # Small activations, |x| < 1: PyTorch 1.13's HistogramObserver truncates
    # its histogram range to integers, which here is [0, 0].
    batches = []
    for b in range(3):
        x = rng.standard_normal((2, 8, 8, 8)) * (0.12 * (1.0 + 0.5 * b))
        x.reshape(-1)[rng.choice(x.size, 2, replace=False)] = [0.7 + 0.1 * b, -0.6 - 0.1 * b]
        batches.append(np.clip(x, -0.99, 0.99).astype(np.float32))
    inputs["act_small"] = batches

    # Post-ReLU: non-negative, many exact zeros, growing range.
    inputs["relu"] = [
        np.maximum(rng.standard_normal((2, 8, 8, 8)) * (0.8 + 0.4 * b) + 0.1, 0.0).astype(np.float32)
        for b in range(3)
    ]

    # Conv weight [out, in, kh, kw], channel scales spread over 16x; the second
    # "batch" (moving average) is a slightly drifted copy.
    w = rng.standard_normal((16, 8, 3, 3)) * (0.02 * np.arange(1, 17)).reshape(16, 1, 1, 1)
    w2 = w * 1.03 + rng.standard_normal(w.shape) * 0.001
    inputs["weight"] = [w.astype(np.float32), w2.astype(np.float32)]

    inputs["const"] = [np.full((2, 4, 4), 0.75, np.float32) for _ in range(2)]
    inputs["zeros"] = [np.zeros((2, 4, 4), np.float32) for _ in range(2)]
    # Range far below eps * (quant_max - quant_min): scale is the eps bound.
    inputs["tiny"] = [(rng.standard_normal(64) * 1e-5).astype(np.float32)]
    return inputs


# --- PyTorch observers -------------------------------------------------------

class ExactRangeHistogramObserver(HistogramObserver):
    """HistogramObserver.forward as in PyTorch 2.0-2.4: histc gets the float
    range. 1.13 passes int(min), int(max); everything else is 1.13's."""

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach()
        min_val = self.min_val
        max_val = self.max_val
        same_values = min_val.item() == max_val.item()
        is_uninitialized = min_val == float("inf") and max_val == float("-inf")
        if is_uninitialized or same_values:
            min_val, max_val = torch.aminmax(x)
            self.min_val.resize_(min_val.shape)
            self.min_val.copy_(min_val)
            self.max_val.resize_(max_val.shape)
            self.max_val.copy_(max_val)
            torch.histc(x, self.bins, min=min_val.item(), max=max_val.item(), out=self.histogram)
        else:
            new_min, new_max = torch.aminmax(x)
            combined_min = torch.min(new_min, min_val)
            combined_max = torch.max(new_max, max_val)
            combined_min, combined_max, downsample_rate, start_idx = self._adjust_min_max(
                combined_min, combined_max, self.upsample_rate)
            combined_histogram = torch.histc(x, self.bins, min=combined_min.item(), max=combined_max.item())
            if combined_min == min_val and combined_max == max_val:
                combined_histogram += self.histogram
            else:
                combined_histogram = self._combine_histograms(
                    combined_histogram, self.histogram, self.upsample_rate, downsample_rate, start_idx, self.bins)
            self.histogram.detach_().resize_(combined_histogram.shape)
            self.histogram.copy_(combined_histogram)
            self.min_val.detach_().resize_(combined_min.shape)
            self.min_val.copy_(combined_min)
            self.max_val.detach_().resize_(combined_max.shape)
            self.max_val.copy_(combined_max)
        return x_orig


def torch_observer(observer, spec, granularity, axis, exact_range=False):
    per_channel = granularity == "per_channel"
    symmetric = spec["scheme"] == "symmetric"
    if per_channel:
        qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    else:
        qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    common = dict(dtype=TORCH_DTYPES[spec["dtype"]], qscheme=qscheme, reduce_range=spec["reduce_range"],
                  quant_min=spec["quant_min"], quant_max=spec["quant_max"], eps=spec["eps"])
    if observer == "minmax":
        return PerChannelMinMaxObserver(ch_axis=axis, **common) if per_channel else MinMaxObserver(**common)
    if observer == "moving_average_minmax":
        if per_channel:
            return MovingAveragePerChannelMinMaxObserver(averaging_constant=AVERAGING_CONSTANT, ch_axis=axis,
                                                         **common)
        return MovingAverageMinMaxObserver(averaging_constant=AVERAGING_CONSTANT, **common)
    if observer == "mse":
        cls = ExactRangeHistogramObserver if exact_range else HistogramObserver
        return cls(bins=MSE_BINS, upsample_rate=MSE_UPSAMPLE_RATE, **common)
    raise ValueError(observer)


def calculate_qparams(spec, lo, hi):
    """PyTorch's _calculate_qparams on a float32 range (per-tensor)."""
    obs = torch_observer("minmax", spec, "per_tensor", -1)
    scale, zp = obs._calculate_qparams(torch.tensor(lo, dtype=torch.float32), torch.tensor(hi, dtype=torch.float32))
    return scale, zp, obs


# --- NumPy references: histogram_percentile, histogram_entropy ---------------

class ClipHistogram:
    """The statistics of qsdk's clipping observers.

    Two histograms of CLIP_BINS bins of width w over [0, CLIP_BINS * w]: one
    of |x| for x < 0, one of x for x >= 0. The first batch with a non-zero
    max|x| sets w = max|x| / CLIP_BINS; a batch with a larger max|x| doubles
    w (merging bin pairs, which is exact) until it fits. Zeros seen before
    that are counted and added to the first non-negative bin. Bin index:
    floor(|x| / w) in float32, the top edge going into the last bin.
    """

    def __init__(self):
        self.width = np.float32(0.0)
        self.hist = np.zeros((2, CLIP_BINS))  # row 0: x < 0, row 1: x >= 0
        self.pending_zeros = 0
        self.min = None
        self.max = None

    def observe(self, x):
        x = np.asarray(x, np.float32).reshape(-1)
        lo, hi = x.min(), x.max()
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        amax = max(-lo, hi)
        if self.width == 0:
            if amax == 0:
                self.pending_zeros += x.size
                return
            self.width = np.float32(amax / np.float32(CLIP_BINS))
            self.hist[1, 0] += self.pending_zeros
            self.pending_zeros = 0
        while amax > np.float32(CLIP_BINS) * self.width:
            merged = self.hist.reshape(2, CLIP_BINS // 2, 2).sum(axis=2)
            self.hist = np.concatenate([merged, np.zeros_like(merged)], axis=1)
            self.width = np.float32(self.width * np.float32(2.0))
        index = np.minimum(np.floor(np.abs(x) / self.width), CLIP_BINS - 1).astype(np.int64)
        row = (x >= 0).astype(np.int64)
        self.hist += np.bincount(row * CLIP_BINS + index, minlength=2 * CLIP_BINS).reshape(2, CLIP_BINS)

    def folded(self):
        """Histogram of |x|."""
        return self.hist[0] + self.hist[1]

    def signed(self):
        """Histogram of x over [-CLIP_BINS * w, CLIP_BINS * w], 2 * CLIP_BINS bins."""
        return np.concatenate([self.hist[0][::-1], self.hist[1]])


def quantile(counts, start, width, q):
    """Value below which a fraction q of the counts lies, counts spread
    uniformly within a bin."""
    total = counts.sum()
    t = q * total
    cum = np.cumsum(counts)
    k = int(np.searchsorted(cum, t, side="left"))  # first bin with cum >= t
    before = cum[k - 1] if k > 0 else 0.0
    frac = (t - before) / counts[k]
    return start + (k + frac) * width


def percentile_range(h, scheme):
    if h.width == 0:  # only zeros seen
        return float(h.min), float(h.max)
    w = float(h.width)
    q_hi = PERCENTILE / 100.0
    q_lo = (100.0 - PERCENTILE) / 100.0
    if scheme == "symmetric":
        amax = min(quantile(h.folded(), 0.0, w, q_hi), float(max(-h.min, h.max)))
        return -amax, amax
    start = -(CLIP_BINS * w)
    lo = max(quantile(h.signed(), start, w, q_lo), float(h.min))
    hi = min(quantile(h.signed(), start, w, q_hi), float(h.max))
    return min(lo, hi), hi


def smooth(d):
    """MXNet's _smooth_distribution: zeros get SMOOTHING_EPS, taken evenly
    from the non-zero entries. None when that is impossible."""
    zeros = d == 0
    n_zeros = int(zeros.sum())
    n_nonzeros = d.size - n_zeros
    if n_nonzeros == 0:
        return None
    eps1 = SMOOTHING_EPS * n_zeros / n_nonzeros
    out = np.where(zeros, SMOOTHING_EPS, d - eps1)
    if (out <= 0).any():
        return None
    return out


def kl_divergence(h, i, n_q):
    """KL(P || Q) for clipping the |x| histogram h at bin i (TensorRT's
    calibration, as MXNet implements it)."""
    p = h[:i].copy()
    p[i - 1] += h[i:].sum()  # outliers go into the last kept bin
    merged = i // n_q
    q = np.zeros(i)
    for j in range(n_q):  # quantize h[:i] into n_q levels, spread over p's non-zero bins
        start = j * merged
        stop = i if j == n_q - 1 else start + merged
        nonzero = np.count_nonzero(p[start:stop])
        if nonzero:
            q[start:stop] = h[start:stop].sum() / nonzero
    q[p == 0] = 0
    p, q = smooth(p), smooth(q)
    if p is None or q is None:
        return math.inf
    p = p / p.sum()
    q = q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def entropy_levels(spec, observed_min):
    qmin, qmax = effective_range(spec)
    bits = (qmax - qmin).bit_length()  # ceil(log2(levels))
    unsigned = spec["scheme"] == "affine" and observed_min >= 0
    return 2**bits if unsigned else 2 ** (bits - 1)


def entropy_range(h, spec):
    if h.width == 0:
        return float(h.min), float(h.max)
    n_q = entropy_levels(spec, h.min)
    folded = h.folded()
    best_i, best = CLIP_BINS, math.inf
    for i in range(n_q, CLIP_BINS + 1):
        kl = kl_divergence(folded, i, n_q)
        if kl < best:
            best_i, best = i, kl
    t = min(best_i * float(h.width), float(max(-h.min, h.max)))
    if spec["scheme"] == "symmetric":
        return -t, t
    lo = max(-t, float(h.min))
    hi = min(t, float(h.max))
    return min(lo, hi), hi


# --- cases -------------------------------------------------------------------

CASES = [
    # observer, input, spec, granularity, axis
    *[("minmax", "act", s, "per_tensor", -1) for s in (
        "u8_affine", "i8_affine", "i8_symmetric", "i8_symmetric_full", "u8_symmetric", "u8_affine_reduced",
        "i8_affine_reduced", "i8_symmetric_reduced", "i4_symmetric", "u4_affine", "i16_affine")],
    ("minmax", "relu", "u8_affine", "per_tensor", -1),
    ("minmax", "relu", "i8_symmetric", "per_tensor", -1),
    ("minmax", "const", "u8_affine", "per_tensor", -1),
    ("minmax", "const", "i8_symmetric", "per_tensor", -1),
    ("minmax", "zeros", "u8_affine", "per_tensor", -1),
    ("minmax", "zeros", "i8_affine", "per_tensor", -1),
    ("minmax", "zeros", "i8_symmetric", "per_tensor", -1),
    ("minmax", "tiny", "u8_affine", "per_tensor", -1),
    ("minmax", "tiny", "u8_affine_eps", "per_tensor", -1),
    ("minmax", "tiny", "i8_symmetric_eps", "per_tensor", -1),
    ("moving_average_minmax", "act", "u8_affine", "per_tensor", -1),
    ("moving_average_minmax", "act", "i8_symmetric", "per_tensor", -1),
    ("moving_average_minmax", "act", "u8_affine_reduced", "per_tensor", -1),
    ("moving_average_minmax", "relu", "u8_affine", "per_tensor", -1),
    ("moving_average_minmax", "const", "u8_affine", "per_tensor", -1),
    *[("minmax", "weight", s, "per_channel", 0) for s in (
        "i8_symmetric", "i8_symmetric_full", "i8_affine", "u8_affine", "i8_symmetric_reduced", "i4_symmetric")],
    ("minmax", "weight", "i8_symmetric", "per_channel", 1),
    ("minmax", "act", "u8_affine", "per_channel", 1),
    ("moving_average_minmax", "weight", "i8_symmetric", "per_channel", 0),
    ("moving_average_minmax", "weight", "u8_affine", "per_channel", 0),
    ("moving_average_minmax", "weight", "i8_symmetric", "per_channel", 3),
    *[("mse", i, s, "per_tensor", -1) for i, s in (
        ("act", "u8_affine"), ("act", "i8_affine"), ("act", "i8_symmetric"), ("act", "u8_affine_reduced"),
        ("act_small", "u8_affine"), ("act_small", "i8_symmetric"), ("relu", "u8_affine"), ("relu", "i8_symmetric"),
        ("const", "u8_affine"), ("zeros", "u8_affine"))],
    *[("mse_exact_range", i, s, "per_tensor", -1) for i, s in (
        ("act", "u8_affine"), ("act", "i8_symmetric"), ("act_small", "u8_affine"), ("act_small", "i8_symmetric"),
        ("relu", "u8_affine"))],
    *[("histogram_percentile", i, s, "per_tensor", -1) for i, s in (
        ("act", "u8_affine"), ("act", "i8_affine"), ("act", "i8_symmetric"), ("act", "i4_symmetric"),
        ("act_small", "u8_affine"), ("relu", "u8_affine"), ("relu", "i8_symmetric"), ("const", "u8_affine"),
        ("const", "i8_symmetric"), ("zeros", "u8_affine"))],
    *[("histogram_entropy", i, s, "per_tensor", -1) for i, s in (
        ("act", "u8_affine"), ("act", "i8_affine"), ("act", "i8_symmetric"), ("act", "i4_symmetric"),
        ("act_small", "i8_symmetric"), ("relu", "u8_affine"), ("relu", "i8_symmetric"), ("relu", "u4_affine"),
        ("const", "u8_affine"), ("const", "i8_symmetric"), ("zeros", "u8_affine"))],
]


def run_case(observer, input_name, spec_name, granularity, axis, inputs):
    spec = full_spec(spec_name)
    batches = inputs[input_name]
    case = {
        "name": f"{observer}/{input_name}/{spec_name}" + (f"/axis{axis}" if granularity == "per_channel" else ""),
        "input": input_name,
        "observer": "mse" if observer == "mse_exact_range" else observer,
        "options": {"mse_integer_histogram_range": observer != "mse_exact_range"},
        "granularity": granularity,
        "axis": axis,
        **spec,
    }
    if observer in ("histogram_percentile", "histogram_entropy"):
        h = ClipHistogram()
        for x in batches:
            h.observe(x)
        lo, hi = percentile_range(h, spec["scheme"]) if observer == "histogram_percentile" else entropy_range(h, spec)
        scale, zp, obs = calculate_qparams(spec, lo, hi)
        case["reference"] = "numpy (tools/gen_observer_refs.py)"
        case["clip_range"] = [lo, hi]
    else:
        obs = torch_observer(case["observer"], spec, granularity, axis, exact_range=observer == "mse_exact_range")
        for x in batches:
            obs(torch.from_numpy(x.copy()))
        scale, zp = obs.calculate_qparams()
        case["reference"] = "torch.ao.quantization.observer." + type(obs).__name__.replace(
            "ExactRangeHistogramObserver", "HistogramObserver (2.x histc range)") + " " + torch.__version__
    case["expected"] = {
        "scale": [float(s) for s in scale.reshape(-1).tolist()],
        "zero_point": [int(z) for z in zp.reshape(-1).tolist()],
        "quant_min": int(obs.quant_min),
        "quant_max": int(obs.quant_max),
    }
    return case


# --- output ------------------------------------------------------------------

NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def float32_list(a):
    """Shortest text that reads back (via a double) as the same float32."""
    out = []
    for v in a.reshape(-1):
        s = str(v)
        assert NUMBER.fullmatch(s) and np.float32(float(s)) == v, s
        out.append(s)
    return "[" + ",".join(out) + "]"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(here, "..", "tests", "data", "observer_refs.json"))
    warnings.filterwarnings("ignore")  # reduce_range deprecation
    torch.set_num_threads(1)
    inputs = make_inputs()
    cases = [run_case(*c, inputs) for c in CASES]

    parts = ["{\n", '"generator": "tools/gen_observer_refs.py",\n',
             f'"torch_version": {json.dumps(torch.__version__)},\n',
             f'"constants": {json.dumps(dict(percentile=PERCENTILE, clip_bins=CLIP_BINS, smoothing_eps=SMOOTHING_EPS, averaging_constant=AVERAGING_CONSTANT, mse_bins=MSE_BINS, mse_upsample_rate=MSE_UPSAMPLE_RATE))},\n',
             '"inputs": {\n']
    for n, (name, batches) in enumerate(inputs.items()):
        parts.append(f'  {json.dumps(name)}: {{"shape": {json.dumps(list(batches[0].shape))}, "batches": [\n')
        parts.append(",\n".join("    " + float32_list(b) for b in batches))
        parts.append("\n  ]}" + ("," if n + 1 < len(inputs) else "") + "\n")
    parts.append("},\n")
    parts.append('"cases": [\n' + ",\n".join("  " + json.dumps(c) for c in cases) + "\n]\n}\n")
    text = "".join(parts)
    json.loads(text)  # well-formed
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"{path}: {len(cases)} cases, {len(text) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
