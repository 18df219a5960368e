#include "pipeline/pipeline_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "capture/capture.h"
#include "capture/zoo/zoo.h"
#include "common/error.h"
#include "common/yaml_input.h"

namespace qsdk {
namespace {

namespace fs = std::filesystem;
using yaml::check_keys;
using yaml::scalar;
using yaml::where;

const std::vector<std::string> kSectionKeys{"mode",    "calibration", "qat",      "overrides", "checks",
                                            "measure", "lower",       "accuracy", "algorithms"};
const std::vector<std::string> kAccuracyKeys{"metric", "max_drop", "min_sqnr_db", "fallback", "budget", "order"};
const std::vector<std::string> kModelKeys{"source", "zoo", "file", "search", "input_shapes", "inputs", "seed"};
const std::vector<std::string> kInputKeys{"shape", "dtype", "range"};
const std::vector<std::string> kCalibrationKeys{"source", "batches", "batch_size", "seed", "observer"};
const std::vector<std::string> kQatKeys{"steps",           "epochs",
                                        "optimizer",       "lr",
                                        "lr_schedule",     "momentum",
                                        "weight_decay",    "batch_size",
                                        "freeze_bn_after", "freeze_observers_after"};

struct Reader {
  const PipelineConfigContext& c;

  std::string at(const YAML::Node& n) const { return where(c.source, n); }

  fs::path path(const YAML::Node& n, const std::string& what) const {
    return yaml::absolute_path(c.source, n, what, c.base_dir);
  }

  int at_least(const YAML::Node& n, const std::string& what, int min) const {
    const int v = scalar<int>(c.source, n, what);
    if (v < min) throw InputError(at(n), what + " must be at least " + std::to_string(min));
    return v;
  }

  std::string one_of(const YAML::Node& n, const std::string& what, const std::vector<std::string>& allowed) const {
    const auto v = scalar<std::string>(c.source, n, what);
    if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return v;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " or ") + a;
    throw InputError(at(n), what + " must be " + list + ", not '" + v + "'");
  }

  std::vector<std::int64_t> shape(const YAML::Node& n) const {
    if (n.IsScalar()) {
      try {
        return parse_shape(n.Scalar());
      } catch (const InputError& e) {
        throw InputError(at(n), e.cause());
      }
    }
    if (!n.IsSequence() || n.size() == 0)
      throw InputError(at(n), "an input shape must be a list of sizes, e.g. [1, 3, 224, 224]");
    std::vector<std::int64_t> s;
    for (const auto& d : n) {
      const auto v = scalar<std::int64_t>(c.source, d, "a size");
      if (v <= 0) throw InputError(at(d), "sizes must be positive");
      s.push_back(v);
    }
    return s;
  }

  // One entry of `inputs:`: {shape: [1, 64], dtype: int64, range: [0, 256]}
  // (range: integers, HIGH excluded), or the --input text "1,64:int64:0..256".
  InputSpec input(const YAML::Node& n) const {
    if (n.IsScalar()) {
      try {
        return parse_input_spec(n.Scalar(), "input");
      } catch (const InputError& e) {
        throw InputError(at(n), e.cause());
      }
    }
    if (!n.IsMap())
      throw InputError(at(n),
                       "an input is {shape: [...], dtype: ..., range: [LOW, HIGH]}, e.g. "
                       "{shape: [1, 64], dtype: int64, range: [0, 256]}");
    check_keys(c.source, n, kInputKeys, "input");
    if (!n["shape"]) throw InputError(at(n), "an input needs shape, e.g. {shape: [1, 64], dtype: int64}");
    InputSpec in(shape(n["shape"]));
    if (const auto d = n["dtype"]) {
      const auto text = scalar<std::string>(c.source, d, "dtype");
      if (!parse_dtype(text, in.dtype))
        throw InputError(at(d), "dtype must be " + std::string(kInputDtypes) + ", not '" + text + "'");
    }
    if (const auto range = n["range"]) {
      if (!range.IsSequence() || range.size() != 2)
        throw InputError(at(range), "range must be [LOW, HIGH] (HIGH excluded), e.g. [0, 256]");
      in.low = scalar<std::int64_t>(c.source, range[0], "range");
      in.high = scalar<std::int64_t>(c.source, range[1], "range");
      if (!in.is_integer()) throw InputError(at(range), "a range is for integer inputs (dtype int64, int32 or bool)");
      if (in.high <= in.low) throw InputError(at(range), "empty range: HIGH is excluded, so it must exceed LOW");
    }
    return in;
  }

