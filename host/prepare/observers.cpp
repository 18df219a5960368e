#include "prepare/observers.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace qsdk {
namespace {

using json = nlohmann::json;

constexpr int kStateVersion = 1;

// Python's //, which PyTorch uses for reduce_range and the symmetric midpoint.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int storage_bits(DType dtype) {
  switch (dtype) {
    case DType::UInt8:
    case DType::Int8: return 8;
    case DType::Int16: return 16;
    case DType::Int32: return 32;
  }
  return 8;
}

// PyTorch's observers convert to float32 and keep every statistic in float32.
at::Tensor as_float(const at::Tensor& x) { return x.detach().to(at::kFloat); }

void require_finite(const at::Tensor& lo, const at::Tensor& hi) {
  // aminmax propagates NaN, so checking the extremes checks every element.
  if (!at::isfinite(lo).all().item<bool>() || !at::isfinite(hi).all().item<bool>())
    throw InputError(
        "observer",
        "NaN or Inf reached this observer: the calibration data overflows float32 in the model (check its scale)");
}

std::vector<double> to_doubles(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous().reshape({-1});
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

// --- saved state ------------------------------------------------------------
// Every state is {"observer": NAME, "version": 1, ...statistics}; without
// statistics (nothing observed) only those two keys.

json state_header(const std::string& name) { return json{{"observer", name}, {"version", kStateVersion}}; }

[[noreturn]] void bad_state(const std::string& name, const std::string& what) {
  throw InputError("stats", name + " observer state: " + what);
}

// Checks the header; returns whether statistics follow.
bool read_header(const json& j, const std::string& name, const char* first_key) {
  if (!j.is_object()) bad_state(name, "not a JSON object");
  auto kind = j.find("observer");
  if (kind == j.end() || !kind->is_string()) bad_state(name, "no \"observer\" name");
  if (kind->get<std::string>() != name)
    bad_state(name, "saved by a " + kind->get<std::string>() + " observer (the spec asks for " + name + ")");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<std::int64_t>() != kStateVersion)
    bad_state(name, "unsupported \"version\" (expected " + std::to_string(kStateVersion) + ")");
  return j.contains(first_key);
}

double read_number(const json& j, const std::string& name, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) bad_state(name, std::string("missing \"") + key + "\"");
  // NaN and Inf are saved as null, so a number is always finite here.
  if (!it->is_number()) bad_state(name, std::string("\"") + key + "\" is not a number");
  return it->get<double>();
}

std::vector<double> read_numbers(const json& j, const std::string& name, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) bad_state(name, std::string("missing \"") + key + "\"");
  if (!it->is_array()) bad_state(name, std::string("\"") + key + "\" is not an array");
  std::vector<double> out;
  out.reserve(it->size());
  for (const json& v : *it) {
    if (!v.is_number()) bad_state(name, std::string("\"") + key + "\" holds a non-number");
    out.push_back(v.get<double>());
  }
  return out;
}

std::vector<double> read_counts(const json& j, const std::string& name, const char* key, std::size_t size) {
  std::vector<double> counts = read_numbers(j, name, key);
  if (counts.size() != size)
    bad_state(name, std::string("\"") + key + "\" has " + std::to_string(counts.size()) + " bins, expected " +
                        std::to_string(size));
  for (double c : counts)
    if (c < 0) bad_state(name, std::string("\"") + key + "\" holds a negative count");
  return counts;
}

float read_float(const json& j, const std::string& name, const char* key) {
  const double v = read_number(j, name, key);
  if (std::fabs(v) > std::numeric_limits<float>::max()) bad_state(name, std::string("\"") + key + "\" overflows float");
  return static_cast<float>(v);
}

// --- Fixed --------------------------------------------------------------------

class FixedObserver final : public Observer {
 public:
  explicit FixedObserver(const QuantSpec& spec) : spec_(spec) {}
  void observe(const at::Tensor&) override {}
  QParams qparams() const override {
    return QParams{{spec_.scale}, {spec_.zero_point}, -1, spec_.dtype, spec_.quant_min, spec_.quant_max};
  }
  bool has_data() const override { return true; }
  json save_state() const override { return state_header("fixed"); }
  void load_state(const json& state) override { read_header(state, "fixed", "observer"); }

 private:
  QuantSpec spec_;
};

// --- MinMax and MovingAverageMinMax, per tensor and per channel ---------------

