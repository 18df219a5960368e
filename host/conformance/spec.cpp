#include "conformance/spec.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/yaml_input.h"

namespace qsdk::conformance {
namespace {

using yaml::check_keys;
using yaml::scalar;
using yaml::where;

const std::vector<std::string> kTopKeys{"name",    "description", "model",  "pipeline",   "backends",
                                        "options", "skip",        "expect", "per_backend"};
const std::vector<std::string> kExpectKeys{"structure", "lowered", "qparams", "shared",        "bias",
                                           "numerics",  "onnx",    "engine",  "expect_failure"};
const std::vector<std::string> kEngineKeys{"run", "verify", "output", "tensors"};
const std::vector<std::string> kEngineRuns{"backend", "onnxruntime", "onnxruntime-fused"};
const std::vector<std::string> kOnnxKeys{"max_steps", "sqnr_min_db", "quantize_linear", "dequantize_linear"};
const std::vector<std::string> kStructureKeys{"counts", "present", "absent", "sequence"};
const std::vector<std::string> kQParamsKeys{"select",      "dtype", "quant_min", "quant_max",  "symmetric",
                                            "per_channel", "axis",  "scale",     "zero_point", "count"};
const std::vector<std::string> kBiasKeys{"per_channel", "max_error_steps"};
const std::vector<std::string> kNumericsKeys{"sqnr_min_db",         "sqnr_lowered_min_db", "max_steps",
                                             "kernel_max_steps",    "top1_agreement_min",  "layer_sqnr_min_db",
                                             "perplexity_ratio_max"};
const std::vector<std::string> kFailureKeys{"kind", "reason"};
const std::vector<std::string> kDTypes{"uint8", "int8", "int16", "int32"};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

struct Parser {
  std::string source;  // file name, for messages
  const LoadContext& context;

  std::string at(const YAML::Node& n) const { return where(source, n); }

  std::string backend_name(const YAML::Node& n) const {
    const auto name = scalar<std::string>(source, n, "a backend name");
    const auto best = yaml::closest(name, context.known_backends);
    require_known_backend(n, name, best.empty() ? "" : " (did you mean '" + best + "'?)");
    return name;
  }

  // Throws at `n` unless `name` is a loaded backend; `detail` follows the name.
  void require_known_backend(const YAML::Node& n, const std::string& name, const std::string& detail) const {
    const auto& known = context.known_backends;
    if (std::find(known.begin(), known.end(), name) != known.end()) return;
    throw InputError(at(n), "unknown backend '" + name + "'" + detail +
                                "; loaded backends: " + (known.empty() ? "none" : joined(known)));
  }

  // A per-option section must name an option the backend declares, with a
  // value it allows, and never "auto" (the host resolves it before a case runs).
  void check_declared_option(const YAML::Node& n, const std::string& key, const std::string& value,
                             const std::string& backend) const {
    const auto declared = context.declared_options.find(backend);
    if (declared == context.declared_options.end()) return;
    const auto& options = declared->second;
    const auto it = std::find_if(options.begin(), options.end(), [&](const BackendOption& o) { return o.name == key; });
    std::vector<std::string> names;
    for (const auto& o : options) names.push_back(o.name);
    if (it == options.end())
      throw InputError(at(n),
                       "backend '" + backend + "' has no option '" + key + "'" +
                           (names.empty() ? std::string(" (it declares none)") : "; it declares: " + joined(names)));
    if (key == kTargetOptionName && value == kTargetOptionAuto)
      throw InputError(at(n), "'" + key + "=auto' never matches: cases run with auto resolved for the machine (e.g. " +
                                  key + "=avx2)");
    if (!it->allowed.empty() && std::find(it->allowed.begin(), it->allowed.end(), value) == it->allowed.end())
      throw InputError(at(n), "option '" + key + "' of backend '" + backend + "' does not allow '" + value +
                                  "'; allowed: " + joined(it->allowed));
  }

