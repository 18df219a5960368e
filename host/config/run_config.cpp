#include "config/run_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "capture/capture.h"
#include "capture/zoo/zoo.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/yaml_input.h"
#include "config/default_config.h"
#include "plugins/plugin_registry.h"

namespace qsdk {
namespace {

namespace fs = std::filesystem;
using yaml::scalar;
using yaml::where;

struct Reader {
  std::string source;
  fs::path base_dir;

  fs::path path(const YAML::Node& n, const std::string& what) const {
    // Absolute, so the merged config means the same wherever it is written
    // (qsdk run --isolate hands it to child processes as a file).
    const fs::path p = scalar<std::string>(source, n, what);
    return fs::absolute(p.is_absolute() || base_dir.empty() ? p : base_dir / p).lexically_normal();
  }

  std::vector<std::int64_t> shape(const YAML::Node& n) const {
    if (n.IsScalar()) {
      try {
        return parse_shape(n.Scalar());
      } catch (const InputError& e) {
        throw InputError(where(source, n), e.cause());
      }
    }
    if (!n.IsSequence() || n.size() == 0)
      throw InputError(where(source, n), "an input shape must be a list of sizes, e.g. [1, 3, 224, 224]");
    std::vector<std::int64_t> s;
    for (const auto& d : n) {
      const auto v = scalar<std::int64_t>(source, d, "a size");
      if (v <= 0) throw InputError(where(source, d), "sizes must be positive");
      s.push_back(v);
    }
    return s;
  }

  int positive(const YAML::Node& n, const std::string& what, int min = 1) const {
    const int v = scalar<int>(source, n, what);
    if (v < min) throw InputError(where(source, n), what + " must be at least " + std::to_string(min));
    return v;
  }

  void plugins(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"search_paths"}, "plugins");
    if (const auto paths = n["search_paths"]) {
      if (!paths.IsSequence()) throw InputError(where(source, paths), "search_paths must be a list of directories");
      for (const auto& p : paths) c.plugin_search_paths.push_back(path(p, "a search path"));
    }
  }

  void model(const YAML::Node& n, RunConfig& c) const {
    // (yaml-cpp's Node assignment writes through to the node, so no reassigning.)
    const YAML::Node model_source = n.IsMap() ? n["source"] : n;
    if (n.IsMap()) {
      yaml::check_keys(source, n, {"source", "input_shapes", "seed"}, "model");
      if (!model_source) throw InputError(where(source, n), "model needs a source: zoo:NAME or a file");
      if (const auto shapes = n["input_shapes"]) {
        if (!shapes.IsSequence() || shapes.size() == 0)
          throw InputError(where(source, shapes), "input_shapes must be a list of shapes, e.g. [[1, 3, 224, 224]]");
        for (const auto& s : shapes) c.input_shapes.push_back(shape(s));
      }
      if (const auto seed = n["seed"]) c.model_seed = scalar<std::uint64_t>(source, seed, "seed");
    }
    const auto text = scalar<std::string>(source, model_source, "model");
    if (text.rfind("zoo:", 0) == 0) {
      if (!zoo::find_zoo_model(text.substr(4))) {
        std::vector<std::string> names;
        for (const auto& z : zoo::zoo_models()) names.push_back(z.name);
        const auto best = yaml::closest(text.substr(4), names);
        throw InputError(where(source, model_source), "no zoo model '" + text.substr(4) + "'" +
                                                          (best.empty() ? "" : " (did you mean 'zoo:" + best + "'?)") +
                                                          "; `qsdk inspect --list-zoo` lists them");
      }
      c.model = text;
    } else {
      c.model = path(model_source, "model").string();
      std::error_code ec;  // (a name too long to stat is "not found", not a filesystem_error)
      if (!fs::exists(c.model, ec))
        throw InputError(where(source, model_source), "model file '" + c.model + "' not found");
    }
  }

  BackendOptions options(const YAML::Node& n) const {
    BackendOptions out;
    if (!n || n.IsNull()) return out;
    if (!n.IsMap()) throw InputError(where(source, n), "backend options must be a mapping of OPTION: VALUE");
    for (const auto& kv : n) out[kv.first.Scalar()] = scalar<std::string>(source, kv.second, kv.first.Scalar());
    return out;
  }

