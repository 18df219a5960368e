// Observers: qparams equal to PyTorch 1.13's observers and to the NumPy
// references (tests/data/observer_refs.json, from tools/gen_observer_refs.py)
// on the same batches; eps, reduce_range, fixed specs, saved state, errors.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "prepare/observers.h"
#include "support/torch_doctest.h"

using namespace qsdk;
using json = nlohmann::json;

namespace {

const json& refs() {
  static const json j = [] {
    const std::string path = std::string(QSDK_TEST_SOURCE_DIR) + "/tests/data/observer_refs.json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    return json::parse(in);
  }();
  return j;
}

std::vector<at::Tensor> batches(const std::string& input) {
  const json& in = refs().at("inputs").at(input);
  const auto shape = in.at("shape").get<std::vector<std::int64_t>>();
  std::vector<at::Tensor> out;
  for (const json& b : in.at("batches")) {
    std::vector<float> values;
    for (const json& v : b) values.push_back(static_cast<float>(v.get<double>()));
    out.push_back(at::tensor(values).reshape(shape));
  }
  return out;
}

QuantSpec spec_of(const json& c) {
  QuantSpec s;
  s.kind = SpecKind::Observed;
  REQUIRE(parse(c.at("dtype").get<std::string>(), s.dtype));
  REQUIRE(parse(c.at("scheme").get<std::string>(), s.scheme));
  REQUIRE(parse(c.at("granularity").get<std::string>(), s.granularity));
  REQUIRE(parse(c.at("observer").get<std::string>(), s.observer));
  s.axis = c.at("axis").get<int>();
  s.quant_min = c.at("quant_min").get<std::int64_t>();
  s.quant_max = c.at("quant_max").get<std::int64_t>();
  s.reduce_range = c.at("reduce_range").get<bool>();
  s.eps = c.at("eps").get<double>();
  return s;
}

double rel_diff(double a, double b) {
  if (a == b) return 0;
  return std::fabs(a - b) / std::max(std::fabs(a), std::fabs(b));
}

QuantSpec observed(ObserverKind kind, QuantSpec s = spec::uint8_affine()) { return s.with_observer(kind); }

const ObserverKind kAllKinds[] = {ObserverKind::MinMax, ObserverKind::MovingAverageMinMax,
                                  ObserverKind::HistogramPercentile, ObserverKind::HistogramEntropy, ObserverKind::MSE};

at::Tensor sample(std::int64_t n, double scale = 1.0, std::uint64_t seed = 1) {
  at::manual_seed(seed);
  return at::randn({n}) * scale;
}

}  // namespace

TEST_CASE("observers match PyTorch 1.13 observers and the NumPy references") {
  const double kTolerance = 1e-6;
  std::map<std::string, double> worst;  // per observer, max relative scale difference
  int cases = 0;
  for (const json& c : refs().at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    INFO(name);
    const QuantSpec spec = spec_of(c);
    ObserverOptions options;
    options.mse_integer_histogram_range = c.at("options").at("mse_integer_histogram_range").get<bool>();
    auto observer = make_observer(spec, options);
    for (const at::Tensor& b : batches(c.at("input").get<std::string>())) observer->observe(b);
    REQUIRE(observer->has_data());
    const QParams q = observer->qparams();

    const json& expected = c.at("expected");
    const auto scale = expected.at("scale").get<std::vector<double>>();
    const auto zero_point = expected.at("zero_point").get<std::vector<std::int64_t>>();
    REQUIRE(q.scale.size() == scale.size());
    std::string label = c.at("observer").get<std::string>();
    if (!options.mse_integer_histogram_range) label += " (float histc range)";
    double& w = worst[label];
    for (std::size_t i = 0; i < scale.size(); ++i) {
      INFO("channel " << i << ": " << q.scale[i] << " vs " << scale[i]);
      CHECK(rel_diff(q.scale[i], scale[i]) <= kTolerance);
      w = std::max(w, rel_diff(q.scale[i], scale[i]));
    }
    CHECK(q.zero_point == zero_point);
    CHECK(q.quant_min == expected.at("quant_min").get<std::int64_t>());
    CHECK(q.quant_max == expected.at("quant_max").get<std::int64_t>());
    CHECK(q.axis == (spec.granularity == Granularity::PerChannel ? spec.axis : -1));
    CHECK(q.dtype == spec.dtype);

    // Saved statistics, through text, give the same qparams bit for bit.
    auto reloaded = make_observer(spec, options);
    reloaded->load_state(json::parse(observer->save_state().dump()));
    REQUIRE(reloaded->has_data());
    const QParams r = reloaded->qparams();
    CHECK(r.scale == q.scale);
    CHECK(r.zero_point == q.zero_point);
    ++cases;
  }
  CHECK(cases > 60);
  for (const auto& [label, diff] : worst) MESSAGE(label << ": max relative scale difference " << diff);
}

