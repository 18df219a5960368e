#include "pipeline/pipeline.h"

#include <sys/resource.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

#include "algorithms/ptq_algorithms.h"
#include "annotate/annotator.h"
#include "annotate/report.h"
#include "calibrate/calibration.h"
#include "capture/capture.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/fingerprint.h"
#include "common/memory_budget.h"
#include "convert/agreement.h"
#include "convert/convert.h"
#include "convert/lowering.h"
#include "convert/numeric_debugger.h"
#include "data/data_source.h"
#include "engine/engine_check.h"
#include "export/encodings_check.h"
#include "export/onnx_agreement.h"
#include "export/onnx_runtime.h"
#include "graph/bn_folding.h"
#include "graph/graph.h"
#include "pipeline/encodings_json.h"
#include "pipeline/graph_records.h"
#include "pipeline/measurements_json.h"
#include "plugins/backend_yaml.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"
#include "qsdk/abi.h"
#include "qsdk/version.h"
#include "target/cpu_target.h"

namespace qsdk {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

// Closes a stage of Measurements::stages at each mark(): its wall time, and
// the process's peak memory so far, so the stage that raised it shows.
class StageClock {
 public:
  explicit StageClock(std::vector<Measurements::Stage>& stages) : stages_(stages) {}
  void mark(const std::string& name) {
    stages_.push_back({name, seconds_since(start_), peak_rss_mb()});
    start_ = Clock::now();
  }