  void backends(const YAML::Node& n, RunConfig& c) const {
    if (n.IsScalar()) {
      c.backends.push_back({n.Scalar(), {}, where(source, n)});
    } else if (n.IsSequence()) {
      for (const auto& item : n) {
        if (item.IsMap()) {  // - {x86-int8: {...}}
          for (const auto& kv : item)
            c.backends.push_back({kv.first.Scalar(), options(kv.second), where(source, kv.first)});
        } else {
          c.backends.push_back({scalar<std::string>(source, item, "a backend name"), {}, where(source, item)});
        }
      }
    } else if (n.IsMap()) {
      for (const auto& kv : n) c.backends.push_back({kv.first.Scalar(), options(kv.second), where(source, kv.first)});
    } else {
      throw InputError(where(source, n), "backends must be a name, a list of names, or a map NAME: {OPTION: VALUE}");
    }
    if (c.backends.empty()) throw InputError(where(source, n), "no backends selected");
    for (std::size_t i = 0; i < c.backends.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (c.backends[i].name == c.backends[j].name)
          throw InputError(c.backends[i].where, "backend '" + c.backends[i].name + "' selected twice");
  }

  void calibration(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"source", "batches", "batch_size", "seed", "observer"}, "calibration");
    if (const auto s = n["source"]) {
      const auto text = scalar<std::string>(source, s, "source");
      c.calibration.source = (text == "mnist" || text == "random") ? text : path(s, "source").string();
    }
    if (const auto b = n["batches"]) c.calibration.batches = positive(b, "batches");
    if (const auto b = n["batch_size"]) c.calibration.batch_size = positive(b, "batch_size");
    if (const auto s = n["seed"]) c.calibration.seed = scalar<std::uint64_t>(source, s, "seed");
    if (const auto o = n["observer"]) {
      c.observer = scalar<std::string>(source, o, "observer");
      ObserverKind kind{};
      if (!parse(c.observer, kind)) throw InputError(where(source, o), "unknown observer kind '" + c.observer + "'");
    }
  }

  void qat(const YAML::Node& n, RunConfig& c) const {
    QatOptions q;
    if (!n.IsNull()) {
      yaml::check_keys(source, n,
                       {"steps", "epochs", "optimizer", "lr", "lr_schedule", "momentum", "weight_decay", "batch_size",
                        "freeze_bn_after", "freeze_observers_after"},
                       "qat");
      if (const auto v = n["steps"]) q.steps = positive(v, "steps");
      if (const auto v = n["epochs"]) q.epochs = positive(v, "epochs", 0);
      if (const auto v = n["optimizer"]) {
        q.optimizer = scalar<std::string>(source, v, "optimizer");
        if (q.optimizer != "sgd" && q.optimizer != "adam")
          throw InputError(where(source, v), "optimizer must be sgd or adam, not '" + q.optimizer + "'");
      }
      if (const auto v = n["lr_schedule"]) {
        q.lr_schedule = scalar<std::string>(source, v, "lr_schedule");
        if (q.lr_schedule != "cosine" && q.lr_schedule != "constant")
          throw InputError(where(source, v), "lr_schedule must be cosine or constant, not '" + q.lr_schedule + "'");
      }
      if (const auto v = n["weight_decay"]) q.weight_decay = scalar<double>(source, v, "weight_decay");
      if (const auto v = n["lr"]) q.lr = scalar<double>(source, v, "lr");
      if (q.lr <= 0) throw InputError(where(source, n["lr"]), "lr must be positive");
      if (const auto v = n["momentum"]) q.momentum = scalar<double>(source, v, "momentum");
      if (const auto v = n["batch_size"]) q.batch_size = positive(v, "batch_size");
      if (const auto v = n["freeze_bn_after"]) q.freeze_bn_after = positive(v, "freeze_bn_after", -1);
      if (const auto v = n["freeze_observers_after"])
        q.freeze_observers_after = positive(v, "freeze_observers_after", -1);
    }
    c.qat = q;
  }

  void specs(const YAML::Node& n, RunConfig& c) const {
    if (!n.IsScalar() && !n.IsSequence()) throw InputError(where(source, n), "specs must be a file or a list of files");
    const auto list = n.IsScalar() ? std::vector<YAML::Node>{n} : std::vector<YAML::Node>(n.begin(), n.end());
    for (const auto& item : list) {
      fs::path p = path(item, "a spec file");
      // In the bundled directory, "specs/zoo/x.yaml" (as written from a
      // source tree) is "zoo/x.yaml".
      fs::path as_written = scalar<std::string>(source, item, "a spec file");
      if (!as_written.empty() && *as_written.begin() == "specs") as_written = as_written.lexically_relative("specs");
      const fs::path bundled = bundled_spec_dir() / as_written;
      std::error_code ec;
      if (!fs::exists(p, ec) && fs::exists(bundled, ec)) p = bundled;
      if (!fs::exists(p, ec))
        throw InputError(where(source, item), "spec file '" + item.Scalar() + "' not found (looked for " + p.string() +
                                                  " and " + bundled.string() + ")");
      c.specs.push_back(p);
    }
  }

  void checks(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"max_steps"}, "checks");
    if (const auto v = n["max_steps"]) c.max_steps = scalar<double>(source, v, "max_steps");
    if (c.max_steps < 0) throw InputError(where(source, n["max_steps"]), "max_steps must be >= 0");
  }

  void measure(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"accuracy", "latency", "layers"}, "measure");
    if (const auto v = n["accuracy"]) c.measure_accuracy = scalar<bool>(source, v, "accuracy");
    if (const auto v = n["latency"]) c.measure_latency = scalar<bool>(source, v, "latency");
    if (const auto v = n["layers"]) c.measure_layers = scalar<bool>(source, v, "layers");
  }

  void output(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"dir", "reports"}, "output");
    if (const auto d = n["dir"]) c.output_dir = path(d, "dir");
    if (const auto r = n["reports"]) {
      c.reports.clear();
      static const std::vector<std::string> kKinds{"json", "junit", "html"};
      const auto list = r.IsScalar() ? std::vector<YAML::Node>{r} : std::vector<YAML::Node>(r.begin(), r.end());
      for (const auto& item : list) {
        const auto kind = scalar<std::string>(source, item, "a report kind");
        if (std::find(kKinds.begin(), kKinds.end(), kind) == kKinds.end()) {
          const auto best = yaml::closest(kind, kKinds);
          throw InputError(where(source, item), "unknown report kind '" + kind + "'" +
                                                    (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                                    "; expected json, junit or html");
        }
        c.reports.push_back(kind);
      }
    }
  }
};

}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& source, const fs::path& base_dir) {
  const YAML::Node root = yaml::load_text(text, source);
  RunConfig c;
  c.source = source;
  if (root.IsNull()) return c;  // an empty file: every default
  static const std::vector<std::string> kKeys{"plugins",   "model", "backends", "calibration", "qat",
                                              "overrides", "specs", "checks",   "measure",     "output"};
  yaml::check_keys(source, root, kKeys, "the config");
  const Reader r{source, base_dir};
  if (const auto n = root["plugins"]) r.plugins(n, c);
  if (const auto n = root["model"]) r.model(n, c);
  if (const auto n = root["backends"]) r.backends(n, c);
  if (const auto n = root["calibration"]) r.calibration(n, c);
  if (const auto n = root["qat"]) r.qat(n, c);
  if (const auto n = root["overrides"]) c.overrides = parse_overrides(n, source);
  if (const auto n = root["specs"]) r.specs(n, c);
  if (const auto n = root["checks"]) r.checks(n, c);
  if (const auto n = root["measure"]) r.measure(n, c);
  if (const auto n = root["output"]) r.output(n, c);
  if (c.model.empty()) throw InputError(source, "no model: add e.g. `model: zoo:mnist_cnn`");
  if (c.backends.empty()) throw InputError(source, "no backends: add e.g. `backends: [x86-int8]`");
  return c;
}