TEST_CASE("eps bounds the scale of constant data, as in PyTorch") {
  const at::Tensor zeros = at::zeros({4, 8});
  for (ObserverKind kind : kAllKinds) {
    for (double eps : {1.1920928955078125e-07, 1e-3}) {
      INFO(to_string(kind) << " eps " << eps);
      auto affine = make_observer(observed(kind).with_eps(eps));
      auto symmetric = make_observer(observed(kind, spec::int8_symmetric()).with_eps(eps));
      affine->observe(zeros);
      symmetric->observe(zeros);
      // eps is a float32 buffer in PyTorch: 1e-3 becomes 0.0010000000474974513.
      const double bound = static_cast<float>(eps);
      CHECK(affine->qparams().scale == std::vector<double>{bound});
      CHECK(affine->qparams().zero_point == std::vector<std::int64_t>{0});
      CHECK(symmetric->qparams().scale == std::vector<double>{bound});
      CHECK(symmetric->qparams().zero_point == std::vector<std::int64_t>{0});
    }
  }
  // A non-zero constant has a range (0 is always in it): no eps.
  auto obs = make_observer(spec::uint8_affine());
  obs->observe(at::full({3}, 0.75));
  CHECK(obs->qparams().scale[0] == static_cast<float>(0.75f / 255.0));
  // int8 affine: the zero point of an all-zero range is quant_min.
  auto i8 = make_observer(spec::int_affine());
  i8->observe(zeros);
  CHECK(i8->qparams().zero_point == std::vector<std::int64_t>{-128});
}

TEST_CASE("reduce_range halves the range, rounding down, as PyTorch's calculate_qmin_qmax") {
  using Range = std::pair<std::int64_t, std::int64_t>;
  CHECK(effective_quant_range(spec::uint8_affine().with_reduce_range()) == Range{0, 127});
  CHECK(effective_quant_range(spec::int_affine().with_reduce_range()) == Range{-64, 63});
  CHECK(effective_quant_range(spec::int8_symmetric().with_reduce_range()) == Range{-64, 63});
  CHECK(effective_quant_range(spec::int8_symmetric(4).with_reduce_range()) == Range{-4, 3});
  CHECK(effective_quant_range(spec::uint8_affine()) == Range{0, 255});

  const at::Tensor x = sample(1000, 2.0);
  auto full = make_observer(spec::uint8_affine());
  auto reduced = make_observer(spec::uint8_affine().with_reduce_range());
  full->observe(x);
  reduced->observe(x);
  const QParams f = full->qparams(), r = reduced->qparams();
  CHECK(r.quant_min == 0);
  CHECK(r.quant_max == 127);
  CHECK(r.scale[0] == doctest::Approx(f.scale[0] * 255.0 / 127.0).epsilon(1e-6));

  // PyTorch refuses symmetric uint8 with reduce_range; so do we, for every kind.
  for (ObserverKind kind : kAllKinds) {
    QuantSpec s = observed(kind).with_reduce_range();
    s.scheme = Scheme::Symmetric;
    CHECK_THROWS_AS(make_observer(s), InputError);
  }
}

