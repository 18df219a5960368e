#include "pipeline/measurements_json.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "common/error.h"

namespace qsdk {
namespace {

using json = nlohmann::json;

// Keys of the document (besides `details`) the manifest leaves out.
const char* const kNotInManifest[] = {"measurements_version", "backend", "latency_ms", "seconds", "stages"};

json nodes_json(const std::vector<NodeRecord>& nodes) {
  json out = json::array();
  for (const auto& n : nodes) {
    json j{{"id", n.id}, {"op", n.op}, {"module", n.module}};
    if (!n.near.empty()) j["near"] = n.near;
    out.push_back(j);
  }
  return out;
}

std::vector<NodeRecord> nodes_from(const json& j) {
  std::vector<NodeRecord> out;
  for (const auto& n : j)
    out.push_back({n.at("id").get<int>(), n.at("op").get<std::string>(), n.value("module", std::string()),
                   n.value("near", std::string())});
  return out;
}

json qat_json(const QatOptions& q, const std::vector<double>& losses) {
  return {{"steps", q.steps},
          {"epochs", q.epochs},
          {"optimizer", q.optimizer},
          {"lr", q.lr},
          {"lr_schedule", q.lr_schedule},
          {"momentum", q.momentum},
          {"weight_decay", q.weight_decay},
          {"batch_size", q.batch_size},
          {"freeze_bn_after", q.freeze_bn_after},
          {"freeze_observers_after", q.freeze_observers_after},
          {"final_loss", json_number(losses.empty() ? 0.0 : losses.back())}};
}

QatOptions qat_from(const json& j) {
  QatOptions q;
  q.steps = j.at("steps").get<int>();
  q.epochs = j.value("epochs", q.epochs);
  q.optimizer = j.value("optimizer", q.optimizer);
  q.lr = number_of(j.at("lr"));
  q.lr_schedule = j.value("lr_schedule", q.lr_schedule);
  q.momentum = number_of(j.at("momentum"));
  q.weight_decay = number_of(j.value("weight_decay", json(0.0)));
  q.batch_size = j.at("batch_size").get<int>();
  q.freeze_bn_after = j.at("freeze_bn_after").get<int>();
  q.freeze_observers_after = j.at("freeze_observers_after").get<int>();
  return q;
}

json qparams_record_json(const QParamsRecord& s) {
  json j{{"slot", s.slot},   {"kind", s.kind},           {"label", s.label},
         {"dtype", s.dtype}, {"quant_min", s.quant_min}, {"quant_max", s.quant_max}};
  if (!s.scale.empty()) {
    j["scale"] = s.scale;
    j["zero_point"] = s.zero_point;
    if (s.axis) j["axis"] = *s.axis;
  }
  return j;
}

json layer_json(const LayerSqnr& l) {
  return {{"node", l.node}, {"module", l.module_path}, {"op", l.op}, {"sqnr_db", json_number(l.sqnr_db)}};
}

}  // namespace

json json_number(double v) {
  if (std::isinf(v)) return v > 0 ? json("inf") : json("-inf");
  if (std::isnan(v)) return json("nan");
  return v;
}

double number_of(const json& v, double fallback) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  return fallback;
}

bool Measurements::lowering_agrees(double max_steps, double min_noise_margin_db) const {
  // Steps come from dequantized floats: one step can read as 1.00001.
  if (!lowered || !lowered->first_over_limit.empty()) return !lowered;
  return lowered->max_difference_steps <= max_steps + 1e-3 || lowered->noise_margin_db >= min_noise_margin_db ||
         sqnr_db - lowered->sqnr_db_lowered <= kMaxLoweredSqnrLossDb;
}

