// Observers of the prepare/calibrate stage: statistics of the calibration
// data an edge carries, and the qparams (scale, zero point) they give.
//
// MinMax, MovingAverageMinMax and MSE are PyTorch 1.13's observers
// (torch.ao.quantization.observer), ported op for op on the same ATen
// kernels, so they give identical qparams on the same data
// (tests/prepare/test_observers.cpp checks against PyTorch's output,
// tools/gen_observer_refs.py). In PyTorch terms an observer for a spec is
//
//   MinMax               MinMaxObserver / PerChannelMinMaxObserver(ch_axis=axis)
//   MovingAverageMinMax  MovingAverage[PerChannel]MinMaxObserver(averaging_constant=0.01)
//   MSE                  HistogramObserver(bins=2048, upsample_rate=128), per-tensor only
//
// with dtype quint8 (UInt8) or qint8 (Int8), qscheme per_{tensor,channel}_
// {affine,symmetric} from spec.scheme, quant_min/quant_max passed explicitly
// (as PT2E always does), reduce_range and eps = spec.eps.
//
// HistogramPercentile and HistogramEntropy have no PyTorch observer; their
// NumPy reference is in tools/gen_observer_refs.py. Both keep a
// "clip histogram": kClipHistogramBins bins of width w over [0, max|x|] for
// each sign. The first batch with max|x| > 0 sets w = max|x| / bins; a later
// batch with a larger max|x| doubles w (merging bin pairs, exact) until it
// fits, so the bin count stays fixed and merging never interpolates.
//   - Percentile: symmetric schemes clip |x| at its kHistogramPercentile
//     percentile; affine schemes clip x at its (100 - p) and p percentiles.
//     Counts are spread uniformly within a bin; the clip never exceeds the
//     observed min/max.
//   - Entropy: TensorRT's KL-divergence calibration as MXNet implements it
//     (also ONNX Runtime's): for every candidate i in [levels, 2048], P is
//     the first i bins of the |x| histogram with the outliers added to bin
//     i-1, Q is those i bins merged into `levels` groups and spread back
//     over P's non-zero bins; both smoothed (eps kEntropySmoothingEps);
//     the i minimising KL(P||Q) gives the threshold i * w (the top edge of
//     the last kept bin, as pytorch-quantization does). `levels` is
//     2^(bits-1) (128 for 8 bits), or 2^bits when the scheme is affine and
//     nothing negative was observed. Affine schemes use [-t, t] intersected
//     with the observed range.
// Histogram kinds are per-tensor only: make_observer rejects them per
// channel (PyTorch's HistogramObserver is per-tensor only too).
//
// MSE matches PyTorch 1.13 exactly (relative difference 0 on every reference
// case): PyTorch's Python and this code run the same libtorch kernels, so
// only a different CPU capability (AVX2 vs AVX-512 summation order) between
// the machine that made the references and the one running them could move
// a result by an ulp.
//
// Deliberate differences from PyTorch:
//   - qparams() before any data throws std::logic_error (PyTorch warns and
//     returns scale 1, zero point 0).
//   - observe() rejects NaN/Inf data with InputError (PyTorch produces NaN
//     or infinite scales).
//   - make_observer rejects eps <= 0 and symmetric uint8 with reduce_range
//     for every kind (PyTorch's MinMax observers refuse the latter; its
//     HistogramObserver accepts it).
//   - MSE: where PyTorch 1.13's histogram merge fails (the old histogram
//     overhanging the new grid after rounding: a shape error in PyTorch) the
//     overhang is dropped; and the merge never materialises the
//     bins * downsample_rate array PyTorch allocates (which can exhaust
//     memory when the range grows a lot): it sums the same values in the same
//     order, in double, over the occupied window only. A range growing more
//     than ~1e10x between batches is an InputError.
//   - Zero points are computed in int64 (PyTorch: int32), equal unless int32
//     would overflow.
// Not differences, but easy to get wrong:
//   - Symmetric uint8 zero point is (quant_min + quant_max) / 2 rounded down,
//     127 for [0, 255]: PyTorch's value for an explicit range. Its 128 is for
//     observers built without quant_min/quant_max, which PT2E never does.
//   - Statistics are float32 and eps is a float32 buffer in PyTorch: eps 1e-3
//     bounds the scale at 0.0010000000474974513.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <utility>
#include <vector>

