// Prepare: observer slots from annotations, observe nodes in a runnable
// graph, calibration, saved statistics.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "annotate/annotator.h"
#include "capture/capture.h"
#include "common/error.h"
#include "data/data_source.h"
#include "graph/bn_folding.h"
#include "plugins/plugin_registry.h"
#include "prepare/observe_op.h"
#include "prepare/prepare.h"
#include "support/process.h"
#include "support/torch_doctest.h"

using namespace qsdk;
using torch::jit::Node;

namespace {

const Backend& backend(const std::string& name) {
  static PluginRegistry registry = [] {
    PluginRegistry r;
    r.load_directory(QSDK_TEST_BUNDLED_PLUGIN_DIR);
    return r;
  }();
  return *registry.find(name)->backend;
}

const Node* nth(const Graph& g, const std::string& kind, int n = 0) {
  for (const Node* node : g.nodes())
    if (node->kind().toQualString() == kind && n-- == 0) return node;
  FAIL("no " << kind << " node");
  return nullptr;
}

int count_observe_nodes(const Graph& g) {
  int n = 0;
  for (const Node* node : g.ir().nodes()) n += node->kind() == observe_symbol();
  return n;
}

EdgeKey input(const Node* n, int operand, int element = -1) { return EdgeKey{n, operand, element}; }
EdgeKey output(const Node* n) { return EdgeKey{n, EdgeKey::kOutput, -1}; }

struct Prepared {
  CapturedModel captured;
  Annotation annotation;
  std::unique_ptr<PreparedModel> model;
};

Prepared prepare_zoo(const std::string& name, const std::string& backend_name, std::vector<Override> overrides = {}) {
  Prepared p;
  p.captured = capture_model("zoo:" + name);
  p.annotation = annotate(*p.captured.graph, backend(backend_name), {overrides});
  p.model = std::make_unique<PreparedModel>(*p.captured.graph, p.annotation);
  return p;
}

}  // namespace

TEST_CASE("a cat and the convs feeding it are observed by one observer") {
  auto p = prepare_zoo("conv_cat", "x86-int8");
  const Graph& g = *p.captured.graph;
  const Node* cat = nth(g, "aten::cat");
  const int slot = p.model->slot_of(input(cat, 0, 0));
  REQUIRE(slot >= 0);
  CHECK(p.model->slot_of(input(cat, 0, 1)) == slot);
  CHECK(p.model->slot_of(output(cat)) == slot);
  CHECK(p.model->slot_of(output(nth(g, "aten::conv2d", 0))) == slot);
  CHECK(p.model->slot_of(output(nth(g, "aten::conv2d", 1))) == slot);
  // That slot observes three values (two conv outputs, the cat output): three nodes, one observer.
  int nodes_for_slot = 0;
  for (const Node* n : g.ir().nodes())
    if (n->kind() == observe_symbol() && torch::jit::toIValue(n->input(1))->toInt() == slot) ++nodes_for_slot;
  CHECK(nodes_for_slot == 3);
  CHECK(p.model->slots()[static_cast<std::size_t>(slot)].kind == SlotKind::Activation);
}

TEST_CASE("a residual block's input feeds the conv and the add: one observer for both") {
  auto p = prepare_zoo("residual_add", "x86-int8");
  const Graph& g = *p.captured.graph;
  const Node* conv1 = nth(g, "aten::conv2d", 0);
  const Node* add = nth(g, "aten::add");
  const int residual_operand = add->input(0) == g.ir().inputs()[0] ? 0 : 1;
  REQUIRE(add->input(static_cast<std::size_t>(residual_operand)) == conv1->input(0));
  CHECK(p.model->slot_of(input(conv1, 0)) >= 0);
  CHECK(p.model->slot_of(input(add, residual_operand)) == p.model->slot_of(input(conv1, 0)));
}

