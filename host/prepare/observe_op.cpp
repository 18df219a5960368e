#include "prepare/observe_op.h"

#include <ATen/core/interned_strings.h>
#include <torch/library.h>

namespace qsdk {
namespace {

thread_local ObservationSink* current_sink = nullptr;

at::Tensor observe_impl(const at::Tensor& x, std::int64_t slot) {
  if (current_sink) current_sink->observe(slot, x);
  return x;
}

}  // namespace

// The alias annotation says the result is the input (no copy); the op is
// registered with conservative alias analysis so passes treat it as having
// side effects and never drop or reorder it.
TORCH_LIBRARY(qsdk, m) {
  m.def(torch::schema("qsdk::observe(Tensor(a) x, int slot) -> Tensor(a)", c10::AliasAnalysisKind::CONSERVATIVE),
        observe_impl);
}

ScopedObservationSink::ScopedObservationSink(ObservationSink& sink) : previous_(current_sink) { current_sink = &sink; }
ScopedObservationSink::~ScopedObservationSink() { current_sink = previous_; }

c10::Symbol observe_symbol() { return c10::Symbol::fromQualString("qsdk::observe"); }

}  // namespace qsdk