  void zoo_model(const YAML::Node& n, const std::string& name) const {
    if (zoo::find_zoo_model(name)) return;
    std::vector<std::string> names;
    for (const auto& z : zoo::zoo_models()) names.push_back(z.name);
    const auto best = yaml::closest(name, names);
    throw InputError(at(n), "missing model: no zoo model '" + name + "'" +
                                (best.empty() ? "" : " (did you mean 'zoo:" + best + "'?)") +
                                "; `qsdk inspect --list-zoo` lists them");
  }

  void calibration(const YAML::Node& n, PipelineOptions& o) const {
    check_keys(c.source, n, kCalibrationKeys, "calibration");
    if (const auto s = n["source"]) {
      const auto text = scalar<std::string>(c.source, s, "source");
      if (text == "mnist" || text == "fortunes" || text == "random") {
        o.calibration.source = text;
      } else {
        o.calibration.source = path(s, "source").string();
        std::error_code ec;
        if (c.check_files && !fs::exists(o.calibration.source, ec))
          throw InputError(at(s), "calibration source '" + text +
                                      "' is not 'random', 'mnist', 'fortunes' or an existing path (" +
                                      o.calibration.source + ")");
      }
    }
    if (const auto v = n["batches"]) o.calibration.batches = at_least(v, "batches", 1);
    if (const auto v = n["batch_size"]) o.calibration.batch_size = at_least(v, "batch_size", 1);
    if (const auto v = n["seed"]) o.calibration.seed = scalar<std::uint64_t>(c.source, v, "seed");
    if (const auto v = n["observer"]) {
      o.activation_observer = scalar<std::string>(c.source, v, "observer");
      ObserverKind kind{};
      if (!parse(o.activation_observer, kind))
        throw InputError(at(v), "unknown observer kind '" + o.activation_observer + "'");
    }
  }

  QatOptions qat(const YAML::Node& n) const {
    QatOptions q;
    if (n.IsNull()) return q;
    check_keys(c.source, n, kQatKeys, "qat");
    if (const auto v = n["steps"]) q.steps = at_least(v, "steps", 1);
    if (const auto v = n["epochs"]) q.epochs = at_least(v, "epochs", 0);
    if (const auto v = n["optimizer"]) q.optimizer = one_of(v, "optimizer", {"sgd", "adam"});
    if (const auto v = n["lr"]) {
      q.lr = scalar<double>(c.source, v, "lr");
      if (!(q.lr > 0)) throw InputError(at(v), "lr must be positive");
    }
    if (const auto v = n["lr_schedule"]) q.lr_schedule = one_of(v, "lr_schedule", {"cosine", "constant"});
    if (const auto v = n["momentum"]) q.momentum = scalar<double>(c.source, v, "momentum");
    if (const auto v = n["weight_decay"]) q.weight_decay = scalar<double>(c.source, v, "weight_decay");
    if (const auto v = n["batch_size"]) q.batch_size = at_least(v, "batch_size", 1);
    if (const auto v = n["freeze_bn_after"]) q.freeze_bn_after = at_least(v, "freeze_bn_after", -1);
    if (const auto v = n["freeze_observers_after"])
      q.freeze_observers_after = at_least(v, "freeze_observers_after", -1);
    return q;
  }

  void checks(const YAML::Node& n, PipelineOptions& o) const {
    check_keys(c.source, n, {"max_steps", "kernel_max_steps", "noise_margin_db", "onnx_max_steps", "engines"},
               "checks");
    if (const auto v = n["engines"]) {
      // CONTRIBUTING.md, "Checking your engine": compared with the integer reference, reported.
      const std::vector<std::string> known{"backend", "onnxruntime", "onnxruntime-fused"};
      o.engines = yaml::string_list(c.source, v, "engines");
      for (const auto& e : o.engines)
        if (std::find(known.begin(), known.end(), e) == known.end())
          throw InputError(at(v), "unknown engine '" + e + "'; expected backend, onnxruntime or onnxruntime-fused");
    }
    if (const auto v = n["max_steps"]) {
      o.max_steps = scalar<double>(c.source, v, "max_steps");
      if (!(o.max_steps >= 0)) throw InputError(at(v), "max_steps must be >= 0");
    }
    if (const auto v = n["kernel_max_steps"]) {
      o.kernel_max_steps = scalar<double>(c.source, v, "kernel_max_steps");
      if (!(o.kernel_max_steps >= 0)) throw InputError(at(v), "kernel_max_steps must be >= 0");
    }
    if (const auto v = n["noise_margin_db"]) {
      o.min_noise_margin_db = scalar<double>(c.source, v, "noise_margin_db");
      if (!std::isfinite(o.min_noise_margin_db))
        throw InputError(at(v), "noise_margin_db must be a finite number of dB (e.g. 20)");
    }
    if (const auto v = n["onnx_max_steps"]) {
      o.onnx_max_steps = scalar<double>(c.source, v, "onnx_max_steps");
      if (!(o.onnx_max_steps >= 0)) throw InputError(at(v), "onnx_max_steps must be >= 0");
    }
  }

