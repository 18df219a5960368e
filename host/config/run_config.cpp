#include "config/run_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/yaml_input.h"
#include "config/default_config.h"
#include "pipeline/pipeline_config.h"
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
    return yaml::absolute_path(source, n, what, base_dir);
  }

  void plugins(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"search_paths"}, "plugins");
    if (const auto paths = n["search_paths"]) {
      if (!paths.IsSequence()) throw InputError(where(source, paths), "search_paths must be a list of directories");
      for (const auto& p : paths) c.plugin_search_paths.push_back(path(p, "a search path"));
    }
  }

  BackendOptions options(const YAML::Node& n) const {
    BackendOptions out;
    if (!n || n.IsNull()) return out;
    if (!n.IsMap()) throw InputError(where(source, n), "backend options must be a mapping of OPTION: VALUE");
    for (const auto& kv : n) out[kv.first.Scalar()] = scalar<std::string>(source, kv.second, kv.first.Scalar());
    return out;
  }

  // NAME: {OPTION: VALUE}, or a composition a+b: {a: {OPTION: VALUE}, b: {...}}.
  BackendSelection selection(const YAML::Node& key, const YAML::Node& value) const {
    BackendSelection s = backend_selection(scalar<std::string>(source, key, "a backend name"), where(source, key));
    if (s.backends.size() == 1) {
      s.backends[0].options = options(value);
      return s;
    }
    if (!value || value.IsNull()) return s;
    if (!value.IsMap())
      throw InputError(where(source, value), "the options of a composition " + s.name +
                                                 " map each member to its options, e.g. {" + s.backends[0].name +
                                                 ": {OPTION: VALUE}}");
    for (const auto& kv : value) {
      const auto member = scalar<std::string>(source, kv.first, "a backend name");
      auto it =
          std::find_if(s.backends.begin(), s.backends.end(), [&](const BackendChoice& b) { return b.name == member; });
      if (it == s.backends.end())
        throw InputError(where(source, kv.first), "'" + member + "' is not a member of the composition " + s.name);
      it->options = options(kv.second);
      it->where = where(source, kv.first);
    }
    return s;
  }

  void backends(const YAML::Node& n, RunConfig& c) const {
    if (n.IsScalar()) {
      c.backends.push_back(selection(n, YAML::Node()));
    } else if (n.IsSequence()) {
      for (const auto& item : n) {
        if (item.IsMap()) {  // - {x86-int8: {...}}
          for (const auto& kv : item) c.backends.push_back(selection(kv.first, kv.second));
        } else {
          c.backends.push_back(selection(item, YAML::Node()));
        }
      }
    } else if (n.IsMap()) {
      for (const auto& kv : n) c.backends.push_back(selection(kv.first, kv.second));
    } else {
      throw InputError(where(source, n), "backends must be a name, a list of names, or a map NAME: {OPTION: VALUE}");
    }
    if (c.backends.empty()) throw InputError(where(source, n), "no backends selected");
    for (std::size_t i = 0; i < c.backends.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (c.backends[i].name == c.backends[j].name)
          throw InputError(c.backends[i].where, "backend '" + c.backends[i].name + "' selected twice");
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

  // A name or a list of names, each one of `allowed` ("did you mean" otherwise).
  std::vector<std::string> names(const YAML::Node& n, const std::vector<std::string>& allowed, const std::string& what,
                                 const std::string& expected) const {
    const auto list = n.IsScalar() ? std::vector<YAML::Node>{n} : std::vector<YAML::Node>(n.begin(), n.end());
    std::vector<std::string> out;
    for (const auto& item : list) {
      const auto name = scalar<std::string>(source, item, "a " + what);
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        const auto best = yaml::closest(name, allowed);
        throw InputError(where(source, item), "unknown " + what + " '" + name + "'" +
                                                  (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                                  "; expected " + expected);
      }
      out.push_back(name);
    }
    return out;
  }

  void output(const YAML::Node& n, RunConfig& c) const {
    yaml::check_keys(source, n, {"dir", "reports", "formats"}, "output");
    if (const auto f = n["formats"]) {
      auto formats = names(f, kOutputFormats, "output format", "torchscript, onnx or encodings");
      if (const auto problem = formats_problem(formats); !problem.empty()) throw InputError(where(source, f), problem);
      c.pipeline.formats = std::move(formats);
    }
    if (const auto d = n["dir"]) c.output_dir = path(d, "dir");
    if (const auto r = n["reports"])
      c.reports = names(r, {"json", "junit", "html"}, "report kind", "json, junit or html");
  }
};

}  // namespace