TEST_CASE("weights are observed at prepare, per channel, bias is derived, skipped modules get no observer") {
  Override skip;
  skip.module_glob = "fc2";
  skip.quantize = false;
  auto p = prepare_zoo("linear_relu", "x86-int8", {skip});
  const Graph& g = *p.captured.graph;
  const Node* fc1 = nth(g, "aten::linear", 0);
  const Node* fc2 = nth(g, "aten::linear", 1);
  const int w = p.model->slot_of(input(fc1, 1));
  REQUIRE(w >= 0);
  const auto& slot = p.model->slots()[static_cast<std::size_t>(w)];
  CHECK(slot.kind == SlotKind::Weight);
  REQUIRE(slot.observer->has_data());
  CHECK(slot.observer->qparams().scale.size() == 32);  // fc1 has 32 output channels
  REQUIRE(p.model->derived().size() == 1);
  CHECK(p.model->derived()[0].edge == input(fc1, 2));
  CHECK(p.model->derived()[0].source_slots == std::vector<int>{p.model->slot_of(input(fc1, 0)), w});
  CHECK(p.model->slot_of(input(fc2, 0)) == -1);
  CHECK(p.model->slot_of(input(fc2, 1)) == -1);
}

TEST_CASE("the prepared graph runs, gives the float output and feeds the observers") {
  auto p = prepare_zoo("resnet18", "arm");
  CHECK(count_observe_nodes(*p.captured.graph) == int(p.model->observe_nodes()));
  CHECK(p.model->observe_nodes() > 20);
  const auto expected = p.captured.original(p.captured.example_inputs);
  const auto out = p.model->calibrate(p.captured.example_inputs);
  REQUIRE(out.size() == 1);
  CHECK(torch::allclose(out[0], expected[0], 1e-5, 1e-6));
  for (const auto& s : p.model->slots())
    if (s.kind == SlotKind::Activation) CHECK_MESSAGE(s.observer->has_data(), s.label);
  // A fixed spec needs no data: arm's... none in resnet18; hardsigmoid is in the mbv3 block.
  auto mb = prepare_zoo("mbv3_block", "arm");
  const Node* hs = nth(*mb.captured.graph, "aten::hardsigmoid");
  const auto& fixed = mb.model->slots()[static_cast<std::size_t>(mb.model->slot_of(output(hs)))];
  CHECK(fixed.kind == SlotKind::Fixed);
  CHECK(fixed.observer->qparams().scale[0] == doctest::Approx(1.0 / 256));
}

TEST_CASE("calibration from the random source, saved statistics give identical qparams") {
  auto a = prepare_zoo("mnist_cnn", "x86-int8");
  CalibrationConfig config;
  config.source = "random";
  config.batches = 3;
  config.batch_size = 4;
  auto source = open_data_source(config, {{1, 1, 28, 28}});
  for (std::size_t i = 0; i < source->num_batches(); ++i) a.model->calibrate(source->batch(i).inputs);
  const std::string stats = a.model->save_stats();

  auto b = prepare_zoo("mnist_cnn", "x86-int8");
  b.model->load_stats(stats, "stats.json");
  REQUIRE(a.model->slots().size() == b.model->slots().size());
  for (std::size_t i = 0; i < a.model->slots().size(); ++i) {
    const auto& sa = a.model->slots()[i];
    const auto& sb = b.model->slots()[i];
    if (!sa.observer || !sa.observer->has_data()) continue;
    CHECK(sa.observer->qparams().scale == sb.observer->qparams().scale);
    CHECK(sa.observer->qparams().zero_point == sb.observer->qparams().zero_point);
  }

  auto other = prepare_zoo("mnist_cnn", "arm");
  CHECK_THROWS_WITH(other.model->load_stats(stats, "stats.json"),
                    "stats.json: stats were saved for backend 'x86-int8', not 'arm'");
  CHECK_THROWS_WITH(other.model->load_stats("{", "stats.json"), doctest::Contains("stats.json: not a qsdk stats file"));
}

TEST_CASE("calibration on real MNIST digits") {
  auto p = prepare_zoo("mnist_cnn", "per-channel");
  CalibrationConfig config;
  config.source = "mnist";
  config.batches = 2;
  config.batch_size = 16;
  auto source = open_data_source(config, {{1, 1, 28, 28}});
  for (std::size_t i = 0; i < source->num_batches(); ++i) p.model->calibrate(source->batch(i).inputs);
  // The input observer saw normalised digits: background pixels map to about -0.42.
  const auto q =
      p.model->slots()[static_cast<std::size_t>(p.model->slot_of(input(nth(*p.captured.graph, "aten::conv2d"), 0)))]
          .observer->qparams();
  CHECK(q.scale[0] > 0.005);
  CHECK(q.scale[0] < 0.05);
}

