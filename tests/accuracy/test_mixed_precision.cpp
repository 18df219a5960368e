// Accuracy-aware mixed precision (accuracy/mixed_precision.h) and the wider
// widths rules offer (qsdk/rule.h, RuleWidth).
#include <yaml-cpp/yaml.h>

#include "accuracy/mixed_precision.h"
#include "annotate/annotator.h"
#include "common/error.h"
#include "config/run_config.h"
#include "plugins/backend_yaml.h"
#include "support/pipeline_fixture.h"
#include "support/torch_doctest.h"  // first: see the header

using namespace qsdk;

namespace {

RunConfig config_of(const std::string& yaml) { return parse_run_config(yaml, "mp.yaml", {}); }

PipelineResult run_target(const RunConfig& c) {
  const auto& b = c.backends.at(0);
  return run_pipeline_for_target(test::bundled_plugins(), c.pipeline_for(b),
                                 instantiate_backends(test::bundled_plugins(), b.backends), nullptr);
}

constexpr const char* kLowWidth =
    "model: zoo:mnist_cnn_trained\n"
    "backends:\n  per-channel: {weight_bits: 4, activation_bits: 3}\n"
    "calibration: {source: mnist, batches: 8, batch_size: 32}\n"
    "measure: {accuracy: true, latency: false, layers: false}\n";

}  // namespace

TEST_CASE("per-channel at low width offers wider widths, and a width override applies them") {
  const auto backend =
      test::bundled_plugins().instantiate("per-channel", {{"weight_bits", "4"}, {"activation_bits", "3"}});
  const Rule* conv = nullptr;
  for (const auto& r : backend->rules)
    if (r.name == "conv2d_relu") conv = &r;
  REQUIRE(conv);
  std::vector<std::string> names;
  for (const auto& w : conv->widths) names.push_back(w.name);
  CHECK(names == std::vector<std::string>{"w8a3", "w4a8", "w8a8", "w8a16"});
  CHECK(backend_to_yaml(*backend).find("widths:") != std::string::npos);
  // At 8 bits there is nothing narrower to widen but 16-bit activations.
  const auto wide = test::bundled_plugins().instantiate("per-channel", {});
  for (const auto& r : wide->rules)
    for (const auto& w : r.widths) CHECK(w.name == "w8a16");

  auto captured = capture_model("zoo:mnist_cnn", CaptureOptions{});
  const auto overrides =
      parse_overrides(YAML::Load("[{module: conv1, width: w8a8}, {module: fc3, width: nope}]"), "o.yaml");
  const Annotation a = annotate(*captured.graph, *backend, AnnotateOptions{overrides});
  int widened = 0;
  for (const auto& m : a.matches) {
    if (m.width.empty()) continue;
    ++widened;
    CHECK(m.width == "w8a8");
    for (const auto& e : m.edges)
      if (e.spec.kind == SpecKind::Observed) CHECK(e.spec.quant_max - e.spec.quant_min >= 254);
  }
  CHECK(widened == 1);
  bool warned = false;
  for (const auto& w : a.warnings) warned = warned || w.find("offers no width 'nope'") != std::string::npos;
  CHECK(warned);
}

TEST_CASE("mixed precision meets a top-1 target the rules alone miss, and its overrides reproduce the result") {
  const RunConfig c = config_of(std::string(kLowWidth) + "accuracy: {metric: top1, max_drop: 0.5}\n");
  const PipelineResult r = run_target(c);
  REQUIRE(r.measurements.mixed_precision);
  const MixedPrecision& mp = *r.measurements.mixed_precision;
  CHECK(mp.start_value < mp.target);  // the rules alone miss it: the search has work to do
  CHECK(mp.met);
  CHECK(mp.final_value >= mp.target);
  CHECK(!mp.fallbacks.empty());
  CHECK(mp.fallbacks.size() < static_cast<std::size_t>(mp.units));
  REQUIRE(r.measurements.accuracy);
  CHECK(r.measurements.accuracy->quantized_top1 >= mp.target);

  // overrides.yaml as a config's overrides, without the search: same model.
  const YAML::Node doc = YAML::Load(r.overrides_yaml);
  RunConfig again = config_of(kLowWidth);
  again.pipeline.overrides = parse_overrides(doc["overrides"], "overrides.yaml");
  const PipelineResult replay = run_target(again);
  CHECK(!replay.measurements.mixed_precision);
  REQUIRE(replay.measurements.accuracy);
  CHECK(replay.measurements.accuracy->quantized_top1 == doctest::Approx(r.measurements.accuracy->quantized_top1));
  CHECK(replay.measurements.sqnr_db == doctest::Approx(r.measurements.sqnr_db));
}

TEST_CASE("mixed precision that cannot reach its target says why, within its budget") {
  const RunConfig c = config_of(std::string(kLowWidth) + "accuracy: {metric: sqnr, min_sqnr_db: 200, budget: 3}\n");
  const PipelineResult r = run_target(c);
  REQUIRE(r.measurements.mixed_precision);
  CHECK(!r.measurements.mixed_precision->met);
  CHECK(r.measurements.mixed_precision->runs <= 3);
  CHECK(r.measurements.mixed_precision->stopped.find("budget") != std::string::npos);
}

TEST_CASE("accuracy: sections with mistakes are errors at their place") {
  auto error_of = [](const std::string& yaml) {
    try {
      const RunConfig c = config_of(yaml);
      run_target(c);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string random =
      "model: zoo:mnist_cnn\nbackends: [per-channel]\ncalibration: {source: random, batches: 1, batch_size: 2}\n";
  CHECK(error_of(random + "accuracy: {metric: top5}\n").find("mp.yaml:4") != std::string::npos);
  CHECK(error_of(random + "accuracy: {max_drop: lots}\n").find("max_drop") != std::string::npos);
  CHECK(error_of(random + "accuracy: {fallback: [wider, wider]}\n").find("twice") != std::string::npos);
  CHECK(error_of(random + "accuracy: {metric: top1}\n").find("labelled held-out data") != std::string::npos);
  CHECK(error_of(random + "accuracy: {metric: sqnr, budgte: 3}\n").find("budget") != std::string::npos);
}