 private:
  std::vector<Measurements::Stage>& stages_;
  Clock::time_point start_ = Clock::now();
};

std::vector<std::vector<std::int64_t>> shapes_of(const std::vector<at::Tensor>& tensors) {
  std::vector<std::vector<std::int64_t>> shapes;
  for (const auto& t : tensors) shapes.push_back(t.sizes().vec());
  return shapes;
}

// Statistics for the observers: loaded, calibrated on data, or learned by QAT.
struct Prepared {
  std::unique_ptr<PreparedModel> model;
  std::string fingerprint;
  std::vector<at::Tensor> eval_inputs;  // the batch SQNR and agreement are measured on
  std::vector<double> losses;
  std::vector<AlgorithmDecision> decisions;  // adaround, bias_correction
};

// The calibration batches the data-driven algorithms use: the first whole
// batches holding AlgorithmOptions::samples samples.
Batches algorithm_batches(const PipelineOptions& o, const CapturedModel& captured) {
  const auto source = open_data_source(o.calibration, captured.inputs);
  Batches all;
  std::int64_t samples = 0;
  for (std::size_t i = 0; i < source->num_batches() && samples < o.algorithms.samples; ++i) {
    all.push_back(source->batch(i).inputs);
    samples += all.back().at(0).dim() > 0 ? all.back().at(0).size(0) : 1;
  }
  return all;
}

// After a float-equivalent rewrite (cle, smoothquant): how far the model's
// output moved, relative to its magnitude, on one calibration batch.
AlgorithmDecision float_equivalence(const char* algorithm, const Graph& before, const Graph& after,
                                    const std::vector<at::Tensor>& inputs) {
  const at::Tensor a = before.run(inputs).at(0).to(at::kDouble), b = after.run(inputs).at(0).to(at::kDouble);
  const double magnitude = a.abs().max().item<double>();
  const double change = magnitude > 0 ? a.sub(b).abs().max().item<double>() / magnitude : 0.0;
  std::ostringstream text;
  text << std::setprecision(2) << "float model's output changed by " << change << " of its magnitude";
  return {algorithm, "model output", text.str(), {{"relative_change", change}}};
}

// Refuses a batch size whose activations cannot fit before the first batch
// is drawn. The estimate is every value the typed graph computes, for the
// example inputs' batch, scaled to `batch_size`: an upper bound for
// calibration (the interpreter frees dead values) and about what training
// keeps for the backward pass.
void require_batch_fits(const Graph& graph, const std::vector<at::Tensor>& example_inputs, int batch_size) {
  double bytes = 0;
  for (const auto* n : graph.ir().nodes())
    for (const auto* v : n->outputs())
      if (const auto t = v->type()->cast<c10::TensorType>())
        if (const auto sizes = t->sizes().concrete_sizes()) {
          double numel = 1;
          for (const auto d : *sizes) numel *= double(d);
          bytes += numel * double(t->scalarType() ? c10::elementSize(*t->scalarType()) : sizeof(float));
        }
  const auto& first = example_inputs.at(0);
  const double example_batch = first.dim() > 0 && first.size(0) > 0 ? double(first.size(0)) : 1.0;
  const double estimate = bytes * double(batch_size) / example_batch;
  require_within_memory_budget(estimate >= 1.8e19 ? ~std::uintmax_t(0) : std::uintmax_t(estimate),
                               "a batch of " + std::to_string(batch_size) + " for " + graph.source(),
                               "lower --batch-size (the activations of one batch are held at once)");
}

// `float_graph` and `data`: the float model and batches AdaRound and bias
// correction work from (unused when neither is on).
Prepared prepare_ptq(Graph& graph, const Annotation& annotation, const PipelineOptions& o,
                     const CapturedModel& captured, const Graph* float_graph, const Batches& data) {
  const auto& example_inputs = captured.example_inputs;
  Prepared p;
  p.model = std::make_unique<PreparedModel>(graph, annotation);
  if (!o.activation_observer.empty()) {
    ObserverKind kind{};
    if (!parse(o.activation_observer, kind))
      throw InputError("observer '" + o.activation_observer + "'", "unknown observer kind");
    p.model->override_activation_observer(kind);
  }
  // The weight qparams are fixed now; calibration then sees the new weights.
  if (o.algorithms.adaround) p.decisions = adaround(*p.model, *float_graph, data, o.algorithms);
  if (o.algorithms.bias_correction) {
    auto corrected = correct_bias(*p.model, *float_graph, data);
    p.decisions.insert(p.decisions.end(), corrected.begin(), corrected.end());
  }
  if (!o.load_stats.empty()) {
    p.model->load_stats(read_file(o.load_stats, "statistics file", kMaxStatsInputBytes), o.load_stats);
    p.fingerprint = "stats:" + Fingerprint::of_file(o.load_stats);
    p.eval_inputs = example_inputs;
    return p;
  }
  require_batch_fits(graph, example_inputs, o.calibration.batch_size);
  const auto source = open_data_source(o.calibration, captured.inputs);
  CalibrationRun run = calibrate(*p.model, *source, o.progress);
  p.fingerprint = run.fingerprint;
  p.eval_inputs = std::move(run.first_batch);
  return p;
}

Prepared prepare_qat(Graph& graph, const Annotation& annotation, const PipelineOptions& o,
                     const CapturedModel& captured) {
  const auto& example_inputs = captured.example_inputs;
  // Training reads one batch per step from the calibration split.
  CalibrationConfig data = o.calibration;
  data.batch_size = o.qat->batch_size;
  require_batch_fits(graph, example_inputs, data.batch_size);
  // One batch per step; with epochs, one pass over the split per epoch.
  data.batches = o.qat->epochs > 0 ? 0 : o.qat->steps;
  const auto source = open_data_source(data, captured.inputs);
  QatResult trained = train_qat(graph, annotation, *o.qat, *source, o.progress);
  Prepared p;
  p.model = std::move(trained.prepared);
  p.losses = std::move(trained.losses);
  Fingerprint f;
  f.add(source->describe());
  p.fingerprint = "qat:" + f.hex();
  p.eval_inputs = source->batch(0).inputs;
  return p;
}

// Top-1 (and for sequence labels perplexity) of the float and the quantized
// model on the held-out split. Batches keep the calibration batch size (a
// lowered onednn instance must not see a second batch size), so a last
// partial batch is left out. MNIST: all 2,000 held-out digits; fortunes:
// kHeldoutTextBatches batches.
constexpr int kHeldoutTextBatches = 64;

std::optional<Accuracy> measure_accuracy(const PipelineResult& r, Lowering target, const PipelineOptions& o,
                                         const std::vector<InputSpec>& inputs) {
  CalibrationConfig held = o.calibration;
  held.split = "heldout";
  held.batches = held.source == "mnist"
                     ? std::max(1, static_cast<int>(kMnistHeldoutCount) / std::max(1, held.batch_size))
                     : kHeldoutTextBatches;
  const auto source = open_data_source(held, inputs);
  Accuracy a;
  std::size_t float_ok = 0, quant_ok = 0, same = 0;
  double float_nll = 0, quant_nll = 0;  // summed over samples
  bool sequence = false;
  for (std::size_t i = 0; i < source->num_batches(); ++i) {
    const Batch b = source->batch(i);
    if (!b.labels.defined()) return std::nullopt;
    const auto classes_of = [&](const at::Tensor& logits) { return logits.reshape({-1, logits.size(-1)}); };
    const auto labels = b.labels.reshape({-1});
    const auto fl = classes_of(r.float_graph->run(b.inputs).at(0));
    const auto ql = classes_of(run_with_engine(r.deployed(), target, b.inputs).at(0));
    const auto f = fl.argmax(1), q = ql.argmax(1);
    float_ok += static_cast<std::size_t>(f.eq(labels).sum().item<std::int64_t>());
    quant_ok += static_cast<std::size_t>(q.eq(labels).sum().item<std::int64_t>());
    same += static_cast<std::size_t>(f.eq(q).sum().item<std::int64_t>());
    a.samples += static_cast<std::size_t>(labels.size(0));
    sequence = b.labels.dim() > 1;
    if (sequence) {
      const auto nll = [&](const at::Tensor& logits) {
        return -logits.to(at::kDouble).log_softmax(1).gather(1, labels.unsqueeze(1)).sum().item<double>();
      };
      float_nll += nll(fl);
      quant_nll += nll(ql);
    }
  }
  if (a.samples == 0) return std::nullopt;
  a.float_top1 = double(float_ok) / double(a.samples);
  a.quantized_top1 = double(quant_ok) / double(a.samples);
  a.agreement = double(same) / double(a.samples);
  if (sequence) {
    a.float_perplexity = std::exp(float_nll / double(a.samples));
    a.quantized_perplexity = std::exp(quant_nll / double(a.samples));
  }
  return a;
}

// Empty unless the float output is near-constant across the batch: its
// spread over the batch is below 1e-6 of its magnitude (random-init
// mnasnet/efficientnet reach std 1e-8..1e-14), or it is all zero.
std::string near_constant_warning(const at::Tensor& float_out) {
  if (float_out.dim() < 1 || float_out.size(0) < 2 || !float_out.is_floating_point()) return "";
  const auto out = float_out.to(at::kDouble);
  const double magnitude = out.abs().max().item<double>();
  const double spread = out.sub(out.mean(0, /*keepdim=*/true)).abs().max().item<double>();
  if (magnitude > 0 && spread > 1e-6 * magnitude) return "";
  std::ostringstream s;
  s << "the float model's output is near-constant (it varies by " << std::setprecision(3) << spread
    << " across the batch of " << float_out.size(0) << ", against a magnitude of " << magnitude
    << "): SQNR, lowered-vs-reference steps and agreement say little about this model; calibrate a trained model "
       "on real data";
  return s.str();
}

double median_ms(const std::function<void()>& run) {
  for (int i = 0; i < 3; ++i) run();  // warm-up: kernel selection, allocations
  std::vector<double> t;
  for (int i = 0; i < 21; ++i) {
    const auto start = Clock::now();
    run();
    t.push_back(1e3 * seconds_since(start));
  }
  std::nth_element(t.begin(), t.begin() + 10, t.end());
  return t[10];
}

// Batch-1 latency on the example inputs, on a fresh copy of the deployed
// model (see measure_accuracy on batch sizes).
Latency measure_latency(const PipelineResult& r, Lowering target, const std::vector<at::Tensor>& example_inputs) {
  std::vector<at::Tensor> one;
  for (const auto& t : example_inputs) one.push_back(t.narrow(0, 0, 1).contiguous());
  auto deployed = r.reference->clone();
  if (target != Lowering::Reference) lower(*deployed, target);
  Latency l;
  l.float_ms = median_ms([&] { r.float_graph->run(one); });
  l.int8_ms = median_ms([&] { run_with_engine(*deployed, target, one); });
  return l;
}

// What the model assumed of the machine: the CPU's int8 features, onednn's
// ISA, and each target option's choice (requested vs chosen).
TargetRecord target_record(const BackendOptions& given, const BackendOptions& resolved) {
  const CpuTarget& cpu = cpu_target();
  TargetRecord t{cpu.feature_names(), cpu.onednn_isa, cpu.onednn_cap, to_string(cpu.int8_isa), {}};
  if (auto it = resolved.find(kTargetOptionName); it != resolved.end()) {
    const auto requested = given.count(kTargetOptionName) ? given.at(kTargetOptionName) : kTargetOptionAuto;
    t.choices[kTargetOptionName] = {requested, it->second};
  }
  return t;
}

RunRecord run_record(const PipelineOptions& o, const PluginRegistry& plugins,
                     const std::vector<std::shared_ptr<const Backend>>& backends,
                     const std::vector<BackendOptions>& resolved, const std::vector<at::Tensor>& example_inputs,
                     const std::string& calibration_fingerprint) {
  RunRecord r;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    const auto& b = backends[i];
    const LoadedPlugin* p = plugins.find(b->name);
    r.backends.push_back({b->name, b->version, b->vendor, rule_hash(*b), p ? p->abi_version : 0,
                          p ? p->file.string() : "", resolved.at(i)});
  }
  r.target = target_record(o.backends.front().options, r.backends.front().options);
  r.model_source = o.model;
  r.input_shapes = shapes_of(example_inputs);
  r.model_fingerprint =
      o.model.rfind("zoo:", 0) == 0 ? o.model + "@seed" + std::to_string(o.model_seed) : Fingerprint::of_file(o.model);
  r.calibration_source = o.load_stats.empty() ? o.calibration.source : "stats:" + o.load_stats;
  r.calibration_batches = o.calibration.batches;
  r.calibration_batch_size = o.calibration.batch_size;
  r.calibration_seed = o.calibration.seed;
  r.calibration_fingerprint = calibration_fingerprint;
  r.qat = o.qat;
  r.qsdk_version = kVersion;
  r.sdk_abi_version = kAbiVersion;
  r.libtorch_version = TORCH_VERSION;
  return r;
}

