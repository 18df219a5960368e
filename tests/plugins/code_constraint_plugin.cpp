// A plugin with a code constraint that reads every fact of the host's match
// view, for the test that runs it across the C boundary
// (tests/plugins/test_plugin_loading.cpp).
#include <stdexcept>

#include "qsdk/sdk.h"

namespace {

// Holds only for the exact conv the test describes; throws for a node whose
// module path is "explode".
bool conv_as_described(const qsdk::MatchView& m) {
  const qsdk::NodeView& n = m.node(0);
  if (n.module_path() == "explode") throw std::runtime_error("calibration table missing for " + std::string(n.kind()));
  const auto shape = n.input_shape(0);
  return m.size() == 1 && n.kind() == "aten::conv2d" && n.module_path() == "conv" && n.num_inputs() == 7 && shape &&
         *shape == std::vector<std::int64_t>{1, 3, 224, 224, 1, 1, 1, 1, 1, 1, 1, 1} && n.int_arg(6) == 1 &&
         n.float_arg(6) == 1.0 && n.int_list_arg(3) == std::vector<std::int64_t>{2, 2} && !n.output_shape();
}

std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions&) {
  using namespace qsdk;
  auto b = std::make_unique<Backend>();
  b->name = "code-check";
  b->version = "0.0.1";
  Rule r("conv");
  r.match({"aten::conv2d"}).input(spec::uint8_affine()).weight(spec::int8_symmetric()).output(spec::uint8_affine());
  r.require("conv as described", conv_as_described);
  b->rules.push_back(r);
  return b;
}

}  // namespace

QSDK_PLUGIN(make_backend)
