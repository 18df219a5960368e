// Plugins that misbehave on purpose, for the fault-containment tests. Faults
// 1-5 load fine (factory and rules valid) and fail only when the host runs
// their code on a graph, in the conv rule's constraint; faults 6-8 fail while
// loading, in a library constructor that runs at dlopen (before the host can
// check anything); fault 9 declares more rules than a backend may have. One source, one fault per build, chosen by
// FAULT (see tests/CMakeLists.txt).
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "qsdk/sdk.h"

#define FAULT_SEGFAULT 1
#define FAULT_ABORT 2
#define FAULT_HANG 3
#define FAULT_EXHAUST_MEMORY 4
#define FAULT_THROW 5
#define FAULT_CONSTRUCTOR_ABORT 6
#define FAULT_CONSTRUCTOR_HANG 7
#define FAULT_CONSTRUCTOR_EXIT 8
#define FAULT_TOO_MANY_RULES 9

namespace {

#if FAULT >= FAULT_CONSTRUCTOR_ABORT && FAULT <= FAULT_CONSTRUCTOR_EXIT
__attribute__((constructor)) void misbehave_at_load() {
#if FAULT == FAULT_CONSTRUCTOR_ABORT
  std::abort();
#elif FAULT == FAULT_CONSTRUCTOR_HANG
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
#elif FAULT == FAULT_CONSTRUCTOR_EXIT
  std::exit(0);  // would end the host quietly, with success
#endif
}
#endif

bool misbehave(const qsdk::MatchView&) {
#if FAULT == FAULT_SEGFAULT
  std::raise(SIGSEGV);
#elif FAULT == FAULT_ABORT
  std::abort();
#elif FAULT == FAULT_HANG
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
#elif FAULT == FAULT_EXHAUST_MEMORY
  // Touch every page, so the memory is really used, until allocation fails.
  static std::vector<std::unique_ptr<char[]> > hoard;
  for (;;) {
    hoard.emplace_back(new char[64 << 20]);
    std::memset(hoard.back().get(), 1, 64 << 20);
  }
#elif FAULT == FAULT_THROW
  throw std::runtime_error("calibration table missing for this op");
#endif
  return true;
}

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions&) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = FAULT_NAME;
  b->version = "0.0.1";
  b->vendor = "qsdk tests";
  Rule r("conv");
  r.match({"aten::conv2d"}).input(spec::uint8_affine()).weight(spec::int8_symmetric()).output(spec::uint8_affine());
  r.require("misbehaves", misbehave);
  b->rules.push_back(r);
#if FAULT == FAULT_TOO_MANY_RULES
  for (int i = 1; i < 5000; ++i) {
    Rule copy = r;
    copy.name += std::to_string(i);
    b->rules.push_back(copy);
  }
#endif
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