  // "x86-int8[isa=avx2]" or "b[k1=v1,k2=v2]": a backend and option values.
  ConformanceSpec::OptionSection option_section(const YAML::Node& n, const std::string& key) const {
    const auto open = key.find('[');
    if (key.back() != ']' || open == 0)
      throw InputError(
          at(n), "a per-option section is keyed BACKEND[OPTION=VALUE,...], e.g. x86-int8[isa=avx2]; got '" + key + "'");
    ConformanceSpec::OptionSection out;
    out.where = at(n);
    out.backend = key.substr(0, open);
    require_known_backend(n, out.backend, " in '" + key + "'");
    std::stringstream items(key.substr(open + 1, key.size() - open - 2));
    std::string item;
    while (std::getline(items, item, ',')) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
        throw InputError(at(n), "in '" + key + "': '" + item + "' is not OPTION=VALUE");
      const auto key = item.substr(0, eq), value = item.substr(eq + 1);
      check_declared_option(n, key, value, out.backend);
      out.when[key] = value;
    }
    if (out.when.empty()) throw InputError(at(n), "in '" + key + "': no OPTION=VALUE between the brackets");
    return out;
  }

  std::string op_name(const YAML::Node& n) const {
    const auto op = scalar<std::string>(source, n, "an op name");
    if (op.find("::") == std::string::npos || op.rfind("::") == 0 || op.substr(op.rfind("::") + 2).empty())
      throw InputError(at(n),
                       "op names are qualified, e.g. 'aten::" + op + "' or 'quantized::" + op + "'; got '" + op + "'");
    return op;
  }

  std::vector<std::string> op_list(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence()) throw InputError(at(n), what + " must be a list of op names");
    std::vector<std::string> out;
    for (const auto& item : n) out.push_back(op_name(item));
    return out;
  }

  double number(const YAML::Node& n, const std::string& what) const { return scalar<double>(source, n, what); }
  int integer(const YAML::Node& n, const std::string& what) const { return scalar<int>(source, n, what); }

  StructureExpect structure(const YAML::Node& n, const std::string& what) const {
    check_keys(source, n, kStructureKeys, what);
    StructureExpect s;
    s.where = at(n);
    for (const auto& kv : n) {
      const auto key = kv.first.Scalar();
      const auto& v = kv.second;
      if (key == "counts") {
        if (!v.IsMap()) throw InputError(at(v), what + ".counts must be a mapping of op name to count");
        for (const auto& c : v) {
          const auto op = op_name(c.first);
          const int count = integer(c.second, "count of " + op);
          if (count < 0) throw InputError(at(c.second), "count of " + op + " must be >= 0");
          s.counts[op] = count;
        }
      } else if (key == "present") {
        s.present = op_list(v, what + ".present");
      } else if (key == "absent") {
        s.absent = op_list(v, what + ".absent");
      } else if (key == "sequence") {
        s.sequence = op_list(v, what + ".sequence");
      }
    }
    return s;
  }