TEST_CASE("qparams_from_range is PyTorch's _calculate_qparams") {
  // Symmetric uint8 with an explicit range: midpoint rounded down (PyTorch's
  // 128 is for observers built without quant_min/quant_max).
  QuantSpec u8s = spec::uint8_affine();
  u8s.scheme = Scheme::Symmetric;
  QParams q = qparams_from_range(u8s, {-1.0}, {2.0}, -1);
  CHECK(q.zero_point == std::vector<std::int64_t>{127});
  CHECK(q.scale[0] == static_cast<float>(2.0f / 127.5f));
  // int8 restricted range [-127, 127]: scale max|x| / 127.
  q = qparams_from_range(spec::int8_symmetric(), {-2.54}, {1.0}, -1);
  CHECK(q.scale[0] == static_cast<float>(2.54f / 127.0f));
  CHECK(q.zero_point == std::vector<std::int64_t>{0});
  // Affine: the range is widened to include 0.
  q = qparams_from_range(spec::uint8_affine(), {0.5, -1.0}, {2.0, 1.0}, 0);
  CHECK(q.axis == 0);
  CHECK(q.scale[0] == static_cast<float>(2.0f / 255.0f));
  // -1 / (2 / 255) is -127.49999 in float32: PyTorch's zero point is 127 too.
  CHECK(q.zero_point == std::vector<std::int64_t>{0, 127});
  CHECK_THROWS_AS(qparams_from_range(spec::uint8_affine(), {1.0}, {0.0}, -1), std::invalid_argument);
  CHECK_THROWS_AS(qparams_from_range(spec::uint8_affine(), {}, {}, -1), std::invalid_argument);
  CHECK_THROWS_AS(qparams_from_range(spec::uint8_affine(), {0.0, 1.0}, {1.0}, 0), std::invalid_argument);
}

TEST_CASE("a fixed spec gives its qparams and ignores data") {
  const QuantSpec s = spec::fixed(1.0 / 256, 0);
  auto obs = make_observer(s);
  CHECK(obs->has_data());
  obs->observe(sample(100, 5.0));
  const QParams q = obs->qparams();
  CHECK(q.scale == std::vector<double>{1.0 / 256});
  CHECK(q.zero_point == std::vector<std::int64_t>{0});
  CHECK(q.axis == -1);
  CHECK(q.quant_min == 0);
  CHECK(q.quant_max == 255);
  auto again = make_observer(s);
  again->load_state(obs->save_state());
  CHECK(again->qparams().scale == q.scale);
  CHECK_THROWS_AS(again->load_state(make_observer(spec::uint8_affine())->save_state()), InputError);

  const QuantSpec signed_fixed = spec::fixed(2.0 / 256, 0, DType::Int8, -128, 127);
  CHECK(make_observer(signed_fixed)->qparams().quant_min == -128);
  CHECK_THROWS_AS(make_observer(spec::fixed(0.0, 0)), InputError);
  CHECK_THROWS_AS(make_observer(spec::fixed(0.1, 300)), InputError);
}

TEST_CASE("qparams() before any data throws, empty batches are ignored") {
  for (ObserverKind kind : kAllKinds) {
    INFO(to_string(kind));
    auto obs = make_observer(observed(kind));
    CHECK_FALSE(obs->has_data());
    CHECK_THROWS_AS(obs->qparams(), std::logic_error);
    obs->observe(at::zeros({0, 3}));
    CHECK_FALSE(obs->has_data());
    CHECK_THROWS_AS(obs->qparams(), std::logic_error);
    // A saved empty state loads as empty.
    auto other = make_observer(observed(kind));
    other->observe(sample(10));
    other->load_state(obs->save_state());
    CHECK_FALSE(other->has_data());
  }
  auto per_channel = make_observer(spec::int8_symmetric_per_channel(0));
  CHECK_THROWS_AS(per_channel->qparams(), std::logic_error);
}