class MinMaxObserver final : public Observer {
 public:
  MinMaxObserver(const QuantSpec& spec, bool moving_average)
      : spec_(spec),
        moving_average_(moving_average),
        per_channel_(spec.granularity == Granularity::PerChannel),
        name_(to_string(spec.observer)) {}

  void observe(const at::Tensor& input) override {
    if (!input.defined() || input.numel() == 0) return;
    at::Tensor x = as_float(input);
    at::Tensor lo, hi;
    if (per_channel_) {
      if (spec_.axis >= x.dim())
        throw InputError("observer", "channel axis " + std::to_string(spec_.axis) + " is out of range for a " +
                                         std::to_string(x.dim()) + "-d tensor");
      // Reduce over every other dim (PyTorch permutes and copies first; min
      // and max do not depend on the order).
      if (spec_.axis == 0) {
        std::tie(lo, hi) = at::aminmax(x.reshape({x.size(0), -1}), 1);
      } else {
        std::vector<std::int64_t> dims;
        for (std::int64_t d = 0; d < x.dim(); ++d)
          if (d != spec_.axis) dims.push_back(d);
        lo = at::amin(x, dims);
        hi = at::amax(x, dims);
      }
      if (has_data() && lo.size(0) != min_.size(0))
        throw InputError("observer", "tensor has " + std::to_string(lo.size(0)) + " channels along axis " +
                                         std::to_string(spec_.axis) + ", earlier batches had " +
                                         std::to_string(min_.size(0)));
    } else {
      std::tie(lo, hi) = at::aminmax(x);
      lo = lo.reshape({1});
      hi = hi.reshape({1});
    }
    require_finite(lo, hi);
    if (!has_data()) {
      min_ = lo;
      max_ = hi;
    } else if (moving_average_) {
      // PyTorch: min_val + averaging_constant * (min_val_cur - min_val), in float32.
      min_ = min_ + (lo - min_) * kMovingAverageConstant;
      max_ = max_ + (hi - max_) * kMovingAverageConstant;
    } else {
      min_ = at::min(lo, min_);
      max_ = at::max(hi, max_);
    }
  }

  QParams qparams() const override {
    if (!has_data()) throw std::logic_error(name_ + " observer: qparams() before any data was observed");
    return qparams_from_range(spec_, to_doubles(min_), to_doubles(max_), per_channel_ ? spec_.axis : -1);
  }

  bool has_data() const override { return min_.defined(); }

  json save_state() const override {
    json j = state_header(name_);
    if (has_data()) {
      j["min"] = to_doubles(min_);
      j["max"] = to_doubles(max_);
    }
    return j;
  }

  void load_state(const json& state) override {
    if (!read_header(state, name_, "min")) {
      min_ = max_ = at::Tensor();
      return;
    }
    std::vector<double> lo = read_numbers(state, name_, "min"), hi = read_numbers(state, name_, "max");
    if (lo.size() != hi.size()) bad_state(name_, "\"min\" and \"max\" differ in length");
    if (lo.empty() || (!per_channel_ && lo.size() != 1))
      bad_state(name_, per_channel_ ? "no channels" : "a per-tensor state has exactly one min and max");
    std::vector<float> flo, fhi;
    for (std::size_t i = 0; i < lo.size(); ++i) {
      if (std::fabs(lo[i]) > std::numeric_limits<float>::max() || std::fabs(hi[i]) > std::numeric_limits<float>::max())
        bad_state(name_, "a value overflows float");
      flo.push_back(static_cast<float>(lo[i]));
      fhi.push_back(static_cast<float>(hi[i]));
      if (flo.back() > fhi.back()) bad_state(name_, "min exceeds max");
    }
    min_ = at::tensor(flo);
    max_ = at::tensor(fhi);
  }

 private:
  QuantSpec spec_;
  bool moving_average_;
  bool per_channel_;
  std::string name_;
  at::Tensor min_, max_;  // float32, [1] or [channels]; undefined until data
};

// --- MSE: PyTorch 1.13's HistogramObserver ------------------------------------
// A line-by-line port: the same ATen ops on the same dtypes in the same
// order, Python floats as double Scalars, so results are bit-identical.

class MseObserver final : public Observer {
 public:
  MseObserver(const QuantSpec& spec, const ObserverOptions& options)
      : spec_(spec),
        integer_range_(options.mse_integer_histogram_range),
        dst_nbins_(std::ldexp(1.0, storage_bits(spec.dtype))) {}