  QParamsExpect qparams(const YAML::Node& n) const {
    check_keys(source, n, kQParamsKeys, "a qparams entry");
    if (!n["select"])
      throw InputError(at(n),
                       "a qparams entry needs 'select' (all_activations, all_weights, all, or a tensor label glob)");
    QParamsExpect q;
    q.where = at(n);
    for (const auto& kv : n) {
      const auto key = kv.first.Scalar();
      const auto& v = kv.second;
      if (key == "select") {
        q.select = scalar<std::string>(source, v, "select");
        if (q.select.empty()) throw InputError(at(v), "select must not be empty");
      } else if (key == "dtype") {
        q.dtype = scalar<std::string>(source, v, "dtype");
        if (std::find(kDTypes.begin(), kDTypes.end(), *q.dtype) == kDTypes.end()) {
          const auto best = yaml::closest(*q.dtype, kDTypes);
          throw InputError(at(v), "unknown dtype '" + *q.dtype + "'" +
                                      (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                      "; expected uint8, int8, int16 or int32");
        }
      } else if (key == "quant_min") {
        q.quant_min = scalar<std::int64_t>(source, v, "quant_min");
      } else if (key == "quant_max") {
        q.quant_max = scalar<std::int64_t>(source, v, "quant_max");
      } else if (key == "symmetric") {
        q.symmetric = scalar<bool>(source, v, "symmetric");
      } else if (key == "per_channel") {
        q.per_channel = scalar<bool>(source, v, "per_channel");
      } else if (key == "axis") {
        q.axis = integer(v, "axis");
      } else if (key == "scale") {
        q.scale = number(v, "scale");
        if (!(*q.scale > 0)) throw InputError(at(v), "scale must be > 0");
      } else if (key == "zero_point") {
        q.zero_point = scalar<std::int64_t>(source, v, "zero_point");
      } else if (key == "count") {
        q.count = integer(v, "count");
        if (*q.count < 0) throw InputError(at(v), "count must be >= 0");
      }
    }
    if (q.quant_min && q.quant_max && *q.quant_min >= *q.quant_max)
      throw InputError(at(n), "quant_min must be below quant_max");
    return q;
  }

  OnnxExpect onnx(const YAML::Node& n) const {
    OnnxExpect e;
    e.where = at(n);
    if (n.IsNull()) return e;  // `onnx: {}`: export, checker and encodings only
    check_keys(source, n, kOnnxKeys, "onnx");
    if (const auto v = n["max_steps"]) {
      e.max_steps = number(v, "max_steps");
      if (*e.max_steps < 0) throw InputError(at(v), "max_steps must be >= 0");
    }
    if (const auto v = n["sqnr_min_db"]) e.sqnr_min_db = number(v, "sqnr_min_db");
    if (const auto v = n["quantize_linear"]) e.quantize_linear = scalar<int>(source, v, "quantize_linear");
    if (const auto v = n["dequantize_linear"]) e.dequantize_linear = scalar<int>(source, v, "dequantize_linear");
    return e;
  }

  // `exact`, or a one-key mapping: {lsb: 1}, {sqnr_min_db: 40}, {abs: 0.01}, {rel: 0.001}.
  VerifyMode verify_mode(const YAML::Node& n) const {
    if (n.IsScalar()) return parse_verify_mode(scalar<std::string>(source, n, "a verify mode"), at(n));
    if (!n.IsMap() || n.size() != 1)
      throw InputError(at(n), "a verify mode is exact, or one of {lsb: N}, {sqnr_min_db: DB}, {abs: X}, {rel: X}");
    const auto key = n.begin()->first.Scalar();
    const std::string short_key = key == "sqnr_min_db" ? "sqnr" : key;
    return parse_verify_mode(short_key + ":" + n.begin()->second.Scalar(), at(n));
  }

  EngineExpect engine(const YAML::Node& n) const {
    EngineExpect e;
    e.where = at(n);
    if (n.IsNull()) return e;  // `engine: {}`: the backend's engine, exact
    if (n.IsScalar()) {        // `engine: exact`
      e.verify = verify_mode(n);
      return e;
    }
    check_keys(source, n, kEngineKeys, "engine");
    if (const auto v = n["run"]) {
      e.run = scalar<std::string>(source, v, "run");
      if (std::find(kEngineRuns.begin(), kEngineRuns.end(), e.run) == kEngineRuns.end())
        throw InputError(at(v), "unknown engine '" + e.run + "'; expected " + joined(kEngineRuns));
    }
    if (const auto v = n["verify"]) e.verify = verify_mode(v);
    if (const auto v = n["output"]) e.output = verify_mode(v);
    if (const auto v = n["tensors"]) {
      if (!v.IsMap()) throw InputError(at(v), "tensors maps ONNX tensor name globs to verify modes");
      for (const auto& kv : v) e.tensors.emplace_back(kv.first.Scalar(), verify_mode(kv.second));
    }
    return e;
  }

  NumericsExpect numerics(const YAML::Node& n) const {
    check_keys(source, n, kNumericsKeys, "numerics");
    NumericsExpect e;
    e.where = at(n);
    for (const auto& kv : n) {
      const auto key = kv.first.Scalar();
      const double v = number(kv.second, key);
      if (key == "sqnr_min_db") e.sqnr_min_db = v;
      if (key == "sqnr_lowered_min_db") e.sqnr_lowered_min_db = v;
      if (key == "layer_sqnr_min_db") e.layer_sqnr_min_db = v;
      if (key == "max_steps" || key == "kernel_max_steps") {
        if (v < 0) throw InputError(at(kv.second), key + " must be >= 0");
        (key == "max_steps" ? e.max_steps : e.kernel_max_steps) = v;
      }
      if (key == "top1_agreement_min") {
        if (v < 0 || v > 1) throw InputError(at(kv.second), "top1_agreement_min is a fraction in [0, 1]");
        e.top1_agreement_min = v;
      }
      if (key == "perplexity_ratio_max") {
        if (v < 1) throw InputError(at(kv.second), "perplexity_ratio_max is quantized / float perplexity, >= 1");
        e.perplexity_ratio_max = v;
      }
    }
    return e;
  }

  FailureExpect failure(const YAML::Node& n) const {
    check_keys(source, n, kFailureKeys, "expect_failure");
    FailureExpect f;
    f.where = at(n);
    if (!n["kind"]) throw InputError(at(n), "expect_failure needs 'kind' (reject or skip)");
    const auto kind = scalar<std::string>(source, n["kind"], "kind");
    if (kind == "reject")
      f.kind = FailureExpect::Kind::Reject;
    else if (kind == "skip")
      f.kind = FailureExpect::Kind::Skip;
    else
      throw InputError(at(n["kind"]),
                       "expect_failure kind must be 'reject' (the pipeline refuses the model) or "
                       "'skip' (nothing is quantized); got '" +
                           kind + "'");
    if (!n["reason"]) throw InputError(at(n), "expect_failure needs 'reason' (text the error or skip reason contains)");
    f.reason = scalar<std::string>(source, n["reason"], "reason");
    return f;
  }

  Expectations expectations(const YAML::Node& n, const std::string& what) const {
    check_keys(source, n, kExpectKeys, what);
    Expectations e;
    for (const auto& kv : n) {
      const auto key = kv.first.Scalar();
      const auto& v = kv.second;
      if (key == "structure") {
        e.structure = structure(v, "structure");
      } else if (key == "lowered") {
        e.lowered = structure(v, "lowered");
      } else if (key == "qparams") {
        if (!v.IsSequence()) throw InputError(at(v), "qparams must be a list of entries");
        for (const auto& item : v) e.qparams.push_back(qparams(item));
      } else if (key == "shared") {
        if (!v.IsSequence())
          throw InputError(at(v), "shared must be a list of groups (each a list of tensor label globs)");
        for (const auto& group : v) {
          SharedExpect s;
          s.where = at(group);
          s.tensors = yaml::string_list(source, group, "a shared group");
          if (s.tensors.size() < 2) throw InputError(at(group), "a shared group names at least two tensors");
          e.shared.push_back(s);
        }
      } else if (key == "bias") {
        check_keys(source, v, kBiasKeys, "bias");
        BiasExpect b;
        b.where = at(v);
        if (v["per_channel"]) b.per_channel = scalar<bool>(source, v["per_channel"], "per_channel");
        if (v["max_error_steps"]) b.max_error_steps = number(v["max_error_steps"], "max_error_steps");
        e.bias = b;
      } else if (key == "numerics") {
        e.numerics = numerics(v);
      } else if (key == "onnx") {
        e.onnx = onnx(v);
      } else if (key == "engine") {
        e.engine = engine(v);
      } else if (key == "expect_failure") {
        e.failure = failure(v);
      }
    }
    return e;
  }

  PipelineConfigContext pipeline_context(const std::filesystem::path& spec_file) const {
    return {source, spec_file.parent_path(), context.models_dir, context.check_model_files};
  }

  static PipelineOptions spec_defaults() {
    PipelineOptions p;
    p.calibration.batches = 2;
    p.calibration.batch_size = 4;
    p.per_layer_sqnr = true;
    p.progress = false;
    return p;
  }

  ConformanceSpec spec(const YAML::Node& root, const std::filesystem::path& file,
                       const std::string& default_name) const {
    if (!root || root.IsNull()) throw InputError(source, "empty spec file; a spec needs at least 'model'");
    check_keys(source, root, kTopKeys, "a spec");
    ConformanceSpec s;
    s.file = file;
    s.name = default_name.empty() ? file.stem().string() : default_name;
    if (root["name"]) {
      s.name = scalar<std::string>(source, root["name"], "name");
      if (s.name.empty() || s.name.find_first_of(" \t;,") != std::string::npos)
        throw InputError(at(root["name"]), "a spec name is non-empty, without spaces, ';' or ','");
    }
    if (root["description"]) s.description = scalar<std::string>(source, root["description"], "description");
    if (!root["model"]) throw InputError(at(root), "a spec needs 'model' (zoo: NAME, or file: PATH with input_shapes)");
    s.pipeline = spec_defaults();
    read_model_section(root["model"], pipeline_context(file), s.pipeline);
    if (s.pipeline.inputs.empty())  // (a zoo model has its own)
      throw InputError(at(root["model"]), "a file model needs input_shapes, e.g. [[1, 3, 224, 224]], or inputs");
    if (const auto& p = root["pipeline"]) {
      check_keys(source, p, pipeline_section_keys(), "pipeline");
      read_pipeline_sections(p, pipeline_context(file), s.pipeline);
    }
    if (root["backends"]) {
      const auto& b = root["backends"];
      if (b.IsScalar() && b.Scalar() == "all") {
        s.all_backends = true;
      } else {
        if (!b.IsSequence() || b.size() == 0)
          throw InputError(at(b), "backends must be 'all' or a non-empty list of backend names");
        s.all_backends = false;
        for (const auto& item : b) s.backends.push_back(backend_name(item));
      }
    }
    if (root["options"]) {
      const auto& o = root["options"];
      if (!o.IsMap()) throw InputError(at(o), "options must map backend names to {option: value}");
      for (const auto& kv : o) {
        const auto backend = backend_name(kv.first);
        if (!kv.second.IsMap()) throw InputError(at(kv.second), "options of " + backend + " must be a mapping");
        for (const auto& opt : kv.second)
          s.options[backend][scalar<std::string>(source, opt.first, "an option name")] =
              scalar<std::string>(source, opt.second, "an option value");
      }
    }
    if (root["skip"]) {
      const auto& o = root["skip"];
      if (!o.IsMap()) throw InputError(at(o), "skip must map backend names to a reason");
      for (const auto& kv : o) s.skip[backend_name(kv.first)] = scalar<std::string>(source, kv.second, "a skip reason");
    }
    if (root["expect"]) s.expect = expectations(root["expect"], "expect");
    if (root["per_backend"]) {
      const auto& o = root["per_backend"];
      if (!o.IsMap()) throw InputError(at(o), "per_backend must map backend names to expectations");
      for (const auto& kv : o) {
        const auto key = scalar<std::string>(source, kv.first, "a backend name");
        if (key.find('[') != std::string::npos) {
          ConformanceSpec::OptionSection section = option_section(kv.first, key);
          section.expect = expectations(kv.second, "per_backend." + key);
          if (!s.all_backends && std::find(s.backends.begin(), s.backends.end(), section.backend) == s.backends.end())
            throw InputError(at(kv.first),
                             "per_backend names " + section.backend + ", which is not in this spec's backends");
          s.per_option.push_back(std::move(section));
          continue;
        }
        const auto backend = backend_name(kv.first);
        s.per_backend[backend] = expectations(kv.second, "per_backend." + backend);
        s.per_backend_where[backend] = at(kv.first);
        if (!s.all_backends && std::find(s.backends.begin(), s.backends.end(), backend) == s.backends.end())
          throw InputError(at(kv.first), "per_backend names " + backend + ", which is not in this spec's backends");
      }
    }
    return s;
  }
};

}  // namespace