TEST_CASE("save_state/load_state round trip, including partial histories") {
  for (ObserverKind kind : kAllKinds) {
    INFO(to_string(kind));
    const QuantSpec s = observed(kind);
    auto a = make_observer(s);
    a->observe(sample(5000, 1.0, 1));
    auto b = make_observer(s);
    b->load_state(json::parse(a->save_state().dump()));
    // Continuing after a reload is the same as never stopping.
    a->observe(sample(5000, 3.0, 2));
    b->observe(sample(5000, 3.0, 2));
    CHECK(a->qparams().scale == b->qparams().scale);
    CHECK(a->qparams().zero_point == b->qparams().zero_point);
    CHECK(a->save_state() == b->save_state());
  }
  // Histogram kinds that only saw zeros so far.
  auto zeros_then = make_observer(observed(ObserverKind::HistogramEntropy));
  zeros_then->observe(at::zeros({16}));
  auto reloaded = make_observer(observed(ObserverKind::HistogramEntropy));
  reloaded->load_state(zeros_then->save_state());
  zeros_then->observe(sample(100));
  reloaded->observe(sample(100));
  CHECK(zeros_then->qparams().scale == reloaded->qparams().scale);
}

TEST_CASE("load_state rejects junk and leaves the observer as it was") {
  for (ObserverKind kind : kAllKinds) {
    INFO(to_string(kind));
    const QuantSpec s = observed(kind);
    auto obs = make_observer(s);
    obs->observe(sample(2000));
    const QParams before = obs->qparams();
    const json good = obs->save_state();

    std::vector<json> junk = {json(), json(42), json::array(), json{{"observer", "nonsense"}, {"version", 1}}};
    json wrong_version = good;
    wrong_version["version"] = 99;
    junk.push_back(wrong_version);
    for (const auto& [key, value] : good.items()) {
      if (key == "observer" || key == "version") continue;
      json missing = good;
      missing.erase(key);
      if (key != "min" && key != "width" && key != "histogram") junk.push_back(missing);  // those mean "empty"
      json wrong_type = good;
      wrong_type[key] = "text";
      junk.push_back(wrong_type);
      json null_value = good;  // how nlohmann writes NaN and Inf
      null_value[key] = value.is_array() ? json::array({nullptr}) : json(nullptr);
      junk.push_back(null_value);
      if (value.is_array() && value.size() > 1) {
        json short_array = good;
        short_array[key].erase(short_array[key].size() - 1);
        junk.push_back(short_array);
        json negative = good;
        negative[key][0] = -1.0;
        if (key != "min" && key != "max") junk.push_back(negative);
      }
    }
    json inverted = good;
    if (inverted["min"].is_array()) {
      inverted["min"][0] = 5.0;
      inverted["max"][0] = -5.0;
    } else {
      inverted["min"] = 5.0;
      inverted["max"] = -5.0;
    }
    junk.push_back(inverted);
    for (ObserverKind other : kAllKinds)  // another kind's statistics
      if (other != kind) {
        auto o = make_observer(observed(other));
        o->observe(sample(100));
        junk.push_back(o->save_state());
      }

    for (const json& j : junk) {
      INFO(j.dump().substr(0, 200));
      try {
        obs->load_state(j);
        FAIL("accepted");
      } catch (const InputError& e) {
        CHECK(e.where() == "stats");
      }
      CHECK(obs->qparams().scale == before.scale);
      CHECK(obs->qparams().zero_point == before.zero_point);
    }
  }
  // Per-channel: per-tensor statistics do not fit.
  auto pc = make_observer(spec::int8_symmetric_per_channel(0));
  CHECK_THROWS_AS(
      pc->load_state(json{{"observer", "minmax"}, {"version", 1}, {"min", json::array()}, {"max", json::array()}}),
      InputError);
  auto pt = make_observer(spec::int8_symmetric());
  CHECK_THROWS_AS(pt->load_state(json{{"observer", "minmax"}, {"version", 1}, {"min", {-1, -2}}, {"max", {1, 2}}}),
                  InputError);
}