  // accuracy: {metric: top1, max_drop: 0.5 | "0.5%", fallback: [wider, float], budget: 40}
  AccuracyTarget accuracy(const YAML::Node& n) const {
    if (!n.IsMap()) throw InputError(at(n), "accuracy must be a mapping, e.g. {metric: top1, max_drop: 0.5}");
    check_keys(c.source, n, kAccuracyKeys, "accuracy");
    AccuracyTarget a;
    a.where = at(n);
    if (const auto v = n["metric"]) a.metric = one_of(v, "metric", {"top1", "sqnr"});
    if (const auto v = n["max_drop"]) {
      std::string text = scalar<std::string>(c.source, v, "max_drop");
      if (!text.empty() && text.back() == '%') text.pop_back();
      try {
        std::size_t used = 0;
        a.max_drop = std::stod(text, &used);
        if (used != text.size()) throw std::invalid_argument(text);
      } catch (const std::exception&) {
        throw InputError(at(v), "max_drop must be percentage points of top-1, e.g. 0.5 or \"0.5%\"");
      }
      if (!(a.max_drop >= 0) || !std::isfinite(a.max_drop)) throw InputError(at(v), "max_drop must be >= 0");
    }
    if (const auto v = n["min_sqnr_db"]) {
      a.min_sqnr_db = scalar<double>(c.source, v, "min_sqnr_db");
      if (!std::isfinite(a.min_sqnr_db)) throw InputError(at(v), "min_sqnr_db must be a finite number of dB");
    }
    if (const auto v = n["fallback"]) {
      a.fallback = yaml::string_list(c.source, v, "fallback");
      if (a.fallback.empty()) throw InputError(at(v), "fallback must list wider, float or both");
      for (std::size_t i = 0; i < a.fallback.size(); ++i) {
        if (a.fallback[i] != "wider" && a.fallback[i] != "float")
          throw InputError(at(v), "fallback entries are wider or float, not '" + a.fallback[i] + "'");
        if (std::find(a.fallback.begin(), a.fallback.begin() + long(i), a.fallback[i]) != a.fallback.begin() + long(i))
          throw InputError(at(v), "fallback lists '" + a.fallback[i] + "' twice");
      }
    }
    if (const auto v = n["budget"]) a.budget = at_least(v, "budget", 1);
    if (const auto v = n["order"]) a.order = one_of(v, "order", {"sensitivity", "graph"});
    return a;
  }

  // algorithms: [cle, bias_correction, {adaround: {iterations: 2000}}, {smoothquant: {alpha: 0.6}}]
  AlgorithmOptions algorithms(const YAML::Node& n) const {
    if (!n.IsSequence())
      throw InputError(at(n), "algorithms must be a list, e.g. [cle, adaround, {smoothquant: {alpha: 0.5}}]");
    AlgorithmOptions a;
    a.where = at(n);
    std::vector<std::string> seen;
    for (const auto& entry : n) {
      YAML::Node params;
      bool has_params = false;
      std::string name;
      if (entry.IsMap()) {
        if (entry.size() != 1)
          throw InputError(at(entry), "an algorithm with parameters is one key, e.g. {adaround: {iterations: 2000}}");
        const auto key = entry.begin()->first;
        params = entry.begin()->second;
        has_params = true;
        name = one_of(key, "algorithm", kAlgorithmNames);
        if (!params.IsMap()) throw InputError(at(params), name + "'s parameters must be a mapping");
      } else {
        name = one_of(entry, "algorithm", kAlgorithmNames);
      }
      if (std::find(seen.begin(), seen.end(), name) != seen.end())
        throw InputError(at(entry), "algorithm '" + name + "' is listed twice");
      seen.push_back(name);
      if (name == "cle") {
        a.cle = true;
        if (has_params) check_keys(c.source, params, {}, "cle");
      } else if (name == "smoothquant") {
        a.smoothquant = true;
        if (has_params) {
          check_keys(c.source, params, {"alpha", "samples"}, "smoothquant");
          if (const auto v = params["alpha"]) {
            a.smoothquant_alpha = scalar<double>(c.source, v, "alpha");
            if (!(a.smoothquant_alpha >= 0 && a.smoothquant_alpha <= 1))
              throw InputError(at(v), "alpha must be between 0 and 1 (0.5 splits the range evenly)");
          }
        }
      } else if (name == "adaround") {
        a.adaround = true;
        if (has_params) {
          check_keys(c.source, params, {"iterations", "batch_size", "regularization", "samples"}, "adaround");
          if (const auto v = params["iterations"]) a.adaround_iterations = at_least(v, "iterations", 1);
          if (const auto v = params["batch_size"]) a.adaround_batch = at_least(v, "batch_size", 1);
          if (const auto v = params["regularization"]) {
            a.adaround_regularization = scalar<double>(c.source, v, "regularization");
            if (!(a.adaround_regularization >= 0) || !std::isfinite(a.adaround_regularization))
              throw InputError(at(v), "regularization must be a number >= 0 (AIMET's default 0.01)");
          }
        }
      } else {
        a.bias_correction = true;
        if (has_params) check_keys(c.source, params, {"samples"}, "bias_correction");
      }
      if (has_params && params["samples"]) a.samples = at_least(params["samples"], "samples", 1);
    }
    return a;
  }