TEST_CASE("qsdk calibrate: qparams table, stats saved and reloaded, bad data exits 2 and writes nothing") {
  namespace fs = std::filesystem;
  const std::string qsdk = QSDK_TEST_EXE;
  const fs::path dir = fs::temp_directory_path() / ("qsdk-calibrate-cli-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const fs::path stats = dir / "stats.json";
  auto ok = test::run_command(qsdk + " calibrate zoo:conv_bn_relu -b arm --data random --batches 2 --batch-size 2" +
                              " --save-stats " + test::shell_quote(stats.string()));
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("observer slots") != std::string::npos);
  CHECK(ok.err.find("calibrating: 2/2") != std::string::npos);  // not a TTY: plain progress lines
  REQUIRE(fs::exists(stats));

  auto again =
      test::run_command(qsdk + " calibrate zoo:conv_bn_relu -b arm --load-stats " + test::shell_quote(stats.string()));
  CHECK(again.exit_code == 0);
  CHECK(again.out == ok.out);  // same qparams without calibrating
  CHECK(again.err.find("calibrating") == std::string::npos);

  const fs::path missing = dir / "no-such-dir";
  const fs::path stats2 = dir / "stats2.json";
  auto bad =
      test::run_command(qsdk + " calibrate zoo:conv_bn_relu -b arm --data " + test::shell_quote(missing.string()) +
                        " --save-stats " + test::shell_quote(stats2.string()));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find(missing.string()) != std::string::npos);
  CHECK_FALSE(fs::exists(stats2));

  auto wrong = test::run_command(qsdk + " calibrate zoo:conv_bn_relu -b x86-int8 --load-stats " +
                                 test::shell_quote(stats.string()));
  CHECK(wrong.exit_code == 2);
  CHECK(wrong.err.find("stats were saved for backend 'arm', not 'x86-int8'") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("conv -> batch_norm: weights are observed folded, and folding keeps the float output") {
  auto p = prepare_zoo("conv_bn_relu", "x86-int8");
  const Graph& g = *p.captured.graph;
  const Node* conv = nth(g, "aten::conv2d");
  auto folded = folded_weights(conv);
  REQUIRE(folded.has_value());
  const auto& slot = p.model->slots()[static_cast<std::size_t>(p.model->slot_of(input(conv, 1)))];
  // Per-channel symmetric: scale = max|W_folded| per output channel / quant_max
  // (127 for 8-bit weights, 63 for x86-int8's 7-bit ones without VNNI).
  const auto qparams = slot.observer->qparams();
  CHECK((qparams.quant_max == 127 || qparams.quant_max == 63));
  const at::Tensor expected = folded->weight.abs().amax({1, 2, 3}).to(at::kDouble) / double(qparams.quant_max);
  const auto scales = qparams.scale;
  REQUIRE(scales.size() == std::size_t(expected.size(0)));
  for (std::size_t c = 0; c < scales.size(); ++c)
    CHECK(scales[c] == doctest::Approx(expected[long(c)].item<double>()).epsilon(1e-6));

  // Folding in the graph: same output within 1e-5 relative, BatchNorm gone.
  auto m = capture_model("zoo:conv_bn_relu");
  const auto before = m.graph->run(m.example_inputs)[0];
  REQUIRE(fold_batch_norm(const_cast<Node*>(nth(*m.graph, "aten::conv2d"))));
  m.graph->renumber();
  int bns = 0;
  for (const Node* n : m.graph->nodes()) bns += n->kind() == c10::aten::batch_norm;
  CHECK(bns == 0);
  const auto after = m.graph->run(m.example_inputs)[0];
  CHECK((after - before).abs().max().item<double>() <= 1e-5 * before.abs().max().item<double>());
}