  void observe(const at::Tensor& input) override {
    if (!input.defined() || input.numel() == 0) return;
    at::Tensor x = as_float(input);
    at::Tensor lo, hi;
    std::tie(lo, hi) = at::aminmax(x);
    require_finite(lo, hi);
    // A constant history (min == max) is replaced, as in PyTorch.
    if (!has_data() || min_.item<float>() == max_.item<float>()) {
      min_ = lo;
      max_ = hi;
      histogram_ = histc(x, min_, max_);
      return;
    }
    at::Tensor combined_min = at::min(lo, min_);
    at::Tensor combined_max = at::max(hi, max_);

    // _adjust_min_max: a common grid of (max - min) / (bins * upsample_rate).
    at::Tensor hist_bin_width = (max_ - min_) / std::int64_t{kMseHistogramBins * kMseUpsampleRate};
    const double downsample =
        at::ceil((combined_max - combined_min) / (hist_bin_width * kMseHistogramBins)).item<double>();
    // PyTorch would try to allocate bins * downsample floats (and fail) long before this.
    if (!(downsample < 1e12))
      throw InputError("observer", "mse observer: the data range grew by more than 1e10x between batches");
    const auto downsample_rate = static_cast<std::int64_t>(downsample);
    at::Tensor e = (hist_bin_width * kMseHistogramBins) * downsample_rate - (combined_max - combined_min);
    combined_max = combined_max + e;  // relax only the max: one-sided data keeps min 0
    const auto start_idx = static_cast<std::int64_t>(at::round((min_ - combined_min) / hist_bin_width).item<double>());

    at::Tensor combined = histc(x, combined_min, combined_max);
    if (combined_min.item<float>() == min_.item<float>() && combined_max.item<float>() == max_.item<float>())
      combined += histogram_;
    else
      combined = combine_histograms(combined, downsample_rate, start_idx);
    histogram_ = combined;
    min_ = combined_min;
    max_ = combined_max;
  }

  QParams qparams() const override {
    if (!has_data()) throw std::logic_error("mse observer: qparams() before any data was observed");
    auto [new_min, new_max] = non_linear_param_search();
    return qparams_from_range(spec_, {new_min.item<double>()}, {new_max.item<double>()}, -1);
  }

  bool has_data() const override { return histogram_.defined(); }

  json save_state() const override {
    json j = state_header("mse");
    if (has_data()) {
      j["min"] = min_.item<double>();
      j["max"] = max_.item<double>();
      j["histogram"] = to_doubles(histogram_);
    }
    return j;
  }

  void load_state(const json& state) override {
    if (!read_header(state, "mse", "histogram")) {
      histogram_ = min_ = max_ = at::Tensor();
      return;
    }
    const float lo = read_float(state, "mse", "min"), hi = read_float(state, "mse", "max");
    if (lo > hi) bad_state("mse", "min exceeds max");
    std::vector<double> counts = read_counts(state, "mse", "histogram", kMseHistogramBins);
    histogram_ = at::tensor(counts).to(at::kFloat);
    min_ = at::scalar_tensor(lo, at::kFloat);
    max_ = at::scalar_tensor(hi, at::kFloat);
  }

 private:
  // PyTorch 1.13: histc(x, bins, min=int(min_val), max=int(max_val)).
  at::Tensor histc(const at::Tensor& x, const at::Tensor& lo, const at::Tensor& hi) const {
    if (integer_range_)
      return at::histc(x, kMseHistogramBins, static_cast<std::int64_t>(lo.item<float>()),
                       static_cast<std::int64_t>(hi.item<float>()));
    return at::histc(x, kMseHistogramBins, lo.item<double>(), hi.item<double>());
  }