  void measure(const YAML::Node& n, PipelineOptions& o) const {
    check_keys(c.source, n, {"accuracy", "latency", "layers"}, "measure");
    if (const auto v = n["accuracy"]) o.measure_accuracy = scalar<bool>(c.source, v, "accuracy");
    if (const auto v = n["latency"]) o.measure_latency = scalar<bool>(c.source, v, "latency");
    if (const auto v = n["layers"]) o.per_layer_sqnr = scalar<bool>(c.source, v, "layers");
  }
};

void emit_patch(YAML::Emitter& e, const char* key, const SpecPatch& p) {
  e << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginMap;
  if (p.dtype) e << YAML::Key << "dtype" << YAML::Value << to_string(*p.dtype);
  if (p.quant_min) e << YAML::Key << "quant_min" << YAML::Value << *p.quant_min;
  if (p.quant_max) e << YAML::Key << "quant_max" << YAML::Value << *p.quant_max;
  if (p.scheme) e << YAML::Key << "scheme" << YAML::Value << to_string(*p.scheme);
  if (p.granularity) e << YAML::Key << "granularity" << YAML::Value << to_string(*p.granularity);
  if (p.axis) e << YAML::Key << "axis" << YAML::Value << *p.axis;
  if (p.observer) e << YAML::Key << "observer" << YAML::Value << to_string(*p.observer);
  e << YAML::EndMap;
}

}  // namespace

std::string PipelineOptions::backend_label() const {
  std::string label;
  for (const auto& b : backends) label += (label.empty() ? "" : "+") + b.name;
  return label;
}

const std::vector<std::string>& pipeline_section_keys() { return kSectionKeys; }

