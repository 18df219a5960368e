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
#define CASE_ABI1 10
#define CASE_MALFORMED_TABLES 11
#define CASE_NEWER_ENUM 12
#define CASE_MISNAMED_ARGUMENT 13
#define CASE_BAD_ARITHMETIC 14
#define CASE_ENGINE_WITHOUT_RUN 15
#define CASE_THROWING_ENGINE 16

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
#elif BROKEN_CASE == CASE_MISNAMED_ARGUMENT
  r.when(cond::arg("group").eq(1));
#elif BROKEN_CASE == CASE_THROWING_ENGINE
  // Loads fine; its engine fails when run, and the message must reach the host.
  b->engine = [](const EngineModel&, const std::vector<EngineTensor>&) -> EngineResult {
    throw std::runtime_error("NPU firmware timeout");
  };
#endif
  b->rules.push_back(r);
  return b;
}

}  // namespace

#if BROKEN_CASE == CASE_NO_ENTRY
// A perfectly good shared library that is not a qsdk plugin.
extern "C" __attribute__((visibility("default"))) int some_other_entry() { return make_backend({}) ? 1 : 0; }
#elif BROKEN_CASE == CASE_ABI1
// What a qsdk 0.1 (ABI 1) plugin exported: the version through a Boost.DLL
// alias, and a factory passing C++ objects, which must never be called.
#include <boost/dll/alias.hpp>
namespace abi1 {
std::uint32_t abi_version() { return 1; }
void create_backend() { std::abort(); }
}  // namespace abi1
BOOST_DLL_ALIAS(abi1::abi_version, qsdk_abi_version)
BOOST_DLL_ALIAS(abi1::create_backend, qsdk_create_backend)
#elif BROKEN_CASE == CASE_MALFORMED_TABLES || BROKEN_CASE == CASE_NEWER_ENUM || BROKEN_CASE == CASE_BAD_ARITHMETIC || \
    BROKEN_CASE == CASE_ENGINE_WITHOUT_RUN
// Tables written by hand, wrong in one field: the host reads them
// defensively and names the place.
namespace {
const qsdk_string kPattern[] = {QSDK_STR("aten::relu")};
qsdk_rule_decl make_rule() {
  qsdk_rule_decl r{};
  r.struct_size = BROKEN_CASE == CASE_MALFORMED_TABLES ? 0 : sizeof r;  // forgot sizeof (malformed_tables)
  r.name = QSDK_STR("relu");
  r.pattern = kPattern;
  r.pattern_count = 1;
  return r;
}
const qsdk_rule_decl kRule = make_rule();
qsdk_backend_decl make_decl() {
  qsdk_backend_decl d{};
  d.struct_size = sizeof d;
  d.name = QSDK_STR("broken");
  d.version = QSDK_STR("0.0.1");
  d.lowering = BROKEN_CASE == CASE_NEWER_ENUM ? 7 : QSDK_LOWERING_REFERENCE;  // a value from a later revision
  d.rules = &kRule;
  d.rule_count = 1;
#if BROKEN_CASE == CASE_BAD_ARITHMETIC
  static qsdk_arithmetic_decl arithmetic{};
  arithmetic.struct_size = sizeof arithmetic;
  arithmetic.accumulator_bits = 99;  // no such accumulator
  d.arithmetic = &arithmetic;
#elif BROKEN_CASE == CASE_ENGINE_WITHOUT_RUN
  d.has_engine = 1;  // claims an engine; the table below has no run_engine
#endif
  return d;
}
const qsdk_backend_decl kDecl = make_decl();
qsdk_status* create(const qsdk_option_value*, size_t, const qsdk_backend_decl** out) {
  *out = &kDecl;
  return nullptr;
}
void release(const qsdk_backend_decl*) {}
qsdk_string message(const qsdk_status*) { return QSDK_STR(""); }
void release_status(qsdk_status*) {}
const qsdk_plugin_api kApi{sizeof(qsdk_plugin_api), QSDK_ABI_VERSION, 9, create, release, message, release_status};
}  // namespace
extern "C" QSDK_EXPORT const qsdk_plugin_api* qsdk_plugin_entry(void) { return &kApi; }
#else
QSDK_PLUGIN(make_backend)
#endif