// The lowered model against its reference: at the output, and kernel by
// kernel on the reference's own inputs.
LoweringMeasurements measure_lowering(const PipelineResult& r, Lowering target, const LoweringReport& report,
                                      const std::vector<at::Tensor>& inputs, const at::Tensor& float_out,
                                      const at::Tensor& quant_out, double kernel_max_steps) {
  LoweringMeasurements l;
  l.lowered_ops = report.lowered_ops;
  const auto lowered_out = run_with_engine(*r.lowered, target, inputs);
  l.output_scale = std::max(0.0, output_scale(*r.reference));
  l.max_difference_steps =
      l.output_scale > 0 ? max_difference_in_steps(quant_out, lowered_out.at(0), l.output_scale) : 0.0;
  l.sqnr_db_lowered = sqnr_db(float_out, lowered_out.at(0));
  const AgreementReport agreement = op_by_op_agreement(*r.reference, *r.lowered, target, inputs);
  l.kernels_checked = agreement.checked.size();
  l.kernels_skipped = agreement.skipped;
  l.noise_margin_db = noise_margin_db(quant_out, lowered_out.at(0), float_out);
  if (l.output_scale > 0)
    l.mean_difference_steps =
        quant_out.to(at::kDouble).sub(lowered_out.at(0).to(at::kDouble)).abs().mean().item<double>() / l.output_scale;
  if (const OpAgreement* bad = agreement.first_over(kernel_max_steps))
    l.first_over_limit = bad->op + " (node " + std::to_string(bad->position) + " of the lowered graph) differs by " +
                         std::to_string(bad->steps) + " steps";
  const OpAgreement* worst = nullptr;
  const OpAgreement* most_differing = nullptr;
  for (const auto& a : agreement.checked) {
    if (!worst || a.steps > worst->steps) worst = &a;
    if (!most_differing || a.differing > most_differing->differing) most_differing = &a;
  }
  auto kernel_name = [&](const OpAgreement& a) {
    std::string ref = "%" + std::to_string(a.position) + " " + a.op;
    if (a.position >= 0 && static_cast<std::size_t>(a.position) < r.lowered->nodes().size()) {
      const auto& path = r.lowered->module_path(r.lowered->nodes()[static_cast<std::size_t>(a.position)]);
      if (!path.empty()) ref += " (" + path + ")";
    }
    return ref;
  };
  if (most_differing && most_differing->differing > 0) {
    l.most_differing_fraction = most_differing->differing;
    std::ostringstream text;
    text << kernel_name(*most_differing) << ": " << std::setprecision(3) << 100.0 * most_differing->differing
         << "% of outputs differ";
    l.most_differing_kernel = text.str();
  }
  if (worst) {
    l.worst_kernel_steps = worst->steps;
    l.worst_kernel = kernel_name(*worst) + ": " + std::to_string(worst->steps) + " steps";
  }
  return l;
}