void read_model_section(const YAML::Node& n, const PipelineConfigContext& c, PipelineOptions& o) {
  const Reader r{c};
  std::string search = "file_dir";
  // (yaml-cpp's Node assignment writes through to the node: no reassigning.)
  const char* key = !n.IsMap() ? nullptr : n["source"] ? "source" : n["zoo"] ? "zoo" : "file";
  const YAML::Node named = key ? n[key] : n;  // zoo:NAME or a file, as one scalar
  const bool is_zoo_key = key && std::string(key) == "zoo", is_file_key = key && std::string(key) == "file";
  if (n.IsMap()) {
    check_keys(c.source, n, kModelKeys, "model");
    const int given = int(bool(n["source"])) + int(bool(n["zoo"])) + int(bool(n["file"]));
    if (given != 1)
      throw InputError(r.at(n), "model needs exactly one of source (zoo:NAME or a file), zoo (a zoo name) or file");
    if (const auto s = n["search"]) {
      // (spec_dir: what specs called file_dir before run configs took the key too)
      search = r.one_of(s, "search", {"file_dir", "spec_dir", "models_dir"});
      if (search == "spec_dir") search = "file_dir";
      if (is_zoo_key || (n["source"] && n["source"].IsScalar() && n["source"].Scalar().rfind("zoo:", 0) == 0))
        throw InputError(r.at(s), "search applies to model files, not zoo models");
    }
    if (n["input_shapes"] && n["inputs"])
      throw InputError(r.at(n["inputs"]), "give inputs or input_shapes, not both (inputs can say dtype and range)");
    if (const auto shapes = n["input_shapes"]) {
      if (!shapes.IsSequence() || shapes.size() == 0)
        throw InputError(r.at(shapes), "input_shapes must be a list of shapes, e.g. [[1, 3, 224, 224]]");
      o.inputs.clear();
      for (const auto& s : shapes) o.inputs.emplace_back(r.shape(s));
    }
    if (const auto inputs = n["inputs"]) {
      if (!inputs.IsSequence() || inputs.size() == 0)
        throw InputError(r.at(inputs), "inputs must be a list, e.g. [{shape: [1, 64], dtype: int64, range: [0, 256]}]");
      o.inputs.clear();
      for (const auto& in : inputs) o.inputs.push_back(r.input(in));
    }
    if (const auto seed = n["seed"]) o.model_seed = scalar<std::uint64_t>(c.source, seed, "seed");
  }
  const auto text = scalar<std::string>(c.source, named, "model");
  if (!is_file_key && (is_zoo_key || text.rfind("zoo:", 0) == 0)) {
    const std::string zoo_name = text.rfind("zoo:", 0) == 0 ? text.substr(4) : text;
    r.zoo_model(named, zoo_name);
    o.model = "zoo:" + zoo_name;
    // Explicit, so the options say what will run (and print as such).
    if (o.inputs.empty()) o.inputs = zoo::find_zoo_model(zoo_name)->inputs;
    return;
  }
  const fs::path p(text);
  const fs::path file = p.is_absolute()          ? p
                        : search == "models_dir" ? (c.models_dir / p).lexically_normal()
                                                 : r.path(named, "model");
  o.model = file.string();
  std::error_code ec;  // (a name too long to stat is "not found", not a filesystem_error)
  if (c.check_files && !fs::is_regular_file(file, ec)) {
    const std::string hint = search == "models_dir"
                                 ? " (models_dir is " + c.models_dir.string() +
                                       "; export the torchvision models with tools/export_models.py, or pass "
                                       "--models-dir / set QSDK_MODELS_DIR)"
                                 : " (relative paths resolve against the directory of " + c.source + ")";
    throw InputError(r.at(named), "missing model: no file " + file.string() + hint);
  }
}

void read_pipeline_sections(const YAML::Node& map, const PipelineConfigContext& c, PipelineOptions& o) {
  const Reader r{c};
  std::optional<bool> qat_mode;
  if (const auto v = map["mode"]) qat_mode = r.one_of(v, "mode", {"ptq", "qat"}) == "qat";
  if (const auto v = map["calibration"]) r.calibration(v, o);
  if (const auto v = map["qat"]) {
    if (qat_mode == false) throw InputError(r.at(v), "a qat: section with mode: ptq; remove one of them");
    o.qat = r.qat(v);
  } else if (qat_mode == true) {
    o.qat = QatOptions{};
  } else if (qat_mode == false) {
    o.qat.reset();
  }
  if (const auto v = map["overrides"]) o.overrides = parse_overrides(v, c.source);
  if (const auto v = map["checks"]) r.checks(v, o);
  if (const auto v = map["measure"]) r.measure(v, o);
  if (const auto v = map["lower"]) o.lower = scalar<bool>(c.source, v, "lower");
  if (const auto v = map["accuracy"]) {
    if (o.qat) throw InputError(r.at(v), "mixed precision searches post-training quantization; remove qat or accuracy");
    o.accuracy = r.accuracy(v);
  }
  if (const auto v = map["algorithms"]) {
    if (o.qat)
      throw InputError(r.at(v),
                       "the PTQ algorithms work on post-training quantization; QAT learns its weights (remove "
                       "qat or algorithms)");
    o.algorithms = r.algorithms(v);
  }
}