bool ConformanceSpec::applies_to(const std::string& backend) const {
  return all_backends || std::find(backends.begin(), backends.end(), backend) != backends.end();
}

namespace {

// `from` merged into `e` (see ConformanceSpec::expectations_for).
void merge_expectations(Expectations& e, const Expectations& b) {
  auto merge_structure = [](std::optional<StructureExpect>& into, const std::optional<StructureExpect>& from) {
    if (!from) return;
    if (!into) {
      into = from;
      return;
    }
    for (const auto& [op, n] : from->counts) into->counts[op] = n;
    if (!from->present.empty()) into->present = from->present;
    if (!from->absent.empty()) into->absent = from->absent;
    if (!from->sequence.empty()) into->sequence = from->sequence;
    into->where = from->where;
  };
  merge_structure(e.structure, b.structure);
  merge_structure(e.lowered, b.lowered);
  if (!b.qparams.empty()) e.qparams = b.qparams;
  if (!b.shared.empty()) e.shared = b.shared;
  if (b.bias) e.bias = b.bias;
  if (b.numerics) {
    // Bounds merge one by one: a backend's own floor keeps the common others.
    if (!e.numerics) e.numerics = NumericsExpect{};
    auto& n = *e.numerics;
    const auto& o = *b.numerics;
    if (o.sqnr_min_db) n.sqnr_min_db = o.sqnr_min_db;
    if (o.sqnr_lowered_min_db) n.sqnr_lowered_min_db = o.sqnr_lowered_min_db;
    if (o.max_steps) n.max_steps = o.max_steps;
    if (o.kernel_max_steps) n.kernel_max_steps = o.kernel_max_steps;
    if (o.top1_agreement_min) n.top1_agreement_min = o.top1_agreement_min;
    if (o.layer_sqnr_min_db) n.layer_sqnr_min_db = o.layer_sqnr_min_db;
    if (o.perplexity_ratio_max) n.perplexity_ratio_max = o.perplexity_ratio_max;
    n.where = o.where;
  }
  if (b.onnx) {
    if (!e.onnx) e.onnx = OnnxExpect{};
    auto& n = *e.onnx;
    const auto& o = *b.onnx;
    if (o.max_steps) n.max_steps = o.max_steps;
    if (o.sqnr_min_db) n.sqnr_min_db = o.sqnr_min_db;
    if (o.quantize_linear) n.quantize_linear = o.quantize_linear;
    if (o.dequantize_linear) n.dequantize_linear = o.dequantize_linear;
    n.where = o.where;
  }
  if (b.engine) e.engine = b.engine;
  if (b.failure) e.failure = b.failure;
}

}  // namespace