// The ONNX export of the reference, its encodings checked against it, and
// (when ONNX Runtime is installed) its agreement with the reference.
// One engine under test (PipelineOptions::engines) on the export.
EngineAgreement check_named_engine(const std::string& which, const Backend& backend, const PipelineResult& r,
                                   const std::vector<at::Tensor>& inputs) {
  if (which == "onnxruntime" || which == "onnxruntime-fused") {
    const bool fused = which == "onnxruntime-fused";
    return check_engine(fused ? "onnxruntime (optimizations all)" : "onnxruntime (optimizations disabled)",
                        onnx_runtime_engine(fused), *r.reference, *r.onnx, backend.arithmetic, inputs);
  }
  if (which != "backend")
    throw InputError("engines", "unknown engine '" + which + "'; expected backend, onnxruntime or onnxruntime-fused");
  if (!backend.engine) {
    EngineAgreement none;
    none.engine = backend.name + " (the backend's engine)";
    none.error =
        "backend '" + backend.name +
        "' has no engine: its plugin sets no run_engine (qsdk/engine.h; CONTRIBUTING.md, \"Checking your engine\")";
    return none;
  }
  return check_engine(backend.name + " (the backend's engine)", backend.engine, *r.reference, *r.onnx,
                      backend.arithmetic, inputs);
}