void emit_pipeline_sections(YAML::Emitter& e, const PipelineOptions& o) {
  e << YAML::Key << "calibration" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "source" << YAML::Value << o.calibration.source;
  e << YAML::Key << "batches" << YAML::Value << o.calibration.batches;
  e << YAML::Key << "batch_size" << YAML::Value << o.calibration.batch_size;
  e << YAML::Key << "seed" << YAML::Value << o.calibration.seed;
  if (!o.activation_observer.empty()) e << YAML::Key << "observer" << YAML::Value << o.activation_observer;
  e << YAML::EndMap;
  if (o.qat) {
    const QatOptions& q = *o.qat;
    e << YAML::Key << "qat" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "steps" << YAML::Value << q.steps;
    e << YAML::Key << "epochs" << YAML::Value << q.epochs;
    e << YAML::Key << "optimizer" << YAML::Value << q.optimizer;
    e << YAML::Key << "lr" << YAML::Value << q.lr;
    e << YAML::Key << "lr_schedule" << YAML::Value << q.lr_schedule;
    e << YAML::Key << "weight_decay" << YAML::Value << q.weight_decay;
    e << YAML::Key << "momentum" << YAML::Value << q.momentum;
    e << YAML::Key << "batch_size" << YAML::Value << q.batch_size;
    e << YAML::Key << "freeze_bn_after" << YAML::Value << q.freeze_bn_after;
    e << YAML::Key << "freeze_observers_after" << YAML::Value << q.freeze_observers_after;
    e << YAML::EndMap;
  }
  e << YAML::Key << "overrides" << YAML::Value;
  emit_overrides(e, o.overrides);
  e << YAML::Key << "checks" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "max_steps" << YAML::Value
    << o.max_steps << YAML::Key << "kernel_max_steps" << YAML::Value << o.kernel_max_steps << YAML::Key
    << "noise_margin_db" << YAML::Value << o.min_noise_margin_db << YAML::Key << "onnx_max_steps" << YAML::Value
    << o.onnx_max_steps;
  if (!o.engines.empty()) e << YAML::Key << "engines" << YAML::Value << YAML::Flow << o.engines;
  e << YAML::EndMap;
  e << YAML::Key << "measure" << YAML::Value << YAML::Flow << YAML::BeginMap;
  e << YAML::Key << "accuracy" << YAML::Value << o.measure_accuracy;
  e << YAML::Key << "latency" << YAML::Value << o.measure_latency;
  e << YAML::Key << "layers" << YAML::Value << o.per_layer_sqnr << YAML::EndMap;
  e << YAML::Key << "lower" << YAML::Value << o.lower;
  if (o.accuracy) {
    const AccuracyTarget& a = *o.accuracy;
    e << YAML::Key << "accuracy" << YAML::Value << YAML::Flow << YAML::BeginMap;
    e << YAML::Key << "metric" << YAML::Value << a.metric;
    e << YAML::Key << "max_drop" << YAML::Value << a.max_drop;
    e << YAML::Key << "min_sqnr_db" << YAML::Value << a.min_sqnr_db;
    e << YAML::Key << "fallback" << YAML::Value << YAML::Flow << a.fallback;
    e << YAML::Key << "budget" << YAML::Value << a.budget;
    e << YAML::Key << "order" << YAML::Value << a.order << YAML::EndMap;
  }
  if (o.algorithms.any()) {
    const AlgorithmOptions& a = o.algorithms;
    e << YAML::Key << "algorithms" << YAML::Value << YAML::BeginSeq;
    for (const auto& name : a.names()) {
      e << YAML::Flow << YAML::BeginMap << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap;
      if (name == "smoothquant") e << YAML::Key << "alpha" << YAML::Value << a.smoothquant_alpha;
      if (name == "adaround")
        e << YAML::Key << "iterations" << YAML::Value << a.adaround_iterations << YAML::Key << "batch_size"
          << YAML::Value << a.adaround_batch << YAML::Key << "regularization" << YAML::Value
          << a.adaround_regularization;
      if (name != "cle") e << YAML::Key << "samples" << YAML::Value << a.samples;
      e << YAML::EndMap << YAML::EndMap;
    }
    e << YAML::EndSeq;
  }
}

void emit_overrides(YAML::Emitter& e, const std::vector<Override>& overrides) {
  e << YAML::BeginSeq;
  for (const auto& ov : overrides) {
    e << YAML::Flow << YAML::BeginMap;
    if (!ov.module_glob.empty()) e << YAML::Key << "module" << YAML::Value << ov.module_glob;
    if (!ov.op.empty()) e << YAML::Key << "op" << YAML::Value << ov.op;
    if (ov.node_id >= 0) e << YAML::Key << "node" << YAML::Value << ov.node_id;
    if (!ov.quantize) e << YAML::Key << "quantize" << YAML::Value << false;
    if (ov.activation) emit_patch(e, "activation", *ov.activation);
    if (ov.weight) emit_patch(e, "weight", *ov.weight);
    if (!ov.width.empty()) e << YAML::Key << "width" << YAML::Value << ov.width;
    e << YAML::EndMap;
  }
  e << YAML::EndSeq;
}

}  // namespace qsdk