std::string Measurements::onnx_problem(double max_steps, double min_noise_margin_db) const {
  if (!onnx) return "";
  if (!onnx->encodings_problems.empty())
    return "encodings.json does not match model.onnx: " + onnx->encodings_problems.front();
  for (const auto& r : onnx->runtime)
    if (r.steps_bound && r.output_scale > 0 && r.max_steps > max_steps + 1e-3 &&
        r.noise_margin_db < min_noise_margin_db) {  // a float output is judged by SQNR (specs)
      std::ostringstream s;
      s << "ONNX Runtime (optimization " << (r.optimized ? "all" : "disabled") << ") differs from the reference by "
        << r.max_steps << " output quantization steps (limit " << max_steps << "), " << r.noise_margin_db
        << " dB below the quantization noise (limit " << min_noise_margin_db << ")";
      return s.str();
    }
  return "";
}

std::string onnx_summary(const OnnxMeasurements& o) {
  std::ostringstream s;
  s << "onnx:           " << o.nodes << " nodes (" << o.quantize_linear << " QuantizeLinear, " << o.dequantize_linear
    << " DequantizeLinear), " << o.size_bytes << " bytes; checker and shape inference passed\n";
  if (!o.runtime_skipped.empty()) s << "onnx runtime:   not run: " << o.runtime_skipped << "\n";
  for (const auto& r : o.runtime) {
    s << "onnx runtime:   optimization " << (r.optimized ? "all:      " : "disabled: ") << r.max_steps
      << (r.output_scale > 0 ? " output steps" : " (absolute)") << " from the reference, SQNR " << r.sqnr_db << " dB";
    if (!r.optimized && r.tensors_checked)
      s << "; " << r.tensors_checked << " quantized tensors, worst " << r.worst_tensor_steps << " steps ("
        << r.worst_tensor << ")";
    s << "\n";
  }
  if (!o.encodings_problems.empty())
    s << "encodings:      " << o.encodings_problems.size() << " problems, first: " << o.encodings_problems.front()
      << "\n";
  return s.str();
}

std::string engine_summary(const EngineAgreement& e) {
  std::ostringstream s;
  s << "engine:         " << e.engine << ": ";
  if (!e.unsupported.empty()) return (s << "did not run this model: " << e.unsupported << "\n"), s.str();
  if (!e.error.empty()) return (s << "failed: " << e.error << "\n"), s.str();
  std::size_t exact = 0, returned = 0;
  std::int64_t worst = 0;
  for (const auto& t : e.tensors)
    if (t.returned) {
      ++returned;
      exact += t.max_lsb == 0;
      worst = std::max(worst, t.max_lsb);
    }
  s << exact << " of " << returned << " quantized tensors exact (worst " << worst << " LSB), output ";
  if (e.output.max_lsb >= 0)
    s << e.output.max_lsb << " LSB";
  else
    s << "within " << e.output.max_abs;
  if (!e.first_divergent.empty()) s << "; first divergence: " << e.first_divergent;
  s << "\n";
  return s.str();
}

namespace {

int count_decisions(const std::vector<NodeDecision>& decisions, const std::string& status, bool bookkeeping) {
  return static_cast<int>(std::count_if(decisions.begin(), decisions.end(), [&](const NodeDecision& d) {
    return d.status == status && d.bookkeeping == bookkeeping;
  }));
}

}  // namespace

int Measurements::quantized_ops() const { return count_decisions(decisions, "quantized", false); }

std::string stages_summary(const std::vector<Measurements::Stage>& stages) {
  std::ostringstream out;
  out << std::fixed;
  for (const auto& st : stages)
    out << (out.tellp() > 0 ? ", " : "") << st.name << " " << std::setprecision(1) << st.seconds << " s ("
        << std::setprecision(2) << st.peak_rss_mb / 1024.0 << " GB)";
  return out.str();
}

int Measurements::float_tensor_ops() const { return count_decisions(decisions, "float", false); }

int Measurements::bookkeeping_ops() const { return count_decisions(decisions, "float", true); }