void export_and_check_onnx(PipelineResult& r, const PipelineOptions& o, const Backend& backend,
                           const std::vector<at::Tensor>& eval_inputs, const at::Tensor& eval_float_out,
                           const std::vector<at::Tensor>& example_inputs) {
  Measurements& m = r.measurements;
  r.onnx = export_onnx(*r.reference, m.conversion.quantized_tensors);
  OnnxMeasurements om;
  om.size_bytes = r.onnx->bytes.size();
  om.nodes = r.onnx->nodes;
  om.quantize_linear = r.onnx->quantize_linear;
  om.dequantize_linear = r.onnx->dequantize_linear;
  r.encodings = encodings_json(*r.onnx, m);
  om.encodings_problems = check_encodings(r.onnx->bytes, r.encodings);
  if (o.onnx_runtime) {
    std::string why;
    if (!find_onnx_runtime(&why)) {
      om.runtime_skipped = why;
    } else if (r.onnx->fixed_batch) {  // the file runs at the captured batch only
      om.runtime =
          measure_onnx_agreement(*r.reference, *r.onnx, example_inputs, r.float_graph->run(example_inputs).at(0));
    } else {
      om.runtime = measure_onnx_agreement(*r.reference, *r.onnx, eval_inputs, eval_float_out);
    }
  }
  m.onnx = std::move(om);
  for (const auto& e : o.engines)
    m.engines.push_back(check_named_engine(e, backend, r, r.onnx->fixed_batch ? example_inputs : eval_inputs));
}

}  // namespace

