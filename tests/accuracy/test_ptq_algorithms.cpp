// The PTQ algorithms (algorithms/ptq_algorithms.h): each must change what
// it claims to change, keep the float model's function where it claims to,
// and improve the quantized model where the issue says it should.
#include <ATen/ATen.h>

#include "algorithms/ptq_algorithms.h"
#include "capture/capture.h"
#include "common/error.h"
#include "config/run_config.h"
#include "graph/bn_folding.h"
#include "graph/graph.h"
#include "pipeline/measurements_json.h"
#include "pipeline/pipeline.h"
#include "support/pipeline_fixture.h"
#include "support/torch_doctest.h"  // first: see the header

using namespace qsdk;

namespace {

RunConfig config_of(const std::string& yaml) { return parse_run_config(yaml, "alg.yaml", {}); }

PipelineResult run(const std::string& yaml) {
  const RunConfig c = config_of(yaml);
  const auto& b = c.backends.at(0);
  return run_pipeline(test::bundled_plugins(), c.pipeline_for(b),
                      instantiate_backends(test::bundled_plugins(), b.backends));
}

// MNIST at 3-bit weights: plain PTQ loses SQNR the algorithms can win back.
const std::string kLowBits =
    "model: zoo:mnist_cnn_trained\n"
    "backends:\n  per-channel: {weight_bits: 3, activation_bits: 8}\n"
    "calibration: {source: mnist, batches: 4, batch_size: 32}\n"
    "measure: {accuracy: false, latency: false, layers: false}\n";

std::vector<const AlgorithmDecision*> decisions_of(const Measurements& m, const std::string& algorithm) {
  std::vector<const AlgorithmDecision*> out;
  for (const auto& d : m.algorithm_decisions)
    if (d.algorithm == algorithm && d.target != "model output") out.push_back(&d);
  return out;
}

}  // namespace

TEST_CASE("cle equalizes each pair's channel ranges and leaves the float model's output unchanged") {
  auto captured = capture_model("zoo:mnist_cnn", CaptureOptions{});
  Graph& g = *captured.graph;
  fold_batch_norms(g);
  const auto before = g.clone();
  const auto decisions = equalize_cross_layer(g);
  REQUIRE(decisions.size() == 4);  // conv1->conv2, conv2->fc1 (through flatten), fc1->fc2, fc2->fc3
  CHECK(decisions[1].decision.find("flatten") != std::string::npos);
  // After equalization channel i of A has the range of B's input channel i.
  for (const char* pair : {"conv1", "fc1"}) {
    const torch::jit::Node* a = nullptr;
    for (auto* n : g.nodes())
      if (g.module_path(n) == pair) a = n;
    REQUIRE(a);
    const auto* b = a->output(0)->uses()[0].user;
    while (!is_weight_layer(b)) b = b->output(0)->uses()[0].user;
    const at::Tensor wa = layer_weight(a), wb = layer_weight(b);
    const at::Tensor ra = wa.abs().reshape({wa.size(0), -1}).amax(1);
    const at::Tensor rb = wb.abs().transpose(0, 1).reshape({wa.size(0), -1}).amax(1);
    CHECK(ra.sub(rb).abs().div(ra).max().item<double>() < 1e-2);
  }
  const auto& x = captured.example_inputs;
  const at::Tensor y0 = before->run(x).at(0), y1 = g.run(x).at(0);
  CHECK(y0.sub(y1).abs().max().item<double>() <= 1e-4 * y0.abs().max().item<double>());
}