namespace {

json onnx_json(const OnnxMeasurements& o) {
  json j{{"size_bytes", o.size_bytes},
         {"nodes", o.nodes},
         {"quantize_linear", o.quantize_linear},
         {"dequantize_linear", o.dequantize_linear},
         {"encodings_problems", o.encodings_problems},
         {"runtime", json::array()}};
  if (!o.runtime_skipped.empty()) j["runtime_skipped"] = o.runtime_skipped;
  for (const auto& r : o.runtime) {
    json run{{"optimization", r.optimized ? "all" : "disabled"},
             {"output_scale", json_number(r.output_scale)},
             {"max_steps", json_number(r.max_steps)},
             {"noise_margin_db", json_number(r.noise_margin_db)},
             {"sqnr_db", json_number(r.sqnr_db)},
             {"steps_bound", r.steps_bound}};
    if (!r.optimized) {
      run["tensors_checked"] = r.tensors_checked;
      run["worst_tensor_steps"] = json_number(r.worst_tensor_steps);
      run["worst_tensor"] = r.worst_tensor;
    }
    j["runtime"].push_back(run);
  }
  return j;
}

OnnxMeasurements onnx_from(const json& j) {
  OnnxMeasurements o;
  o.size_bytes = j.at("size_bytes").get<std::uintmax_t>();
  o.nodes = j.at("nodes").get<int>();
  o.quantize_linear = j.at("quantize_linear").get<int>();
  o.dequantize_linear = j.at("dequantize_linear").get<int>();
  o.encodings_problems = j.value("encodings_problems", std::vector<std::string>{});
  o.runtime_skipped = j.value("runtime_skipped", std::string());
  for (const auto& r : j.at("runtime")) {
    OnnxRuntimeAgreement a;
    a.optimized = r.at("optimization").get<std::string>() == "all";
    a.output_scale = number_of(r.at("output_scale"));
    a.max_steps = number_of(r.at("max_steps"));
    a.sqnr_db = number_of(r.at("sqnr_db"));
    a.noise_margin_db = number_of(r.value("noise_margin_db", json(0.0)));
    a.steps_bound = r.value("steps_bound", true);
    a.tensors_checked = r.value("tensors_checked", std::size_t{0});
    a.worst_tensor_steps = number_of(r.value("worst_tensor_steps", json(0.0)));
    a.worst_tensor = r.value("worst_tensor", std::string());
    o.runtime.push_back(a);
  }
  return o;
}

json engine_tensor_json(const EngineTensorAgreement& t) {
  return {{"tensor", t.tensor},
          {"source", t.source},
          {"op", t.op},
          {"op_type", t.op_type},
          {"reference", t.reference},
          {"returned", t.returned},
          {"elements", t.elements},
          {"mismatched", t.mismatched},
          {"chain_max_lsb", t.chain_max_lsb},
          {"max_lsb", t.max_lsb},
          {"max_abs", json_number(t.max_abs)},
          {"max_rel", json_number(t.max_rel)},
          {"sqnr_db", json_number(t.sqnr_db)}};
}

EngineTensorAgreement engine_tensor_from(const json& j) {
  EngineTensorAgreement t;
  t.tensor = j.at("tensor").get<std::string>();
  t.source = j.value("source", std::string());
  t.op = j.value("op", std::string());
  t.op_type = j.value("op_type", std::string());
  t.reference = j.value("reference", std::string());
  t.returned = j.value("returned", true);
  t.elements = j.value("elements", std::size_t{0});
  t.mismatched = j.value("mismatched", std::size_t{0});
  t.max_lsb = j.value("max_lsb", std::int64_t{0});
  t.chain_max_lsb = j.value("chain_max_lsb", t.max_lsb);
  t.max_abs = number_of(j.value("max_abs", json(0.0)));
  t.max_rel = number_of(j.value("max_rel", json(0.0)));
  t.sqnr_db = number_of(j.value("sqnr_db", json(0.0)));
  return t;
}

json engine_json(const EngineAgreement& e) {
  json j{{"engine", e.engine}, {"arithmetic", e.arithmetic}, {"samples", e.samples}};
  if (!e.unsupported.empty()) j["unsupported"] = e.unsupported;
  if (!e.error.empty()) j["error"] = e.error;
  if (!e.ran()) return j;
  j["output"] = engine_tensor_json(e.output);
  j["tensors"] = json::array();
  for (const auto& t : e.tensors) j["tensors"].push_back(engine_tensor_json(t));
  if (!e.first_divergent.empty()) j["first_divergent"] = e.first_divergent;
  if (!e.replay.empty()) j["replay"] = json::parse(e.replay);
  if (!e.replay_file.empty()) j["replay_file"] = e.replay_file;
  return j;
}

EngineAgreement engine_from(const json& j) {
  EngineAgreement e;
  e.engine = j.at("engine").get<std::string>();
  e.arithmetic = j.value("arithmetic", std::string());
  e.samples = j.value("samples", std::size_t{0});
  e.unsupported = j.value("unsupported", std::string());
  e.error = j.value("error", std::string());
  if (j.contains("output")) e.output = engine_tensor_from(j["output"]);
  for (const auto& t : j.value("tensors", json::array())) e.tensors.push_back(engine_tensor_from(t));
  e.first_divergent = j.value("first_divergent", std::string());
  if (j.contains("replay")) e.replay = j["replay"].dump();
  e.replay_file = j.value("replay_file", std::string());
  return e;
}

// Everything but `details`: what the projections are cut from, without
// building the per-node records they leave out.
json core_json(const Measurements& m) {
  const RunRecord& r = m.run;
  json j;
  j["measurements_version"] = kMeasurementsVersion;
  j["backend"] = m.backend;
  j["backends"] = json::array();
  for (std::size_t i = 0; i < r.backends.size(); ++i) {
    const auto& b = r.backends[i];
    json bj{{"name", b.name},
            {"version", b.version},
            {"vendor", b.vendor},
            {"rule_hash", b.rule_hash},
            {"plugin_abi_version", b.plugin_abi_version},
            {"plugin_file", b.plugin_file}};
    // The first backend's options are `backend_options`; composed ones say their own.
    if (r.backends.size() > 1) bj["options"] = b.options;
    j["backends"].push_back(bj);
  }
  j["backend_options"] = r.backends.empty() ? BackendOptions{} : r.backends.front().options;
  json target{{"cpu_features", r.target.cpu_features},
              {"onednn_isa", r.target.onednn_isa},
              {"onednn_max_cpu_isa", r.target.onednn_max_cpu_isa},
              {"int8_isa", r.target.int8_isa}};
  for (const auto& [option, c] : r.target.choices)
    target["choices"][option] = {{"requested", c.requested}, {"chosen", c.chosen}};
  j["target"] = target;
  j["model"] = {{"source", r.model_source}, {"input_shapes", r.input_shapes}, {"fingerprint", r.model_fingerprint}};
  j["mode"] = r.qat ? "qat" : "ptq";
  j["calibration"] = {{"source", r.calibration_source},
                      {"batches", r.calibration_batches},
                      {"batch_size", r.calibration_batch_size},
                      {"seed", r.calibration_seed},
                      {"fingerprint", r.calibration_fingerprint}};
  if (r.qat) j["qat"] = qat_json(*r.qat, m.qat_losses);
  j["versions"] = {{"qsdk", r.qsdk_version}, {"sdk_abi", r.sdk_abi_version}, {"libtorch", r.libtorch_version}};
  const auto& c = m.conversion;
  j["conversion"] = {{"folded_batch_norms", c.folded_batch_norms}, {"quantized_activations", c.quantized_activations},
                     {"quantized_weights", c.quantized_weights},   {"quantized_biases", c.quantized_biases},
                     {"dynamic_inputs", c.dynamic_inputs},         {"standalone_batch_norms", c.notes}};
  // Op counts of the annotation; float tensor ops apart from shape/scalar bookkeeping.
  j["ops"] = {{"quantized", m.quantized_ops()},
              {"float", m.float_tensor_ops()},
              {"bookkeeping", m.bookkeeping_ops()},
              {"total", m.decisions.size()}};
  j["sqnr_db"] = json_number(m.sqnr_db);
  j["size_bytes"] = {{"float", m.float_size}, {"quantized", m.quantized_size}};
  j["qparams"] = qparams_json(m.qparams);
  json lowering{{"target", m.lowering_target}};
  if (m.lowered) {
    const auto& l = *m.lowered;
    lowering["lowered_ops"] = l.lowered_ops;
    lowering["output_scale"] = json_number(l.output_scale);
    lowering["max_difference_steps"] = json_number(l.max_difference_steps);
    lowering["mean_difference_steps"] = json_number(l.mean_difference_steps);
    lowering["noise_margin_db"] = json_number(l.noise_margin_db);
    lowering["sqnr_db_lowered"] = json_number(l.sqnr_db_lowered);
    lowering["op_by_op"] = {{"checked", l.kernels_checked}, {"skipped", l.kernels_skipped}};
    if (!l.first_over_limit.empty()) lowering["op_by_op"]["first_over_limit"] = l.first_over_limit;
    if (!l.most_differing_kernel.empty()) {
      lowering["op_by_op"]["most_differing"] = l.most_differing_kernel;
      lowering["op_by_op"]["most_differing_fraction"] = json_number(l.most_differing_fraction);
    }
  }
  j["lowering"] = lowering;
  if (m.accuracy)
    j["accuracy"] = {{"float_top1", m.accuracy->float_top1},
                     {"quantized_top1", m.accuracy->quantized_top1},
                     {"agreement", m.accuracy->agreement},
                     {"samples", m.accuracy->samples}};
  if (!m.output_warning.empty()) j["output_warning"] = m.output_warning;
  if (m.accuracy && m.accuracy->float_perplexity) {
    j["accuracy"]["float_perplexity"] = *m.accuracy->float_perplexity;
    j["accuracy"]["quantized_perplexity"] = m.accuracy->quantized_perplexity.value_or(0.0);
  }
  if (m.latency) j["latency_ms"] = {{"float", m.latency->float_ms}, {"int8", m.latency->int8_ms}};
  if (m.mixed_precision) {
    const MixedPrecision& mp = *m.mixed_precision;
    json fallbacks = json::array();
    for (const auto& f : mp.fallbacks) fallbacks.push_back({{"unit", f.unit}, {"nodes", f.nodes}, {"to", f.to}});
    j["mixed_precision"] = {{"metric", mp.metric},
                            {"order", mp.order},
                            {"target", json_number(mp.target)},
                            {"float", json_number(mp.float_value)},
                            {"start", json_number(mp.start_value)},
                            {"final", json_number(mp.final_value)},
                            {"met", mp.met},
                            {"units", mp.units},
                            {"runs", mp.runs},
                            {"fallbacks", fallbacks},
                            {"overrides_file", "overrides.yaml"}};
    if (!mp.stopped.empty()) j["mixed_precision"]["stopped"] = mp.stopped;
  }
  if (!m.algorithms.empty()) {
    json decisions = json::array();
    for (const auto& d : m.algorithm_decisions) {
      json values = json::object();
      for (const auto& [k, v] : d.values) values[k] = json_number(v);
      decisions.push_back(
          {{"algorithm", d.algorithm}, {"target", d.target}, {"decision", d.decision}, {"values", values}});
    }
    j["algorithms"] = {{"applied", m.algorithms}, {"decisions", decisions}};
  }
  if (m.onnx) j["onnx"] = onnx_json(*m.onnx);
  if (!m.engines.empty()) {
    j["engines"] = json::array();
    for (const auto& e : m.engines) j["engines"].push_back(engine_json(e));
  }
  j["notes"] = m.notes;
  j["seconds"] = m.seconds;
  j["stages"] = json::array();
  for (const auto& st : m.stages)
    j["stages"].push_back({{"stage", st.name}, {"seconds", st.seconds}, {"peak_rss_mb", st.peak_rss_mb}});
  return j;
}

json details_json(const Measurements& m) {
  json details;
  if (m.lowered) {
    details["worst_kernel_steps"] = json_number(m.lowered->worst_kernel_steps);
    if (!m.lowered->worst_kernel.empty()) details["worst_kernel"] = m.lowered->worst_kernel;
  }
  details["decisions"] = json::array();
  for (const auto& d : m.decisions) {
    details["decisions"].push_back({{"id", d.id},
                                    {"op", d.op},
                                    {"module", d.module},
                                    {"status", d.status},
                                    {"match", d.match},
                                    {"reason", d.reason}});
    if (d.bookkeeping) details["decisions"].back()["bookkeeping"] = true;
  }
  details["shared_tensors"] = m.shared_tensors;
  details["graphs"] = {{"reference", nodes_json(m.reference_nodes)}};
  if (m.lowered_nodes) details["graphs"]["lowered"] = nodes_json(*m.lowered_nodes);
  details["biases"] = json::array();
  for (const auto& b : m.biases)
    details["biases"].push_back({{"node", b.node},
                                 {"op", b.op},
                                 {"module", b.module},
                                 {"per_channel", b.per_channel},
                                 {"max_error_steps", json_number(b.max_error_steps)}});
  details["layers"] = layers_json(m);
  details["qat_losses"] = json::array();
  for (const double loss : m.qat_losses) details["qat_losses"].push_back(json_number(loss));
  return details;
}

}  // namespace