std::string formats_problem(const std::vector<std::string>& formats) {
  std::set<std::string> seen;
  for (const auto& f : formats) {
    if (std::find(kOutputFormats.begin(), kOutputFormats.end(), f) == kOutputFormats.end())
      return "unknown output format '" + f + "'; expected torchscript, onnx or encodings";
    if (!seen.insert(f).second) return "output format '" + f + "' is listed twice";
  }
  if (seen.count("encodings") && !seen.count("onnx")) return "encodings names the tensors of model.onnx: list onnx too";
  if (seen.empty()) return "no output format: list at least one of torchscript, onnx";
  return "";
}

bool PipelineOptions::wants(const std::string& format) const {
  return std::find(formats.begin(), formats.end(), format) != formats.end();
}

std::vector<std::shared_ptr<const Backend>> instantiate_backends(const PluginRegistry& plugins,
                                                                 const std::vector<BackendChoice>& choices) {
  if (choices.empty()) throw InputError("backends", "no backend selected");
  std::vector<std::shared_ptr<const Backend>> out;
  for (const auto& c : choices) {
    try {
      out.push_back(plugins.instantiate(c.name, c.options));
    } catch (const InputError& e) {
      if (c.where.empty()) throw;
      throw InputError(c.where, e.cause());
    }
  }
  return out;
}

