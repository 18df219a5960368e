// Quantization specs: what one edge of the graph (an input, weight, bias or
// output of a matched pattern) gets. Plain data, like PyTorch's
// QuantizationSpec family, so the host can validate, print and compare them.
//
// No LibTorch here: a plugin that includes only qsdk headers compiles in
// about a second.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qsdk {

// Integer storage of a quantized value. Narrower widths (4-bit weights, say)
// use Int8/UInt8 storage with a narrower [quant_min, quant_max], as PT2E does.
enum class DType { UInt8, Int8, Int16, Int32 };

enum class Granularity { PerTensor, PerChannel };

// Symmetric: zero point fixed at 0 (int8) or at the midpoint (uint8).
enum class Scheme { Affine, Symmetric };

// How observed statistics become qparams (prepare/calibrate stage).
enum class ObserverKind {
  MinMax,               // running min and max of everything seen
  MovingAverageMinMax,  // exponential moving average of per-batch min/max
  HistogramPercentile,  // histogram, clip at a percentile
  HistogramEntropy,     // histogram, KL-minimising clip (TensorRT style)
  MSE                   // scale that minimises quantization MSE
};

// What kind of spec this is; decides which of QuantSpec's fields matter.
enum class SpecKind {
  Float,     // leave this edge in floating point
  Observed,  // qparams computed by an observer from calibration data
  Fixed,     // qparams given (sigmoid/softmax outputs): scale, zero_point
  Shared,    // same qparams as another edge of the match (shared_with)
  Derived,   // scale = product of the sources' scales, zero point 0 (bias)
  Dynamic    // activation qparams computed at run time (dynamic linear)
};

// One edge of a matched pattern. `node` indexes the pattern's op chain;
// `input` is the operand index of that op, or kOutput for its result. An
// operand that is a list (cat's tensors) means every element of the list.
struct EdgeRef {
  static constexpr int kOutput = -1;
  int node = 0;
  int input = 0;

  bool is_output() const { return input == kOutput; }
  friend bool operator==(const EdgeRef& a, const EdgeRef& b) { return a.node == b.node && a.input == b.input; }
  friend bool operator!=(const EdgeRef& a, const EdgeRef& b) { return !(a == b); }
};

// Operand `input` of pattern node `node`.
inline EdgeRef in(int node, int input) { return EdgeRef{node, input}; }
// Result of pattern node `node`.
inline EdgeRef out(int node) { return EdgeRef{node, EdgeRef::kOutput}; }

struct QuantSpec {
  SpecKind kind = SpecKind::Float;

  // Observed, Fixed, Derived, Dynamic: the quantized representation.
  DType dtype = DType::UInt8;
  std::int64_t quant_min = 0;
  std::int64_t quant_max = 255;
  Scheme scheme = Scheme::Affine;
  Granularity granularity = Granularity::PerTensor;
  int axis = -1;  // channel axis; required when granularity is PerChannel

  // Observed and Dynamic.
  ObserverKind observer = ObserverKind::MinMax;
  bool reduce_range = false;            // drop one bit of range (old x86 VNNI overflow workaround)
  double eps = 1.1920928955078125e-07;  // smallest scale allowed (float32 epsilon, as torch)

  // Fixed.
  double scale = 0.0;
  std::int64_t zero_point = 0;

  // Shared: the edge whose qparams this one reuses.
  EdgeRef shared_with{};

  // Derived: scale = product of these edges' scales (input x weight for a bias).
  std::vector<EdgeRef> derived_from;

  // --- fluent modifiers, for readable rule tables ---------------------------
  QuantSpec& with_observer(ObserverKind k) {
    observer = k;
    return *this;
  }
  QuantSpec& with_range(std::int64_t lo, std::int64_t hi) {
    quant_min = lo;
    quant_max = hi;
    return *this;
  }
  QuantSpec& with_reduce_range(bool on = true) {
    reduce_range = on;
    return *this;
  }
  QuantSpec& with_eps(double e) {
    eps = e;
    return *this;
  }
};

bool operator==(const QuantSpec& a, const QuantSpec& b);
inline bool operator!=(const QuantSpec& a, const QuantSpec& b) { return !(a == b); }

// Readable constructors for the common specs. `bits` narrows the range
// within the storage type (e.g. int8_symmetric(4) is [-8, 7] in int8).
namespace spec {

QuantSpec float_();
// Unsigned affine activations, [0, 2^bits - 1].
QuantSpec uint8_affine(int bits = 8);
// Signed affine, [-2^(bits-1), 2^(bits-1) - 1] (int16 storage above 8 bits).
QuantSpec int_affine(int bits = 8);
// Signed symmetric per-tensor (weights), restricted range [-(2^(bits-1) - 1), 2^(bits-1) - 1].
QuantSpec int8_symmetric(int bits = 8);
// Signed symmetric per-channel along `axis` (conv/linear weights: axis 0).
QuantSpec int8_symmetric_per_channel(int axis = 0, int bits = 8);
// Known output range, e.g. sigmoid: fixed(1.0 / 256, 0).
QuantSpec fixed(double scale, std::int64_t zero_point, DType dtype = DType::UInt8, std::int64_t quant_min = 0,
                std::int64_t quant_max = 255);
QuantSpec shared_with(EdgeRef edge);
// int32 bias with scale = input scale x weight scale; per-channel when the
// weight is (the host follows the weight's granularity).
QuantSpec derived_bias(EdgeRef input = in(0, 0), EdgeRef weight = in(0, 1));
// Run-time activation qparams (dynamic quantization of linear inputs).
QuantSpec dynamic_uint8();

}  // namespace spec

// The integer range a storage type holds: uint8 [0, 255], int8 [-128, 127], ...
std::pair<std::int64_t, std::int64_t> dtype_limits(DType dtype);

// Names used in YAML, reports and error messages.
const char* to_string(DType);
const char* to_string(Granularity);
const char* to_string(Scheme);
const char* to_string(ObserverKind);
const char* to_string(SpecKind);
std::string to_string(const EdgeRef&);  // "in(0,1)" / "out(2)"

// Inverse of to_string; return false when the name is unknown.
bool parse(const std::string& name, DType& out);
bool parse(const std::string& name, Granularity& out);
bool parse(const std::string& name, Scheme& out);
bool parse(const std::string& name, ObserverKind& out);
bool parse(const std::string& name, SpecKind& out);
bool parse(const std::string& text, EdgeRef& out);

}  // namespace qsdk
