// Deliberately broken plugins for the loader's tests. One source, one flaw
// per build, chosen by BROKEN_CASE (see tests/CMakeLists.txt).
#include <cstdlib>
#include <stdexcept>

#include "qsdk/sdk.h"

#define CASE_NO_ENTRY 1
#define CASE_ABI_MISMATCH 2
#define CASE_THROWING_FACTORY 3
#define CASE_DUPLICATE_NAME 4
#define CASE_EMPTY_PATTERN 5
#define CASE_NO_AXIS 6
#define CASE_BAD_RANGE 7
#define CASE_UNKNOWN_OP 8
#define CASE_UNOBSERVABLE 9

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions&) {
#if BROKEN_CASE == CASE_ABI_MISMATCH
  // The host must refuse this library before calling its factory.
  std::abort();
#elif BROKEN_CASE == CASE_THROWING_FACTORY
  throw std::runtime_error("license server unreachable");
#endif
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = BROKEN_CASE == CASE_DUPLICATE_NAME ? "x86-int8" : "broken";
  b->version = "0.0.1";
  Rule r("conv");
  r.match({"aten::conv2d"}).input(spec::uint8_affine()).weight(spec::int8_symmetric()).output(spec::uint8_affine());
#if BROKEN_CASE == CASE_EMPTY_PATTERN
  r.pattern.clear();
#elif BROKEN_CASE == CASE_NO_AXIS
  r.annotations[1].spec = spec::int8_symmetric_per_channel(-1);
#elif BROKEN_CASE == CASE_BAD_RANGE
  r.annotations[0].spec.with_range(255, 0);
#elif BROKEN_CASE == CASE_UNKNOWN_OP
  r.pattern = {"aten::frobnicate"};
#elif BROKEN_CASE == CASE_UNOBSERVABLE
  // Per-channel weights from a histogram: no observer produces these qparams.
  r.annotations[1].spec = spec::int8_symmetric_per_channel(0).with_observer(ObserverKind::MSE);
#endif
  b->rules.push_back(r);
  return b;
}

}  // namespace

#if BROKEN_CASE == CASE_NO_ENTRY
// A perfectly good shared library that is not a qsdk plugin.
extern "C" __attribute__((visibility("default"))) int some_other_entry() { return make_backend({}) ? 1 : 0; }
#else
QSDK_PLUGIN(make_backend)
#endif