#include "common/error.h"
#include "qsdk/spec.h"

namespace qsdk {

// Percentile at which HistogramPercentile clips (and 100 minus it, for the
// low end of affine specs): drops 1 value in 10000, beyond which activations
// are typically outliers.
constexpr double kHistogramPercentile = 99.99;
// Bins per sign of the HistogramPercentile / HistogramEntropy histogram
// (TensorRT's 2048).
constexpr int kClipHistogramBins = 2048;
// Smoothing of the KL distributions (MXNet's _smooth_distribution default).
constexpr double kEntropySmoothingEps = 1e-4;
// MovingAverageMinMax: min += c * (batch_min - min), PyTorch's default.
constexpr double kMovingAverageConstant = 0.01;
// MSE: PyTorch 1.13's HistogramObserver defaults.
constexpr int kMseHistogramBins = 2048;
constexpr int kMseUpsampleRate = 128;

struct QParams {  // per-tensor: one scale/zero_point; per-channel: one per channel
  std::vector<double> scale;
  std::vector<std::int64_t> zero_point;
  int axis = -1;  // channel axis, -1 per-tensor
  DType dtype = DType::UInt8;
  std::int64_t quant_min = 0, quant_max = 255;  // effective range (after reduce_range)
};

class Observer {
 public:
  virtual ~Observer() = default;
  // `x` is a float tensor (converted to float32, as PyTorch's observers do);
  // called once per batch; empty tensors are ignored.
  virtual void observe(const at::Tensor& x) = 0;
  // Throws std::logic_error if nothing was observed.
  virtual QParams qparams() const = 0;
  virtual bool has_data() const = 0;
  // The observed statistics (exact: float32 values and histogram counts as
  // JSON doubles), so convert can rerun without calibrating.
  virtual nlohmann::json save_state() const = 0;
  // Replaces the statistics with saved ones; throws InputError("stats", cause)
  // on bad data, leaving the observer unchanged.
  virtual void load_state(const nlohmann::json& state) = 0;
};

// Choices between PyTorch versions where their observers differ.
struct ObserverOptions {
  // PyTorch 1.13's HistogramObserver passes int(min), int(max) to histc: data
  // outside the truncated range is dropped from the histogram, and for
  // |x| < 1 histc falls back to the batch's own range, which is then read as
  // the observer's range. true (the default) matches 1.13 exactly; false
  // uses the float range, as PyTorch 2.0-2.4 do.
  bool mse_integer_histogram_range = true;
};

// Builds the observer a spec asks for (SpecKind::Observed or Dynamic):
// spec.observer x spec.granularity. For SpecKind::Fixed, an observer whose
// qparams are the spec's (has_data() is true, data is ignored). Throws
// InputError("observer", ...) for anything it cannot do: other kinds,
// histogram kinds per channel, a per-channel spec without an axis, a range
// that is empty or excludes 0, eps <= 0, symmetric uint8 with reduce_range.
std::unique_ptr<Observer> make_observer(const QuantSpec& spec, const ObserverOptions& options = {});

// The [quant_min, quant_max] qparams use: spec's range, halved (rounding
// down) with reduce_range, as PyTorch's calculate_qmin_qmax does for an
// explicit range.
std::pair<std::int64_t, std::int64_t> effective_quant_range(const QuantSpec& spec);

// The qparams computation PyTorch's observers share (_calculate_qparams),
// from a min and max per channel (one each per-tensor, with axis -1). The
// values are rounded to float32 first, as PyTorch keeps them. Throws
// std::invalid_argument if the sizes differ, are empty, or a min exceeds its max.
QParams qparams_from_range(const QuantSpec& spec, const std::vector<double>& min_vals,
                           const std::vector<double>& max_vals, int axis);

}  // namespace qsdk
