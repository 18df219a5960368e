// The op a prepared graph calls to feed observers: qsdk::observe(Tensor x,
// int id) -> Tensor, an identity that hands `x` to observer slot `id` of the
// sink installed on this thread. Registered with LibTorch's operator
// registry, so prepared graphs run in LibTorch's interpreter, no Python.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace c10 {
struct Symbol;
}

namespace qsdk {

class ObservationSink {
 public:
  virtual ~ObservationSink() = default;
  virtual void observe(std::int64_t slot, const at::Tensor& x) = 0;
};

// Installs `sink` for the current thread while alive; observe calls outside
// any scope are ignored (a prepared graph run for its output only).
class ScopedObservationSink {
 public:
  explicit ScopedObservationSink(ObservationSink& sink);
  ~ScopedObservationSink();
  ScopedObservationSink(const ScopedObservationSink&) = delete;
  ScopedObservationSink& operator=(const ScopedObservationSink&) = delete;

 private:
  ObservationSink* previous_;
};

// "qsdk::observe"; referencing it also keeps the registration linked in.
c10::Symbol observe_symbol();

}  // namespace qsdk