json to_json(const Measurements& m) {
  json j = core_json(m);
  j["details"] = details_json(m);
  return j;
}

Measurements measurements_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source, "measurements: not a JSON object");
  const auto version = j.find("measurements_version");
  if (version == j.end() || !version->is_number_integer() || version->get<int>() != kMeasurementsVersion)
    throw InputError(source, "measurements written by another qsdk version (measurements_version " +
                                 (version == j.end() ? std::string("missing") : version->dump()) +
                                 ", this qsdk reads " + std::to_string(kMeasurementsVersion) +
                                 "); measure again with this qsdk");
  try {
    Measurements m;
    m.backend = j.at("backend").get<std::string>();
    RunRecord& r = m.run;
    const auto first_options = j.value("backend_options", BackendOptions{});
    for (const auto& b : j.at("backends")) {
      BackendRecord x{b.at("name").get<std::string>(),
                      b.value("version", std::string()),
                      b.value("vendor", std::string()),
                      b.value("rule_hash", std::string()),
                      b.value("plugin_abi_version", 0u),
                      b.value("plugin_file", std::string()),
                      b.value("options", r.backends.empty() ? first_options : BackendOptions{})};
      r.backends.push_back(x);
    }
    const json& t = j.at("target");
    r.target.cpu_features = t.value("cpu_features", std::vector<std::string>{});
    r.target.onednn_isa = t.value("onednn_isa", std::string());
    r.target.onednn_max_cpu_isa = t.value("onednn_max_cpu_isa", std::string());
    r.target.int8_isa = t.value("int8_isa", std::string());
    if (t.contains("choices"))
      for (const auto& [option, c] : t["choices"].items())
        r.target.choices[option] = {c.at("requested").get<std::string>(), c.at("chosen").get<std::string>()};
    const json& model = j.at("model");
    r.model_source = model.at("source").get<std::string>();
    r.input_shapes = model.at("input_shapes").get<std::vector<std::vector<std::int64_t>>>();
    r.model_fingerprint = model.value("fingerprint", std::string());
    const json& cal = j.at("calibration");
    r.calibration_source = cal.at("source").get<std::string>();
    r.calibration_batches = cal.at("batches").get<int>();
    r.calibration_batch_size = cal.at("batch_size").get<int>();
    r.calibration_seed = cal.at("seed").get<std::uint64_t>();
    r.calibration_fingerprint = cal.value("fingerprint", std::string());
    if (j.contains("qat")) r.qat = qat_from(j["qat"]);
    const json& v = j.at("versions");
    r.qsdk_version = v.value("qsdk", std::string());
    r.sdk_abi_version = v.value("sdk_abi", 0u);
    r.libtorch_version = v.value("libtorch", std::string());

    const json& c = j.at("conversion");
    m.conversion = {c.at("folded_batch_norms").get<int>(),
                    c.at("quantized_activations").get<int>(),
                    c.at("quantized_weights").get<int>(),
                    c.at("quantized_biases").get<int>(),
                    c.at("dynamic_inputs").get<int>(),
                    {},  // quantized_tensors: graph ids, for the exporter only
                    c.value("standalone_batch_norms", std::vector<std::string>{})};
    m.sqnr_db = number_of(j.at("sqnr_db"));
    m.float_size = j.at("size_bytes").at("float").get<std::uintmax_t>();
    m.quantized_size = j.at("size_bytes").at("quantized").get<std::uintmax_t>();
    for (const auto& s : j.value("qparams", json::array())) {
      QParamsRecord q;
      q.slot = s.at("slot").get<int>();
      q.kind = s.at("kind").get<std::string>();
      q.label = s.at("label").get<std::string>();
      q.dtype = s.at("dtype").get<std::string>();
      q.quant_min = s.at("quant_min").get<std::int64_t>();
      q.quant_max = s.at("quant_max").get<std::int64_t>();
      q.scale = s.value("scale", std::vector<double>{});
      q.zero_point = s.value("zero_point", std::vector<std::int64_t>{});
      if (s.contains("axis")) q.axis = s["axis"].get<int>();
      m.qparams.push_back(q);
    }
    const json details = j.value("details", json::object());
    const json& lowering = j.at("lowering");
    m.lowering_target = lowering.at("target").get<std::string>();
    if (lowering.contains("lowered_ops")) {
      LoweringMeasurements l;
      l.lowered_ops = lowering.at("lowered_ops").get<int>();
      l.output_scale = number_of(lowering.at("output_scale"));
      l.max_difference_steps = number_of(lowering.at("max_difference_steps"));
      l.mean_difference_steps = number_of(lowering.value("mean_difference_steps", json(0.0)));
      l.noise_margin_db = number_of(lowering.value("noise_margin_db", json(0.0)));
      l.sqnr_db_lowered = number_of(lowering.at("sqnr_db_lowered"));
      const json& o = lowering.at("op_by_op");
      l.kernels_checked = o.at("checked").get<std::size_t>();
      l.kernels_skipped = o.at("skipped").get<int>();
      l.first_over_limit = o.value("first_over_limit", std::string());
      l.most_differing_kernel = o.value("most_differing", std::string());
      l.most_differing_fraction = number_of(o.value("most_differing_fraction", json(0.0)));
      l.worst_kernel_steps = number_of(details.value("worst_kernel_steps", json(0.0)));
      l.worst_kernel = details.value("worst_kernel", std::string());
      m.lowered = l;
    }
    if (j.contains("onnx")) m.onnx = onnx_from(j["onnx"]);
    for (const auto& e : j.value("engines", json::array())) m.engines.push_back(engine_from(e));
    if (j.contains("accuracy")) {
      const json& a = j["accuracy"];
      m.accuracy = Accuracy{number_of(a.at("float_top1")),
                            number_of(a.at("quantized_top1")),
                            number_of(a.at("agreement")),
                            a.at("samples").get<std::size_t>(),
                            {},
                            {}};
      if (a.contains("float_perplexity")) {
        m.accuracy->float_perplexity = number_of(a.at("float_perplexity"));
        m.accuracy->quantized_perplexity = number_of(a.at("quantized_perplexity"));
      }
    }
    if (j.contains("latency_ms"))
      m.latency = Latency{number_of(j["latency_ms"].at("float")), number_of(j["latency_ms"].at("int8"))};
    if (j.contains("mixed_precision")) {
      const json& a = j["mixed_precision"];
      MixedPrecision mp;
      mp.metric = a.at("metric").get<std::string>();
      mp.order = a.value("order", std::string("sensitivity"));
      mp.target = number_of(a.at("target"));
      mp.float_value = number_of(a.at("float"));
      mp.start_value = number_of(a.at("start"));
      mp.final_value = number_of(a.at("final"));
      mp.met = a.at("met").get<bool>();
      mp.units = a.at("units").get<int>();
      mp.runs = a.at("runs").get<int>();
      for (const auto& f : a.at("fallbacks"))
        mp.fallbacks.push_back(
            {f.at("unit").get<std::string>(), f.at("nodes").get<std::vector<int>>(), f.at("to").get<std::string>()});
      mp.stopped = a.value("stopped", std::string());
      m.mixed_precision = mp;
    }
    if (j.contains("algorithms")) {
      const json& a = j["algorithms"];
      m.algorithms = a.at("applied").get<std::vector<std::string>>();
      for (const auto& d : a.at("decisions")) {
        AlgorithmDecision decision{d.at("algorithm").get<std::string>(),
                                   d.at("target").get<std::string>(),
                                   d.at("decision").get<std::string>(),
                                   {}};
        for (const auto& [k, v] : d.at("values").items()) decision.values[k] = number_of(v);
        m.algorithm_decisions.push_back(std::move(decision));
      }
    }
    m.notes = j.value("notes", std::vector<std::string>{});
    m.output_warning = j.value("output_warning", std::string());
    m.seconds = number_of(j.value("seconds", json(0.0)));
    for (const auto& st : j.value("stages", json::array()))
      m.stages.push_back(
          {st.at("stage").get<std::string>(), number_of(st.at("seconds")), number_of(st.at("peak_rss_mb"))});

    for (const auto& d : details.value("decisions", json::array()))
      m.decisions.push_back({d.at("id").get<int>(), d.at("op").get<std::string>(), d.value("module", std::string()),
                             d.at("status").get<std::string>(), d.value("match", -1), d.value("reason", std::string()),
                             d.value("bookkeeping", false)});
    m.shared_tensors = details.value("shared_tensors", std::vector<std::vector<std::string>>{});
    const json graphs = details.value("graphs", json::object());
    if (graphs.contains("reference")) m.reference_nodes = nodes_from(graphs["reference"]);
    if (graphs.contains("lowered")) m.lowered_nodes = nodes_from(graphs["lowered"]);
    for (const auto& b : details.value("biases", json::array()))
      m.biases.push_back({b.at("node").get<int>(), b.at("op").get<std::string>(), b.value("module", std::string()),
                          b.at("per_channel").get<bool>(), number_of(b.at("max_error_steps"))});
    for (const auto& l : details.value("layers", json::array()))
      m.layers.push_back({l.at("node").get<int>(), l.value("module", std::string()), l.at("op").get<std::string>(),
                          number_of(l.at("sqnr_db"))});
    for (const auto& loss : details.value("qat_losses", json::array())) m.qat_losses.push_back(number_of(loss));
    return m;
  } catch (const json::exception& e) {
    throw InputError(source, std::string("malformed measurements: ") + e.what());
  }
}

json manifest_json(const Measurements& m) {
  json j = core_json(m);
  for (const char* key : kNotInManifest) j.erase(key);
  j["qsdk_manifest_version"] = 1;
  return j;
}

json summary_entry_json(const Measurements& m, double max_steps, double min_noise_margin_db) {
  json j = core_json(m);
  j.erase("qparams");
  j["lowering_agrees"] = m.lowering_agrees(max_steps, min_noise_margin_db);
  return j;
}

json qparams_json(const std::vector<QParamsRecord>& slots) {
  json j = json::array();
  for (const auto& s : slots) j.push_back(qparams_record_json(s));
  return j;
}

json layers_json(const Measurements& m) {
  json j = json::array();
  for (const auto& l : m.layers) j.push_back(layer_json(l));
  return j;
}

}  // namespace qsdk