  // _combine_histograms: upsample the old histogram by upsample_rate, place
  // it at start_idx in a bins * downsample_rate grid, integrate in double,
  // sample every downsample_rate-th point and add the differences. The
  // integral is zero before the upsampled window and constant after it, so
  // only the window is summed (same sequential double sums as PyTorch).
  at::Tensor combine_histograms(const at::Tensor& orig_hist, std::int64_t downsample_rate,
                                std::int64_t start_idx) const {
    const std::int64_t bins = kMseHistogramBins, up = kMseUpsampleRate;
    at::Tensor window = at::cumsum(histogram_.repeat_interleave(up), 0, at::kDouble).contiguous();
    const double* w = window.data_ptr<double>();
    // PyTorch raises when the window overhangs the grid; drop the overhang instead.
    const std::int64_t window_len = std::min(bins * up, bins * downsample_rate - start_idx);
    std::vector<double> integral(bins, 0.0);
    for (std::int64_t k = 0; k < bins; ++k) {
      const std::int64_t s = (k + 1) * downsample_rate - 1 - start_idx;
      if (s >= 0 && window_len > 0) integral[k] = w[std::min(s, window_len - 1)];
    }
    at::Tensor integral_histogram = at::tensor(integral);  // double
    at::Tensor shifted = at::zeros({bins}, at::kFloat);    // float32 in PyTorch too
    shifted.slice(0, 1, bins).copy_(integral_histogram.slice(0, 0, bins - 1));
    at::Tensor interpolated = (integral_histogram - shifted) / up;
    return orig_hist + interpolated.to(at::kFloat);
  }

  static at::Tensor get_norm(const at::Tensor& delta_begin, const at::Tensor& delta_end, const at::Tensor& density) {
    at::Tensor norm = (delta_end * delta_end * delta_end - delta_begin * delta_begin * delta_begin) / 3;
    return density * norm;
  }

  // _compute_quantization_error: L2 error of quantizing bins
  // [start_bin, end_bin] to dst_nbins levels, values uniform within a bin.
  double compute_quantization_error(std::int64_t next_start_bin, std::int64_t next_end_bin) const {
    const std::int64_t bins = kMseHistogramBins;
    const double bin_width = (max_.item<double>() - min_.item<double>()) / bins;
    const double dst_bin_width = bin_width * (next_end_bin - next_start_bin + 1) / dst_nbins_;
    if (dst_bin_width == 0.0) return 0.0;
    const double dst_max = dst_nbins_ - 1;

    at::Tensor src_bin = at::arange(bins);
    at::Tensor src_bin_begin = (src_bin - next_start_bin) * bin_width;
    at::Tensor src_bin_end = src_bin_begin + bin_width;
    at::Tensor dst_bin_of_begin = at::clamp(at::div(src_bin_begin, dst_bin_width, "floor"), 0, dst_max);
    at::Tensor dst_bin_of_begin_center = (dst_bin_of_begin + 0.5) * dst_bin_width;
    at::Tensor dst_bin_of_end = at::clamp(at::div(src_bin_end, dst_bin_width, "floor"), 0, dst_max);
    at::Tensor density = histogram_ / bin_width;

    at::Tensor norm = at::zeros({bins});
    at::Tensor delta_begin = src_bin_begin - dst_bin_of_begin_center;
    const double delta_end = dst_bin_width / 2;
    norm += get_norm(delta_begin, at::ones({bins}) * delta_end, density);
    norm += (dst_bin_of_end - dst_bin_of_begin - 1) *
            get_norm(at::scalar_tensor(-dst_bin_width / 2), at::scalar_tensor(dst_bin_width / 2), density);
    at::Tensor dst_bin_of_end_center = dst_bin_of_end * dst_bin_width + dst_bin_width / 2;
    norm += get_norm(at::scalar_tensor(-dst_bin_width / 2), src_bin_end - dst_bin_of_end_center, density);
    return norm.sum().item<double>();
  }

  // _non_linear_param_search: shrink [start_bin, end_bin] from whichever side
  // drops fewer values, while the L2 error decreases.
  std::pair<at::Tensor, at::Tensor> non_linear_param_search() const {
    const std::int64_t bins = kMseHistogramBins;
    at::Tensor bin_width = (max_ - min_) / bins;
    const double total = at::sum(histogram_).item<double>();
    at::Tensor csum_t = at::cumsum(histogram_, 0).contiguous();
    const float* csum = csum_t.data_ptr<float>();

    const double stepsize = 1e-5;
    double alpha = 0.0, beta = 1.0;
    std::int64_t start_bin = 0, end_bin = bins - 1;
    double norm_min = std::numeric_limits<double>::infinity();
    while (alpha < beta) {
      const double next_alpha = alpha + stepsize;
      const double next_beta = beta - stepsize;
      // A float32 element against a Python float compares in float32.
      const auto lower = static_cast<float>(next_alpha * total);
      const auto upper = static_cast<float>(next_beta * total);
      std::int64_t l = start_bin, r = end_bin;
      while (l < end_bin && csum[l] < lower) ++l;
      while (r > start_bin && csum[r] > upper) --r;

      std::int64_t next_start_bin = start_bin, next_end_bin = end_bin;
      if ((l - start_bin) > (end_bin - r)) {
        next_start_bin = l;
        alpha = next_alpha;
      } else {
        next_end_bin = r;
        beta = next_beta;
      }
      if (next_start_bin == start_bin && next_end_bin == end_bin) continue;

      const double norm = compute_quantization_error(next_start_bin, next_end_bin);
      if (norm > norm_min) break;
      norm_min = norm;
      start_bin = next_start_bin;
      end_bin = next_end_bin;
    }
    return {min_ + bin_width * start_bin, min_ + bin_width * (end_bin + 1)};
  }