TEST_CASE("smoothquant moves activation outliers of layer_norm-fed linears into their weights, same function") {
  auto captured = capture_model("zoo:tiny_lm", CaptureOptions{});
  Graph& g = *captured.graph;
  // An outlier channel, as trained transformers grow: ln1's channel 3 x 40.
  for (auto* n : g.nodes())
    if (n->kind() == c10::aten::layer_norm && g.module_path(n) == "blocks.0.ln1") {
      at::Tensor w = torch::jit::toIValue(n->input(2))->toTensor().clone();
      w[3] = w[3] * 40;
      set_constant_input(n, 2, w);
    }
  g.invalidate_compiled();
  const auto before = g.clone();
  const auto decisions = smooth_quant(g, {captured.example_inputs}, 0.5);
  int migrated = 0;
  for (const auto& d : decisions) {
    if (d.decision.rfind("migrated", 0) != 0) continue;
    ++migrated;
    CHECK(d.values.at("activation_outlier_ratio_after") < d.values.at("activation_outlier_ratio_before"));
    if (d.target.find("blocks.0.attn.qkv") != std::string::npos)
      CHECK(d.values.at("activation_outlier_ratio_before") > 10);
  }
  CHECK(migrated == 5);  // ln1 and ln2 of two blocks, ln_f
  const at::Tensor y0 = before->run(captured.example_inputs).at(0), y1 = g.run(captured.example_inputs).at(0);
  CHECK(y0.sub(y1).abs().max().item<double>() <= 1e-4 * y0.abs().max().item<double>());
}

TEST_CASE("adaround learns a rounding that beats nearest, on the weight grid prepare fixed") {
  const PipelineResult plain = run(kLowBits);
  const PipelineResult learned = run(kLowBits + "algorithms: [{adaround: {iterations: 300}}]\n");
  const auto ds = decisions_of(learned.measurements, "adaround");
  REQUIRE(ds.size() == 5);
  for (const auto* d : ds) {
    CHECK(d->values.at("output_error") < d->values.at("output_error_nearest"));
    CHECK(d->values.at("flipped_fraction") > 0);
  }
  // Same weight qparams as plain PTQ: the learned integers sit on its grid.
  REQUIRE(learned.measurements.qparams.size() == plain.measurements.qparams.size());
  for (std::size_t i = 0; i < plain.measurements.qparams.size(); ++i)
    if (plain.measurements.qparams[i].kind == "weight")
      CHECK(learned.measurements.qparams[i].scale == plain.measurements.qparams[i].scale);
  CHECK(learned.measurements.sqnr_db > plain.measurements.sqnr_db + 2);
  CHECK(learned.measurements.algorithms == std::vector<std::string>{"adaround"});
}

TEST_CASE("bias correction removes the mean output shift quantized weights cause") {
  const PipelineResult plain = run(kLowBits);
  const PipelineResult corrected = run(kLowBits + "algorithms: [bias_correction]\n");
  const auto ds = decisions_of(corrected.measurements, "bias_correction");
  REQUIRE(ds.size() == 5);
  for (const auto* d : ds) CHECK(d->values.at("mean_shift_after") < 1e-3 * d->values.at("mean_shift_before"));
  CHECK(corrected.measurements.sqnr_db > plain.measurements.sqnr_db + 0.5);
  // The manifest keeps every decision (to_json is what it is cut from) and reads back.
  CHECK(manifest_json(corrected.measurements).contains("algorithms"));
  const auto back = measurements_from_json(to_json(corrected.measurements), "manifest.json");
  CHECK(back.algorithms == corrected.measurements.algorithms);
  REQUIRE(back.algorithm_decisions.size() == corrected.measurements.algorithm_decisions.size());
  CHECK(back.algorithm_decisions[0].decision == corrected.measurements.algorithm_decisions[0].decision);
}

TEST_CASE("algorithms: lists with mistakes are errors at their place") {
  auto error_of = [](const std::string& yaml) {
    try {
      config_of(yaml);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string base = "model: zoo:mnist_cnn\nbackends: [per-channel]\n";
  CHECK(error_of(base + "algorithms: [adaroun]\n").find("alg.yaml:3") != std::string::npos);
  CHECK(error_of(base + "algorithms: [cle, cle]\n").find("twice") != std::string::npos);
  CHECK(error_of(base + "algorithms: [{smoothquant: {alpha: 2}}]\n").find("between 0 and 1") != std::string::npos);
  CHECK(error_of(base + "algorithms: [{adaround: {iteration: 5}}]\n").find("iterations") != std::string::npos);
  CHECK(error_of(base + "algorithms: cle\n").find("must be a list") != std::string::npos);
  CHECK(error_of(base + "mode: qat\nalgorithms: [cle]\n").find("QAT") != std::string::npos);
  CHECK(error_of(base + "algorithms: [cle, {adaround: {iterations: 10, samples: 64}}]\n").empty());
}
