#include "qat/fake_quant.h"

#include <ATen/ATen.h>
#include <ATen/core/interned_strings.h>
#include <torch/library.h>

#include <stdexcept>

namespace qsdk {
namespace {

thread_local FakeQuantSink* current_sink = nullptr;

at::Tensor fake_quant_impl(const at::Tensor& x, std::int64_t slot) {
  if (!current_sink) throw std::logic_error("qsdk::fake_quant run outside QAT training (no fake-quantize sink)");
  return current_sink->fake_quant(slot, x);
}

QuantSpec observed_spec(const QuantSpec& spec, FakeQuantize::Mode mode) {
  QuantSpec s = spec;
  if (mode == FakeQuantize::Mode::Observed) s.observer = ObserverKind::MovingAverageMinMax;
  return s;
}

}  // namespace

// Conservative alias analysis: the op updates observer state, so passes
// must neither drop nor reorder it.
TORCH_LIBRARY_FRAGMENT(qsdk, m) {
  m.def(torch::schema("qsdk::fake_quant(Tensor x, int slot) -> Tensor", c10::AliasAnalysisKind::CONSERVATIVE),
        fake_quant_impl);
}

c10::Symbol fake_quant_symbol() { return c10::Symbol::fromQualString("qsdk::fake_quant"); }

ScopedFakeQuantSink::ScopedFakeQuantSink(FakeQuantSink& sink) : previous_(current_sink) { current_sink = &sink; }
ScopedFakeQuantSink::~ScopedFakeQuantSink() { current_sink = previous_; }

at::Tensor fake_quantize(const at::Tensor& x, const QParams& q) {
  if (q.axis < 0)
    return at::fake_quantize_per_tensor_affine(x, q.scale.at(0), q.zero_point.at(0), q.quant_min, q.quant_max);
  const at::Tensor scale = at::tensor(q.scale, at::kFloat);
  const at::Tensor zero_point = at::tensor(q.zero_point, at::kLong).to(at::kInt);
  return at::fake_quantize_per_channel_affine(x, scale, zero_point, q.axis, q.quant_min, q.quant_max);
}

FakeQuantize::FakeQuantize(const QuantSpec& spec, Mode mode) : spec_(observed_spec(spec, mode)), mode_(mode) {
  if (mode == Mode::Weight) {
    make_observer(spec_);  // reject a spec no observer serves now, not at the first step
  } else {
    observer_ = make_observer(spec_);
  }
}

bool FakeQuantize::has_qparams() const {
  if (mode_ == Mode::Weight) return last_.has_value();
  return observer_->has_data();
}

QParams FakeQuantize::qparams() const {
  if (mode_ == Mode::Weight) {
    if (!last_) throw std::logic_error("weight fake-quantize: qparams() before any weight was seen");
    return *last_;
  }
  return observer_->qparams();
}

at::Tensor FakeQuantize::forward(const at::Tensor& x) {
  switch (mode_) {
    case Mode::Observed:
      if (observer_enabled_) observer_->observe(x.detach());
      break;
    case Mode::Weight: {
      auto fresh = make_observer(spec_);
      fresh->observe(x.detach());
      last_ = fresh->qparams();
      break;
    }
    case Mode::Fixed: break;
  }
  return fake_quantize(x, qparams());
}

}  // namespace qsdk