  QuantSpec spec_;
  bool integer_range_;
  double dst_nbins_;      // 2 ** bits of the storage dtype, as PyTorch
  at::Tensor histogram_;  // float32 [bins]; undefined until data
  at::Tensor min_, max_;  // float32 scalars: the histogram's range
};

// --- HistogramPercentile and HistogramEntropy ---------------------------------
// The clip histogram described in observers.h; the NumPy reference is
// ClipHistogram in tools/gen_observer_refs.py, which this follows operation
// for operation (float32 binning, double statistics).

class ClipHistogramObserver final : public Observer {
 public:
  explicit ClipHistogramObserver(const QuantSpec& spec) : spec_(spec), name_(to_string(spec.observer)) {}

  void observe(const at::Tensor& input) override {
    if (!input.defined() || input.numel() == 0) return;
    at::Tensor x = as_float(input).reshape({-1});
    at::Tensor lo_t, hi_t;
    std::tie(lo_t, hi_t) = at::aminmax(x);
    require_finite(lo_t, hi_t);
    const float lo = lo_t.item<float>(), hi = hi_t.item<float>();
    min_ = has_ ? std::min(min_, lo) : lo;
    max_ = has_ ? std::max(max_, hi) : hi;
    has_ = true;
    const float amax = std::max(-lo, hi);
    if (width_ == 0) {
      if (amax == 0) {  // no scale yet to bin zeros with: count them
        pending_zeros_ += static_cast<double>(x.numel());
        return;
      }
      width_ = amax / static_cast<float>(kClipHistogramBins);
      histogram_ = at::zeros({2, kClipHistogramBins}, at::kDouble);
      histogram_[1][0] += pending_zeros_;
      pending_zeros_ = 0;
    }
    while (amax > static_cast<float>(kClipHistogramBins) * width_) {
      // Double the width: bin pairs merge exactly, the top half empties.
      at::Tensor merged = histogram_.view({2, kClipHistogramBins / 2, 2}).sum(2);
      histogram_ = at::cat({merged, at::zeros_like(merged)}, 1);
      width_ *= 2.0f;
    }
    // In place after the one allocation, int32 indices: allocating and
    // writing the big temporaries is most of the cost.
    at::Tensor bin = at::abs(x);
    bin.div_(width_).floor_().clamp_max_(kClipHistogramBins - 1);
    at::Tensor index = bin.to(at::kInt);
    index.add_(at::ge(x, 0), kClipHistogramBins);  // row 1: x >= 0
    histogram_ += at::bincount(index, {}, 2 * kClipHistogramBins).to(at::kDouble).view({2, kClipHistogramBins});
  }

  QParams qparams() const override {
    if (!has_) throw std::logic_error(name_ + " observer: qparams() before any data was observed");
    auto [lo, hi] = spec_.observer == ObserverKind::HistogramPercentile ? percentile_range() : entropy_range();
    return qparams_from_range(spec_, {lo}, {hi}, -1);
  }

  bool has_data() const override { return has_; }

  json save_state() const override {
    json j = state_header(name_);
    if (has_) {
      j["min"] = static_cast<double>(min_);
      j["max"] = static_cast<double>(max_);
      j["width"] = static_cast<double>(width_);
      j["pending_zeros"] = pending_zeros_;
      j["negative"] = row(0);
      j["positive"] = row(1);
    }
    return j;
  }