PipelineResult run_pipeline(const PluginRegistry& plugins, const PipelineOptions& o,
                            std::vector<std::shared_ptr<const Backend>> backends) {
  const auto start = Clock::now();
  if (o.qat && !o.load_stats.empty()) throw InputError("qat", "QAT learns its ranges; it cannot load statistics");
  if (backends.empty()) backends = instantiate_backends(plugins, o.backends);

  PipelineResult r;
  Measurements& m = r.measurements;
  // Each backend's options as made (target option resolved for this machine).
  std::vector<BackendOptions> resolved;
  for (const auto& b : o.backends) resolved.push_back(plugins.resolve_options(b.name, b.options));
  if (auto it = resolved.front().find(kTargetOptionName); it != resolved.front().end()) {
    const auto usable = usable_isa_names(cpu_target());
    if (std::find(usable.begin(), usable.end(), it->second) == usable.end())
      m.notes.push_back(std::string("target: ") + kTargetOptionName + "=" + it->second +
                        " was asked for, but onednn runs " + to_string(cpu_target().int8_isa) +
                        " int8 kernels here (ISA " + cpu_target().onednn_isa +
                        "): the lowered model may not match its reference on this machine");
  }

  StageClock clock(m.stages);
  CapturedModel captured = capture_model(o.model, CaptureOptions{o.inputs, o.model_seed});
  clock.mark("capture");
  // A graph that fixes its batch cannot take the calibration batches: say
  // so now, naming the node, not halfway through calibration.
  const bool other_batch =
      o.calibration.batch_size != captured.trace_batch || (o.qat && o.qat->batch_size != captured.trace_batch);
  if (!captured.fixed_batch.empty() && other_batch)
    throw InputError(o.model,
                     captured.fixed_batch + ". Calibrate with batch_size " + std::to_string(captured.trace_batch) +
                         ", or export the model with a batch-free shape (x.flatten(1), x.view(x.size(0), -1))");
  if (!captured.fixed_batch.empty()) m.notes.push_back("capture: " + captured.fixed_batch);
  Graph& graph = *captured.graph;
  if (o.per_layer_sqnr) name_values(graph);
  std::vector<BatchNormFold> folds;
  if (!o.qat) folds = fold_batch_norms(graph);
  if (o.qat && o.algorithms.any())
    throw InputError(o.algorithms.where.empty() ? "algorithms" : o.algorithms.where,
                     "the PTQ algorithms work on post-training quantization; QAT learns its weights");
  // The float model measurements compare against: as captured, before any
  // algorithm rewrites the weights.
  std::unique_ptr<Graph> captured_float = graph.clone();
  Batches algorithm_data;
  if (o.algorithms.any()) algorithm_data = algorithm_batches(o, captured);
  m.algorithms = o.algorithms.names();
  auto& decided = m.algorithm_decisions;
  if (o.algorithms.cle) {
    const auto d = equalize_cross_layer(graph);
    decided.insert(decided.end(), d.begin(), d.end());
    decided.push_back(float_equivalence("cle", *captured_float, graph, algorithm_data.at(0)));
  }
  if (o.algorithms.smoothquant) {
    const auto d = smooth_quant(graph, algorithm_data, o.algorithms.smoothquant_alpha);
    decided.insert(decided.end(), d.begin(), d.end());
    decided.push_back(float_equivalence("smoothquant", *captured_float, graph, algorithm_data.at(0)));
  }

  std::optional<Annotation> annotation;
  for (const auto& b : backends)
    annotation = annotate(graph, *b, AnnotateOptions{o.overrides}, annotation ? &*annotation : nullptr);
  r.annotation = std::move(*annotation);
  for (const auto& f : folds) r.annotation.folded_batch_norms.push_back(f.text());
  m.backend = r.annotation.backends;
  r.annotation_document = annotation_document(graph, r.annotation);
  m.decisions = node_decisions(r.annotation);
  m.shared_tensors = shared_tensor_labels(graph, r.annotation);
  // AdaRound and bias correction reconstruct the float model with its
  // equalized weights: the one prepare starts from.
  std::unique_ptr<Graph> rewritten_float;
  if (o.algorithms.adaround || o.algorithms.bias_correction) rewritten_float = graph.clone();
  r.float_graph = std::move(captured_float);
  clock.mark("annotate");

  Prepared prepared = o.qat ? prepare_qat(graph, r.annotation, o, captured)
                            : prepare_ptq(graph, r.annotation, o, captured, rewritten_float.get(), algorithm_data);
  clock.mark(o.qat ? "qat" : "calibrate");
  decided.insert(decided.end(), prepared.decisions.begin(), prepared.decisions.end());
  m.qat_losses = std::move(prepared.losses);
  m.qparams = qparams_records(*prepared.model);
  m.conversion = convert_to_reference(*prepared.model);
  m.notes.insert(m.notes.end(), m.conversion.notes.begin(), m.conversion.notes.end());
  r.reference = std::move(captured.graph);
  m.reference_nodes = node_records(*r.reference);
  m.biases = bias_records(*r.reference);
  clock.mark("convert");

  const auto& inputs = prepared.eval_inputs;
  const auto float_out = r.float_graph->run(inputs);
  const auto quant_out = r.reference->run(inputs);
  m.sqnr_db = sqnr_db(float_out.at(0), quant_out.at(0));
  m.output_warning = near_constant_warning(float_out.at(0));
  clock.mark("measure");

  const Lowering target = o.lower ? backends.front()->lowering : Lowering::Reference;
  m.lowering_target = to_string(target);
  if (target != Lowering::Reference) {
    r.lowered = r.reference->clone();
    const LoweringReport report = lower(*r.lowered, target);
    for (const auto& n : report.notes) m.notes.push_back("lowering: " + n);
    clock.mark("lower");
    m.lowered = measure_lowering(r, target, report, inputs, float_out.at(0), quant_out.at(0), o.kernel_max_steps);
    m.lowered_nodes = node_records(*r.lowered);
    clock.mark("check lowering");
  }
  if (o.exports_onnx()) {
    export_and_check_onnx(r, o, *backends.front(), inputs, float_out.at(0), captured.example_inputs);
    clock.mark("onnx");
  }
  m.float_size = exported_file_size(*r.float_graph);
  m.quantized_size = exported_file_size(r.deployed());
  if (o.per_layer_sqnr) m.layers = per_layer_sqnr(*r.float_graph, *r.reference, inputs);
  clock.mark("size, layers");
  // Accuracy needs labels: the MNIST and fortunes sources have them.
  if (o.measure_accuracy && source_has_heldout(o.calibration.source))
    m.accuracy = measure_accuracy(r, target, o, captured.inputs);
  if (o.measure_accuracy && m.accuracy) clock.mark("accuracy");
  if (o.measure_latency) {
    m.latency = measure_latency(r, target, captured.example_inputs);
    clock.mark("latency");
  }
  m.run = run_record(o, plugins, backends, resolved, captured.example_inputs, prepared.fingerprint);
  m.seconds = seconds_since(start);
  for (const auto& b : backends) r.rules_yaml[b->name] = backend_to_yaml(*b);
  return r;
}

