// Fake-quantize for QAT: PyTorch's FakeQuantize module (observer, then
// quantize-dequantize with the observer's current qparams), and the
// qsdk::fake_quant op through which a QAT training graph calls it.
//
// The rounding is LibTorch's fake_quantize_per_{tensor,channel}_affine, whose
// backward is the straight-through estimator: the incoming gradient where
// x / scale + zero_point rounds inside [quant_min, quant_max], 0 where it is
// clamped. qparams come from qsdk's observers (prepare/observers.h), the same
// code PTQ and convert use, so the grid trained on is the grid convert
// quantizes to.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "prepare/observers.h"

namespace c10 {
struct Symbol;
}

namespace qsdk {

// `x` on q's grid (per tensor, or per channel along q.axis), differentiable
// with the straight-through gradient.
at::Tensor fake_quantize(const at::Tensor& x, const QParams& q);

class FakeQuantize {
 public:
  enum class Mode {
    // Activations: a moving-average min/max observer of the spec's
    // dtype/range/scheme (PyTorch's QAT default, averaging constant
    // kMovingAverageConstant) sees every batch while enabled.
    Observed,
    // Fixed specs (sigmoid's 1/256): the spec's qparams, nothing observed.
    Fixed,
    // Weights: qparams of the tensor passed in, recomputed on every call
    // with the spec's observer, exactly as prepare computes them from the
    // final weight constant; so training sees the grid convert will use.
    Weight
  };

  // Throws InputError("observer", ...) for a spec no observer can serve.
  FakeQuantize(const QuantSpec& spec, Mode mode);

  // Observe (Observed mode, when enabled), then fake-quantize with the
  // current qparams.
  at::Tensor forward(const at::Tensor& x);

  // Observed mode: stop/restart updating the range (PyTorch's
  // disable_observer); qparams stay where they are.
  void enable_observer(bool on) { observer_enabled_ = on; }
  bool observer_enabled() const { return observer_enabled_; }

  Mode mode() const { return mode_; }
  bool has_qparams() const;
  // Throws std::logic_error before any data (Observed, Weight).
  QParams qparams() const;
  // The moving-average observer (Observed mode): its save_state() is what
  // a PreparedModel's activation slot loads.
  const Observer& observer() const { return *observer_; }

 private:
  QuantSpec spec_;
  Mode mode_;
  std::unique_ptr<Observer> observer_;  // Observed, Fixed
  bool observer_enabled_ = true;
  std::optional<QParams> last_;  // Weight: qparams of the last tensor
};

// The fake-quantizers a running QAT graph's qsdk::fake_quant(x, slot) nodes
// call, for the current thread.
class FakeQuantSink {
 public:
  virtual ~FakeQuantSink() = default;
  virtual at::Tensor fake_quant(std::int64_t slot, const at::Tensor& x) = 0;
};

class ScopedFakeQuantSink {
 public:
  explicit ScopedFakeQuantSink(FakeQuantSink& sink);
  ~ScopedFakeQuantSink();
  ScopedFakeQuantSink(const ScopedFakeQuantSink&) = delete;
  ScopedFakeQuantSink& operator=(const ScopedFakeQuantSink&) = delete;

 private:
  FakeQuantSink* previous_;
};

// "qsdk::fake_quant(Tensor x, int slot) -> Tensor": hands x to the sink's
// slot and returns what it returns. Registered without a dispatch key
// (CompositeImplicitAutograd), so autograd records the ATen ops the sink
// runs: gradients flow straight through. Throws std::logic_error when no
// sink is installed (a training graph is never run or exported on its own).
c10::Symbol fake_quant_symbol();

}  // namespace qsdk