BackendSelection backend_selection(const std::string& name, const std::string& where) {
  BackendSelection s{name, {}, where};
  std::size_t start = 0;
  while (true) {
    const auto plus = name.find('+', start);
    const auto member = name.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    if (member.empty()) throw InputError(where, "'" + name + "': an empty backend name in the composition");
    for (const auto& b : s.backends)
      if (b.name == member) throw InputError(where, "'" + name + "' composes backend '" + member + "' twice");
    s.backends.push_back({member, {}, where});
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return s;
}

PipelineOptions RunConfig::pipeline_for(const BackendSelection& run) const {
  PipelineOptions o = pipeline;
  o.backends = run.backends;
  return o;
}

RunConfig parse_run_config(const std::string& text, const std::string& source, const fs::path& base_dir) {
  const YAML::Node root = yaml::load_text(text, source);
  RunConfig c;
  c.source = source;
  // A run measures everything by default; a spec only what it checks.
  c.pipeline.measure_accuracy = c.pipeline.measure_latency = c.pipeline.per_layer_sqnr = true;
  if (root.IsNull()) return c;  // an empty file: every default
  std::vector<std::string> keys{"plugins", "model", "backends", "specs", "output"};
  for (const auto& k : pipeline_section_keys()) keys.push_back(k);
  yaml::check_keys(source, root, keys, "the config");
  const Reader r{source, base_dir};
  const PipelineConfigContext context{source, base_dir, {}, true};
  if (const auto n = root["plugins"]) r.plugins(n, c);
  if (const auto n = root["model"]) read_model_section(n, context, c.pipeline);
  if (const auto n = root["backends"]) r.backends(n, c);
  read_pipeline_sections(root, context, c.pipeline);
  if (const auto n = root["specs"]) r.specs(n, c);
  if (const auto n = root["output"]) r.output(n, c);
  if (c.pipeline.model.empty()) throw InputError(source, "no model: add e.g. `model: zoo:mnist_cnn`");
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

std::string to_yaml(const RunConfig& c) {
  YAML::Emitter e;
  e << YAML::Comment("merged config from " + c.source);
  e << YAML::BeginMap;
  e << YAML::Key << "plugins" << YAML::Value << YAML::BeginMap << YAML::Key << "search_paths" << YAML::Value
    << YAML::Flow << YAML::BeginSeq;
  for (const auto& p : c.plugin_search_paths) e << p.string();
  e << YAML::EndSeq << YAML::EndMap;
  const PipelineOptions& o = c.pipeline;
  e << YAML::Key << "model" << YAML::Value << YAML::BeginMap << YAML::Key << "source" << YAML::Value << o.model;
  const bool typed = std::any_of(o.inputs.begin(), o.inputs.end(), [](const InputSpec& in) { return in.is_integer(); });
  if (!o.inputs.empty() && !typed) {
    e << YAML::Key << "input_shapes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& in : o.inputs) e << YAML::Flow << in.shape;
    e << YAML::EndSeq;
  } else if (typed) {
    e << YAML::Key << "inputs" << YAML::Value << YAML::BeginSeq;
    for (const auto& in : o.inputs) {
      e << YAML::Flow << YAML::BeginMap << YAML::Key << "shape" << YAML::Value << YAML::Flow << in.shape;
      e << YAML::Key << "dtype" << YAML::Value << dtype_name(in.dtype);
      if (in.has_range())
        e << YAML::Key << "range" << YAML::Value << YAML::Flow << std::vector<std::int64_t>{in.low, in.high};
      e << YAML::EndMap;
    }
    e << YAML::EndSeq;
  }
  e << YAML::Key << "seed" << YAML::Value << o.model_seed << YAML::EndMap;
  e << YAML::Key << "backends" << YAML::Value << YAML::BeginMap;
  for (const auto& b : c.backends) {
    e << YAML::Key << b.name << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto& member : b.backends) {
      if (b.backends.size() > 1) e << YAML::Key << member.name << YAML::Value << YAML::Flow << YAML::BeginMap;
      for (const auto& [k, v] : member.options) e << YAML::Key << k << YAML::Value << v;
      if (b.backends.size() > 1) e << YAML::EndMap;
    }
    e << YAML::EndMap;
  }
  e << YAML::EndMap;
  emit_pipeline_sections(e, o);
  e << YAML::Key << "specs" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : c.specs) e << s.string();
  e << YAML::EndSeq;
  e << YAML::Key << "output" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "dir" << YAML::Value << c.output_dir.string();
  e << YAML::Key << "reports" << YAML::Value << YAML::Flow << c.reports;
  e << YAML::Key << "formats" << YAML::Value << YAML::Flow << c.pipeline.formats << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace qsdk