TEST_CASE("make_observer rejects what it cannot do") {
  for (ObserverKind kind : {ObserverKind::HistogramPercentile, ObserverKind::HistogramEntropy, ObserverKind::MSE})
    CHECK_THROWS_WITH_AS(make_observer(observed(kind, spec::int8_symmetric_per_channel(0))),
                         doctest::Contains("per-tensor only"), InputError);
  QuantSpec no_axis = spec::int8_symmetric_per_channel(0);
  no_axis.axis = -1;
  CHECK_THROWS_AS(make_observer(no_axis), InputError);
  CHECK_THROWS_AS(make_observer(spec::float_()), InputError);
  CHECK_THROWS_AS(make_observer(spec::shared_with(in(0, 0))), InputError);
  CHECK_THROWS_AS(make_observer(spec::derived_bias()), InputError);
  CHECK_THROWS_AS(make_observer(spec::uint8_affine().with_range(10, 255)), InputError);  // excludes 0
  CHECK_THROWS_AS(make_observer(spec::uint8_affine().with_range(5, 5)), InputError);
  CHECK_THROWS_AS(make_observer(spec::int_affine().with_range(-300, 127)), InputError);
  CHECK_THROWS_AS(make_observer(spec::uint8_affine().with_eps(0)), InputError);
  CHECK(make_observer(spec::dynamic_uint8()) != nullptr);
}

TEST_CASE("observe rejects bad data") {
  for (ObserverKind kind : kAllKinds) {
    INFO(to_string(kind));
    auto obs = make_observer(observed(kind));
    at::Tensor x = sample(100);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(obs->observe(x), InputError);
    x[3] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(obs->observe(x), InputError);
  }
  auto pc = make_observer(spec::int8_symmetric_per_channel(1));
  CHECK_THROWS_AS(pc->observe(sample(10)), InputError);  // no axis 1
  pc->observe(at::ones({4, 3, 2}));
  CHECK_THROWS_AS(pc->observe(at::ones({4, 5, 2})), InputError);  // channel count changed
  CHECK(pc->qparams().scale.size() == 3);
}

TEST_CASE("the per-channel observers accept any axis and dtype of input") {
  // double input is observed in float32, as PyTorch does.
  auto obs = make_observer(spec::int8_symmetric_per_channel(2));
  at::Tensor w = at::arange(24, at::kDouble).reshape({2, 3, 4}) - 12;
  obs->observe(w);
  const QParams q = obs->qparams();
  REQUIRE(q.scale.size() == 4);
  CHECK(q.axis == 2);
  // Channel k of axis 2 holds -12+k ... 8+k: max|x| is 12-k or 8+k.
  for (int k = 0; k < 4; ++k) CHECK(q.scale[k] == static_cast<float>(std::max(12 - k, 8 + k) / 127.0f));
}

TEST_CASE("mse merges histograms across a million-fold range growth without PyTorch's huge grid") {
  // PyTorch 1.13 would allocate bins * downsample_rate (~2.6e11) floats here.
  for (bool integer_range : {true, false}) {
    ObserverOptions options;
    options.mse_integer_histogram_range = integer_range;
    auto obs = make_observer(observed(ObserverKind::MSE), options);
    obs->observe(sample(1000, 1e-3, 1));
    obs->observe(sample(1000, 1e3, 2));
    const QParams q = obs->qparams();
    CHECK(std::isfinite(q.scale[0]));
    CHECK(q.scale[0] > 1.0);
    auto absurd = make_observer(observed(ObserverKind::MSE), options);
    absurd->observe(sample(100, 1e-12, 1));
    CHECK_THROWS_AS(absurd->observe(sample(100, 1e3, 2)), InputError);
  }
}
