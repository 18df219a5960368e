#include "support/canonical_form.h"

namespace qsdk::test {

void check_canonical_form(const CapturedModel& m) {
  const Graph& g = *m.graph;
  CAPTURE(g.source());
  for (const auto* n : g.nodes()) {
    const std::string kind = n->kind().toQualString();
    CAPTURE(kind);
    CHECK(kind != "aten::_convolution");
    CHECK(kind != "aten::addmm");
    CHECK(kind != "aten::dropout");
    CHECK(kind != "aten::feature_dropout");
    CHECK(kind != "prim::If");
    CHECK(kind != "prim::Loop");
    CHECK(kind != "prim::CallMethod");
    CHECK(kind != "prim::CallFunction");
    if (n->kind().is_aten()) CHECK(kind.back() != '_');  // in-place variants (relu_, add_)
    for (const auto* v : n->outputs()) {
      if (auto t = v->type()->cast<c10::TensorType>()) {
        CHECK(t->sizes().concrete_sizes().has_value());
        CHECK(t->scalarType().has_value());
      }
    }
    // Ops that come from modules carry the module's path.
    if (kind == "aten::conv2d" || kind == "aten::linear" || kind == "aten::batch_norm" || kind == "aten::layer_norm")
      CHECK_FALSE(g.module_path(n).empty());
  }
  for (const auto* v : g.ir().inputs()) CHECK(concrete_shape(v).has_value());

  const auto expected = m.original(m.example_inputs);
  const auto actual = g.run(m.example_inputs);
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    REQUIRE(actual[i].sizes() == expected[i].sizes());
    const double scale = expected[i].abs().max().item<double>();
    const double diff = (actual[i] - expected[i]).abs().max().item<double>();
    CHECK(diff <= 1e-5 * scale + 1e-7);
  }
}

}  // namespace qsdk::test