  void load_state(const json& state) override {
    if (!read_header(state, name_, "width")) {
      has_ = false;
      min_ = max_ = width_ = 0;
      pending_zeros_ = 0;
      histogram_ = at::Tensor();
      return;
    }
    const float lo = read_float(state, name_, "min"), hi = read_float(state, name_, "max");
    const float width = read_float(state, name_, "width");
    const double pending = read_number(state, name_, "pending_zeros");
    std::vector<double> negative = read_counts(state, name_, "negative", kClipHistogramBins);
    std::vector<double> positive = read_counts(state, name_, "positive", kClipHistogramBins);
    if (lo > hi) bad_state(name_, "min exceeds max");
    if (width < 0 || pending < 0) bad_state(name_, "negative width or pending_zeros");
    const bool empty = std::all_of(negative.begin(), negative.end(), [](double c) { return c == 0; }) &&
                       std::all_of(positive.begin(), positive.end(), [](double c) { return c == 0; });
    if (width == 0 && !(empty && lo == 0 && hi == 0)) bad_state(name_, "width 0 but non-zero data");
    if (width > 0 && std::max(-lo, hi) > static_cast<float>(kClipHistogramBins) * width)
      bad_state(name_, "min/max outside the histogram");
    if (width > 0 && pending != 0) bad_state(name_, "pending_zeros with a histogram");

    min_ = lo;
    max_ = hi;
    width_ = width;
    pending_zeros_ = pending;
    has_ = true;
    histogram_ = width > 0 ? at::stack({at::tensor(negative), at::tensor(positive)}) : at::Tensor();
  }

 private:
  std::vector<double> row(int r) const {
    if (!histogram_.defined()) return std::vector<double>(kClipHistogramBins, 0.0);
    return to_doubles(histogram_[r]);
  }

  // Histogram of |x|.
  std::vector<double> folded() const {
    std::vector<double> neg = row(0), pos = row(1);
    for (std::size_t i = 0; i < neg.size(); ++i) neg[i] += pos[i];
    return neg;
  }

  // Histogram of x over [-bins * w, bins * w].
  std::vector<double> signed_histogram() const {
    std::vector<double> neg = row(0), pos = row(1);
    std::reverse(neg.begin(), neg.end());
    neg.insert(neg.end(), pos.begin(), pos.end());
    return neg;
  }

  // The value below which a fraction q of the counts lies, counts spread
  // uniformly within their bin.
  static double quantile(const std::vector<double>& counts, double start, double width, double q) {
    double total = 0;
    for (double c : counts) total += c;
    const double t = q * total;
    double cum = 0, before = 0;
    std::size_t k = 0;
    for (; k < counts.size(); ++k) {
      before = cum;
      cum += counts[k];
      if (cum >= t) break;
    }
    k = std::min(k, counts.size() - 1);
    const double frac = (t - before) / counts[k];
    return start + (static_cast<double>(k) + frac) * width;
  }

  double observed_amax() const { return static_cast<double>(std::max(-min_, max_)); }

  std::pair<double, double> percentile_range() const {
    if (width_ == 0) return {min_, max_};  // only zeros seen
    const double w = width_;
    const double q_hi = kHistogramPercentile / 100.0;
    const double q_lo = (100.0 - kHistogramPercentile) / 100.0;
    if (spec_.scheme == Scheme::Symmetric) {
      const double amax = std::min(quantile(folded(), 0.0, w, q_hi), observed_amax());
      return {-amax, amax};
    }
    const std::vector<double> signed_counts = signed_histogram();
    const double start = -(kClipHistogramBins * w);
    const double lo = std::max(quantile(signed_counts, start, w, q_lo), static_cast<double>(min_));
    const double hi = std::min(quantile(signed_counts, start, w, q_hi), static_cast<double>(max_));
    return {std::min(lo, hi), hi};
  }

  // MXNet's _smooth_distribution: zeros get eps, taken evenly from the
  // non-zero entries. False when that leaves no valid distribution.
  static bool smooth(std::vector<double>& d) {
    std::size_t zeros = 0;
    for (double v : d) zeros += v == 0;
    const std::size_t nonzeros = d.size() - zeros;
    if (nonzeros == 0) return false;
    const double eps1 = kEntropySmoothingEps * static_cast<double>(zeros) / static_cast<double>(nonzeros);
    for (double& v : d) {
      v = v == 0 ? kEntropySmoothingEps : v - eps1;
      if (v <= 0) return false;
    }
    return true;
  }