VerifyMode parse_verify_mode(const std::string& text, const std::string& where) {
  const std::string usage = "a verify mode is exact, lsb:N, sqnr:DB, abs:X or rel:X";
  if (text == "exact") return {};
  const auto colon = text.find(':');
  if (colon == std::string::npos) throw InputError(where, "unknown verify mode '" + text + "'; " + usage);
  const std::string kind = text.substr(0, colon), number_text = text.substr(colon + 1);
  VerifyMode m;
  if (kind == "lsb")
    m.kind = VerifyMode::Kind::Lsb;
  else if (kind == "sqnr")
    m.kind = VerifyMode::Kind::Sqnr;
  else if (kind == "abs")
    m.kind = VerifyMode::Kind::Absolute;
  else if (kind == "rel")
    m.kind = VerifyMode::Kind::Relative;
  else
    throw InputError(where, "unknown verify mode '" + kind + "'; " + usage);
  std::size_t used = 0;
  try {
    m.value = std::stod(number_text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != number_text.size() || !std::isfinite(m.value) ||
      (m.kind != VerifyMode::Kind::Sqnr && m.value < 0))
    throw InputError(where, "verify mode " + kind + " needs a number" +
                                (m.kind == VerifyMode::Kind::Sqnr ? "" : " >= 0") + ", got '" + number_text + "'");
  return m;
}

void check_engine_only(ConformanceSpec& spec, EngineExpect engine) {
  engine.only = true;
  spec.expect = Expectations{};
  spec.expect.engine = std::move(engine);
  spec.per_backend.clear();
  spec.per_backend_where.clear();
  spec.per_option.clear();
  spec.all_backends = true;
}

std::string VerifyMode::spec_text() const {
  std::ostringstream s;
  s.precision(17);
  switch (kind) {
    case Kind::Exact: return "exact";
    case Kind::Lsb: s << "lsb:"; break;
    case Kind::Sqnr: s << "sqnr:"; break;
    case Kind::Absolute: s << "abs:"; break;
    case Kind::Relative: s << "rel:"; break;
  }
  s << value;
  return s.str();
}

std::string VerifyMode::text() const {
  std::ostringstream s;
  switch (kind) {
    case Kind::Exact: return "exact";
    case Kind::Lsb: s << "<= " << value << " LSB"; break;
    case Kind::Sqnr: s << ">= " << value << " dB SQNR"; break;
    case Kind::Absolute: s << "|diff| <= " << value; break;
    case Kind::Relative: s << "|diff| / max|ref| <= " << value; break;
  }
  return s.str();
}

Expectations ConformanceSpec::expectations_for(const std::string& backend, const BackendOptions& options) const {
  Expectations e = expect;
  if (const auto it = per_backend.find(backend); it != per_backend.end()) merge_expectations(e, it->second);
  for (const auto& section : per_option) {
    if (section.backend != backend) continue;
    bool holds = true;
    for (const auto& [key, value] : section.when) {
      const auto it = options.find(key);
      holds = holds && it != options.end() && it->second == value;
    }
    if (holds) merge_expectations(e, section.expect);
  }
  return e;
}

ConformanceSpec parse_spec(const std::string& text, const std::filesystem::path& file, const LoadContext& context,
                           const std::string& default_name) {
  const Parser parser{file.string(), context};
  const YAML::Node root = yaml::load_text(text, file.string());
  ConformanceSpec s = parser.spec(root, file, default_name);
  s.text = text;
  return s;
}

ConformanceSpec load_spec(const std::filesystem::path& file, const LoadContext& context,
                          const std::string& default_name) {
  return parse_spec(read_file(file, "spec file"), file, context, default_name);
}

std::vector<SpecFile> find_spec_files(const std::vector<std::filesystem::path>& paths,
                                      const std::filesystem::path& exclude) {
  namespace fs = std::filesystem;
  std::vector<SpecFile> out;
  std::error_code ex_ec;
  const auto excluded = exclude.empty() ? fs::path() : fs::weakly_canonical(exclude, ex_ec);
  auto is_excluded = [&](const fs::path& p) {
    if (excluded.empty()) return false;
    std::error_code e;
    const auto c = fs::weakly_canonical(p, e);
    const auto rel = c.lexically_relative(excluded);
    return !rel.empty() && *rel.begin() != "..";
  };
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::exists(p, ec)) throw InputError(p.string(), "no such spec file or directory");
    if (!fs::is_directory(p, ec)) {
      out.push_back({p, p.stem().string()});
      continue;
    }
    std::vector<SpecFile> found;
    for (const auto& entry : fs::recursive_directory_iterator(p)) {
      if (!entry.is_regular_file()) continue;
      const auto ext = entry.path().extension().string();
      if (ext != ".yaml" && ext != ".yml") continue;
      if (entry.path().filename().string().front() == '.') continue;
      if (is_excluded(entry.path())) continue;
      auto rel = fs::relative(entry.path(), p);
      rel.replace_extension();
      found.push_back({entry.path(), rel.generic_string()});
    }
    std::sort(found.begin(), found.end(),
              [](const SpecFile& a, const SpecFile& b) { return a.default_name < b.default_name; });
    if (found.empty()) throw InputError(p.string(), "no spec files (*.yaml, *.yml) in this directory");
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::vector<ConformanceSpec> load_specs(const std::vector<std::filesystem::path>& paths, const LoadContext& context,
                                        const std::filesystem::path& exclude) {
  std::vector<ConformanceSpec> specs;
  std::map<std::string, std::string> seen;  // name -> file
  for (const auto& f : find_spec_files(paths, exclude)) {
    ConformanceSpec s = load_spec(f.path, context, f.default_name);
    if (const auto it = seen.find(s.name); it != seen.end())
      throw InputError(f.path.string(), "spec name '" + s.name + "' is already used by " + it->second);
    seen[s.name] = f.path.string();
    specs.push_back(std::move(s));
  }
  return specs;
}

std::filesystem::path resolve_models_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("QSDK_MODELS_DIR"); env && *env) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "models";
  return exe.parent_path().parent_path() / "models";
}

}  // namespace qsdk::conformance