void write_pipeline_outputs(const PipelineResult& r, const std::filesystem::path& dir, bool with_layers,
                            const std::vector<std::string>& formats) {
  auto wants = [&](const char* f) { return std::find(formats.begin(), formats.end(), f) != formats.end(); };
  std::vector<std::string> written;
  if (wants("torchscript")) {
    export_torchscript(r.deployed(), dir / "model.pt");
    written.push_back("model.pt");
    if (r.lowered) {
      export_torchscript(*r.reference, dir / "model_reference.pt");
      written.push_back("model_reference.pt");
    }
  }
  if (wants("onnx") && r.onnx) {
    write_file_atomically(dir / "model.onnx", r.onnx->bytes);
    written.push_back("model.onnx");
  }
  if (wants("encodings") && r.onnx) {
    write_file_atomically(dir / "encodings.json", r.encodings.dump(2) + "\n");
    written.push_back("encodings.json");
  }
  if (!r.overrides_yaml.empty()) {
    write_file_atomically(dir / "overrides.yaml", r.overrides_yaml);
    written.push_back("overrides.yaml");
  }
  write_file_atomically(dir / "qparams.json", qparams_json(r.measurements.qparams).dump(2) + "\n");
  write_file_atomically(dir / "annotation.json", r.annotation_document.dump(2) + "\n");
  written.insert(written.end(), {"qparams.json", "annotation.json"});
  for (const auto& [name, yaml] : r.rules_yaml) {
    write_file_atomically(dir / ("rules-" + name + ".yaml"), yaml);
    written.push_back("rules-" + name + ".yaml");
  }
  // (Not in the manifest's file list, as before layers.json moved here: a
  // default run's manifest stays byte-identical to earlier versions'.)
  if (with_layers) write_file_atomically(dir / "layers.json", layers_json(r.measurements).dump(2) + "\n");
  // Last, with the sizes and fingerprints of the files above: a directory
  // whose manifest is there has all of them, and `qsdk verify` can tell
  // when one was truncated or changed since.
  nlohmann::json manifest = manifest_json(r.measurements);
  manifest["files"] = file_records(dir, written);
  write_file_atomically(dir / "manifest.json", manifest.dump(2) + "\n");
}

std::map<std::string, int> op_counts(const Graph& graph) {
  std::map<std::string, int> counts;
  for (const auto* n : graph.nodes()) ++counts[n->kind().toQualString()];
  return counts;
}

}  // namespace qsdk