  // KL(P || Q) for clipping the |x| histogram h after bin i - 1.
  static double kl_divergence(const std::vector<double>& h, std::size_t i, std::size_t levels, std::vector<double>& p,
                              std::vector<double>& q) {
    p.assign(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(i));
    double outliers = 0;
    for (std::size_t k = i; k < h.size(); ++k) outliers += h[k];
    p[i - 1] += outliers;
    const std::size_t merged = i / levels;
    q.assign(i, 0.0);
    for (std::size_t j = 0; j < levels; ++j) {
      const std::size_t start = j * merged, stop = j == levels - 1 ? i : start + merged;
      std::size_t nonzero = 0;
      double sum = 0;
      for (std::size_t k = start; k < stop; ++k) {
        nonzero += p[k] != 0;
        sum += h[k];
      }
      if (nonzero == 0) continue;
      const double v = sum / static_cast<double>(nonzero);
      for (std::size_t k = start; k < stop; ++k) q[k] = p[k] == 0 ? 0.0 : v;
    }
    if (!smooth(p) || !smooth(q)) return std::numeric_limits<double>::infinity();
    double p_sum = 0, q_sum = 0;
    for (std::size_t k = 0; k < i; ++k) {
      p_sum += p[k];
      q_sum += q[k];
    }
    double kl = 0;
    for (std::size_t k = 0; k < i; ++k) {
      const double pn = p[k] / p_sum, qn = q[k] / q_sum;
      kl += pn * std::log(pn / qn);
    }
    return kl;
  }

  // Quantization levels the clip range is split into: one side of a signed
  // range, or all of an unsigned one.
  std::int64_t entropy_levels() const {
    const auto [qmin, qmax] = effective_quant_range(spec_);
    int bits = 0;
    while (((qmax - qmin) >> bits) != 0) ++bits;
    const bool is_unsigned = spec_.scheme == Scheme::Affine && min_ >= 0;
    return std::int64_t{1} << (is_unsigned ? bits : bits - 1);
  }

  std::pair<double, double> entropy_range() const {
    if (width_ == 0) return {min_, max_};
    const std::vector<double> h = folded();
    const auto levels = static_cast<std::size_t>(std::max<std::int64_t>(entropy_levels(), 1));
    std::size_t best_i = kClipHistogramBins;
    double best = std::numeric_limits<double>::infinity();
    std::vector<double> p, q;
    for (std::size_t i = levels; i <= static_cast<std::size_t>(kClipHistogramBins); ++i) {
      const double kl = kl_divergence(h, i, levels, p, q);
      if (kl < best) {
        best = kl;
        best_i = i;
      }
    }
    const double t = std::min(static_cast<double>(best_i) * static_cast<double>(width_), observed_amax());
    if (spec_.scheme == Scheme::Symmetric) return {-t, t};
    const double lo = std::max(-t, static_cast<double>(min_)), hi = std::min(t, static_cast<double>(max_));
    return {std::min(lo, hi), hi};
  }

  QuantSpec spec_;
  std::string name_;
  bool has_ = false;
  float min_ = 0, max_ = 0;   // observed range
  float width_ = 0;           // bin width; 0 until a batch with max|x| > 0
  double pending_zeros_ = 0;  // zeros seen while width_ is 0
  at::Tensor histogram_;      // double [2, bins]: row 0 x < 0 by |x|, row 1 x >= 0
};

}  // namespace

std::pair<std::int64_t, std::int64_t> effective_quant_range(const QuantSpec& spec) {
  if (!spec.reduce_range) return {spec.quant_min, spec.quant_max};
  return {floor_div(spec.quant_min, 2), floor_div(spec.quant_max, 2)};
}