RunConfig load_run_config(const fs::path& path) {
  return parse_run_config(read_file(path, "config file"), path.string(), path.parent_path());
}

const std::string& default_config_text() {
  static const std::string text = kDefaultConfigYaml;
  return text;
}

RunConfig default_run_config() { return parse_run_config(default_config_text(), "<built-in default config>", {}); }

std::filesystem::path bundled_spec_dir() {
  return bundled_plugin_dir().parent_path().parent_path().parent_path() / "share" / "qsdk" / "specs";
}

namespace {

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

std::string to_yaml(const RunConfig& c) {
  YAML::Emitter e;
  e << YAML::Comment("merged config from " + c.source);
  e << YAML::BeginMap;
  e << YAML::Key << "plugins" << YAML::Value << YAML::BeginMap << YAML::Key << "search_paths" << YAML::Value
    << YAML::Flow << YAML::BeginSeq;
  for (const auto& p : c.plugin_search_paths) e << p.string();
  e << YAML::EndSeq << YAML::EndMap;
  e << YAML::Key << "model" << YAML::Value << YAML::BeginMap << YAML::Key << "source" << YAML::Value << c.model;
  if (!c.input_shapes.empty()) {
    e << YAML::Key << "input_shapes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& s : c.input_shapes) e << YAML::Flow << s;
    e << YAML::EndSeq;
  }
  e << YAML::Key << "seed" << YAML::Value << c.model_seed << YAML::EndMap;
  e << YAML::Key << "backends" << YAML::Value << YAML::BeginMap;
  for (const auto& b : c.backends) {
    e << YAML::Key << b.name << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto& [k, v] : b.options) e << YAML::Key << k << YAML::Value << v;
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  e << YAML::Key << "calibration" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "source" << YAML::Value << c.calibration.source;
  e << YAML::Key << "batches" << YAML::Value << c.calibration.batches;
  e << YAML::Key << "batch_size" << YAML::Value << c.calibration.batch_size;
  e << YAML::Key << "seed" << YAML::Value << c.calibration.seed;
  if (!c.observer.empty()) e << YAML::Key << "observer" << YAML::Value << c.observer;
  e << YAML::EndMap;
  if (c.qat) {
    e << YAML::Key << "qat" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "steps" << YAML::Value << c.qat->steps;
    e << YAML::Key << "epochs" << YAML::Value << c.qat->epochs;
    e << YAML::Key << "optimizer" << YAML::Value << c.qat->optimizer;
    e << YAML::Key << "lr" << YAML::Value << c.qat->lr;
    e << YAML::Key << "lr_schedule" << YAML::Value << c.qat->lr_schedule;
    e << YAML::Key << "weight_decay" << YAML::Value << c.qat->weight_decay;
    e << YAML::Key << "momentum" << YAML::Value << c.qat->momentum;
    e << YAML::Key << "batch_size" << YAML::Value << c.qat->batch_size;
    e << YAML::Key << "freeze_bn_after" << YAML::Value << c.qat->freeze_bn_after;
    e << YAML::Key << "freeze_observers_after" << YAML::Value << c.qat->freeze_observers_after;
    e << YAML::EndMap;
  }
  e << YAML::Key << "overrides" << YAML::Value << YAML::BeginSeq;
  for (const auto& o : c.overrides) {
    e << YAML::Flow << YAML::BeginMap;
    if (!o.module_glob.empty()) e << YAML::Key << "module" << YAML::Value << o.module_glob;
    if (!o.op.empty()) e << YAML::Key << "op" << YAML::Value << o.op;
    if (o.node_id >= 0) e << YAML::Key << "node" << YAML::Value << o.node_id;
    if (!o.quantize) e << YAML::Key << "quantize" << YAML::Value << false;
    if (o.activation) emit_patch(e, "activation", *o.activation);
    if (o.weight) emit_patch(e, "weight", *o.weight);
    e << YAML::EndMap;
  }
  e << YAML::EndSeq;
  e << YAML::Key << "specs" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : c.specs) e << s.string();
  e << YAML::EndSeq;
  e << YAML::Key << "checks" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "max_steps" << YAML::Value
    << c.max_steps << YAML::EndMap;
  e << YAML::Key << "measure" << YAML::Value << YAML::Flow << YAML::BeginMap;
  e << YAML::Key << "accuracy" << YAML::Value << c.measure_accuracy;
  e << YAML::Key << "latency" << YAML::Value << c.measure_latency;
  e << YAML::Key << "layers" << YAML::Value << c.measure_layers << YAML::EndMap;
  e << YAML::Key << "output" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "dir" << YAML::Value << c.output_dir.string();
  e << YAML::Key << "reports" << YAML::Value << YAML::Flow << c.reports << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace qsdk
