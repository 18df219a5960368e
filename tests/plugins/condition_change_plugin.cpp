// One backend, built in two versions that differ only in a conv rule's
// condition (CONDITION_VERSION 1: groups == 1; 2: groups in {1, 2}), for the
// test that such a change shows in plugins diff, the rule hash and verify.
#include "qsdk/sdk.h"

namespace {

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions&) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "npu-conditions";
  b->version = "1.0." CONDITION_VERSION_TEXT;
  Rule conv("conv2d");
  conv.match({"aten::conv2d"})
      .input(spec::uint8_affine())
      .weight(spec::int8_symmetric_per_channel(0))
      .bias(spec::derived_bias())
      .output(spec::uint8_affine());
#if CONDITION_VERSION == 1
  conv.when(cond::arg("groups").eq(1));
#else
  conv.when(cond::arg("groups").in({1, 2}));
#endif
  b->rules.push_back(conv);
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