QParams qparams_from_range(const QuantSpec& spec, const std::vector<double>& min_vals,
                           const std::vector<double>& max_vals, int axis) {
  if (min_vals.empty() || min_vals.size() != max_vals.size())
    throw std::invalid_argument("qparams_from_range: need as many min values as max values, at least one");
  std::vector<float> lo(min_vals.begin(), min_vals.end()), hi(max_vals.begin(), max_vals.end());
  for (std::size_t i = 0; i < lo.size(); ++i)
    if (!(lo[i] <= hi[i]))
      throw std::invalid_argument("qparams_from_range: min " + std::to_string(lo[i]) + " exceeds max " +
                                  std::to_string(hi[i]));
  const auto [quant_min, quant_max] = effective_quant_range(spec);

  // PyTorch's _calculate_qparams, op for op, in float32.
  at::Tensor min_val = at::tensor(lo), max_val = at::tensor(hi);
  at::Tensor eps = at::full({1}, spec.eps, at::kFloat);
  at::Tensor min_val_neg = at::min(min_val, at::zeros_like(min_val));
  at::Tensor max_val_pos = at::max(max_val, at::zeros_like(max_val));
  at::Tensor scale, zero_point;
  if (spec.scheme == Scheme::Symmetric) {
    max_val_pos = at::max(-min_val_neg, max_val_pos);
    scale = max_val_pos / (static_cast<double>(quant_max - quant_min) / 2);
    scale = at::max(scale, eps);
    // uint8 with an explicit range: the midpoint rounded down.
    const std::int64_t zp = spec.dtype == DType::UInt8 ? floor_div(quant_min + quant_max, 2) : 0;
    zero_point = at::full(min_val.sizes(), zp, at::kLong);
  } else {
    scale = (max_val_pos - min_val_neg) / static_cast<double>(quant_max - quant_min);
    scale = at::max(scale, eps);
    zero_point = at::rsub(at::round(min_val_neg / scale).to(at::kLong), quant_min);
    zero_point = at::clamp(zero_point, quant_min, quant_max);
  }

  QParams out;
  out.scale = to_doubles(scale);
  zero_point = zero_point.contiguous();
  out.zero_point.assign(zero_point.data_ptr<std::int64_t>(), zero_point.data_ptr<std::int64_t>() + zero_point.numel());
  out.axis = axis;
  out.dtype = spec.dtype;
  out.quant_min = quant_min;
  out.quant_max = quant_max;
  return out;
}

std::unique_ptr<Observer> make_observer(const QuantSpec& spec, const ObserverOptions& options) {
  auto fail = [](const std::string& cause) -> InputError { return InputError("observer", cause); };
  const auto [dtype_min, dtype_max] = dtype_limits(spec.dtype);
  if (spec.quant_min >= spec.quant_max)
    throw fail("empty range [" + std::to_string(spec.quant_min) + ", " + std::to_string(spec.quant_max) + "]");
  if (spec.quant_min < dtype_min || spec.quant_max > dtype_max)
    throw fail(std::string("range [") + std::to_string(spec.quant_min) + ", " + std::to_string(spec.quant_max) +
               "] does not fit " + to_string(spec.dtype));

  if (spec.kind == SpecKind::Fixed) {
    if (!(spec.scale > 0) || !std::isfinite(spec.scale)) throw fail("fixed spec with a non-positive scale");
    if (spec.zero_point < spec.quant_min || spec.zero_point > spec.quant_max)
      throw fail("fixed spec with a zero point outside its range");
    return std::make_unique<FixedObserver>(spec);
  }
  if (spec.kind != SpecKind::Observed && spec.kind != SpecKind::Dynamic)
    throw fail(std::string("no observer for a ") + to_string(spec.kind) + " spec");

  // PyTorch asserts the same for an explicit range.
  if (spec.quant_min > 0 || spec.quant_max < 0)
    throw fail("range [" + std::to_string(spec.quant_min) + ", " + std::to_string(spec.quant_max) +
               "] does not include 0");
  if (!(spec.eps > 0) || !std::isfinite(spec.eps)) throw fail("eps must be positive");
  if (spec.reduce_range && spec.scheme == Scheme::Symmetric && spec.dtype == DType::UInt8)
    throw fail("reduce_range is not supported for symmetric uint8 (PyTorch refuses it too)");

  const bool per_channel = spec.granularity == Granularity::PerChannel;
  if (per_channel && spec.axis < 0) throw fail("per-channel spec without a channel axis");

  switch (spec.observer) {
    case ObserverKind::MinMax: return std::make_unique<MinMaxObserver>(spec, false);
    case ObserverKind::MovingAverageMinMax: return std::make_unique<MinMaxObserver>(spec, true);
    case ObserverKind::MSE:
    case ObserverKind::HistogramPercentile:
    case ObserverKind::HistogramEntropy:
      if (per_channel)
        throw fail(std::string(to_string(spec.observer)) +
                   " observers are per-tensor only; use minmax or moving_average_minmax per channel");
      if (spec.observer == ObserverKind::MSE) return std::make_unique<MseObserver>(spec, options);
      return std::make_unique<ClipHistogramObserver>(spec);
  }
  throw fail("unknown observer kind");
}

}  // namespace qsdk
