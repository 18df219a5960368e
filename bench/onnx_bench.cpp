// qsdk_bench_onnx [--model M]... [--backend B]... [--repeat N] [--rounds R] [--threads T]
//
// Latency of ONNX Runtime 1.30 on qsdk's QDQ export (graph optimizations
// "all": QDQ fused into QLinear kernels) against ONNX Runtime on the float
// graph exported by the same exporter, and against qsdk's own lowered
// LibTorch int8 model (onednn for x86-int8, qnnpack for arm), at batch 1 and 8.
//
// Per model and backend: run_pipeline (calibration: 4 random batches of 4,
// as qsdk_bench_lowering; the pipeline exports ONNX but does not run it),
// the float graph exported too, both files written to a scratch directory.
// Then per batch size, R rounds, each round timing all three sides
// (N runs each, the side that starts rotating round by round) so machine
// noise hits all of them; a figure is the median of its R x N runs. ONNX
// Runtime runs in a node child process (tools/ort_run.js): process start,
// session creation and its first (warm-up) run are not in the figures, only
// the `repeat` runs it times itself. LibTorch gets one warm-up run per lowered
// graph, and one lowered graph per batch size (onednn's quantized convs in
// LibTorch 1.13 can fail when one instance runs at a second batch size).
// Both sides run with the same number of intra-op threads (--threads,
// default 1; ONNX Runtime's inter-op threads are 1, sequential).
//
// An export that folds traced shape arithmetic (fixed_batch) runs at the
// captured batch size only; for the other batch sizes the model is captured
// again at that size. Also, per batch size, the agreement of the first round:
// ORT int8 vs the lowered LibTorch output and vs the reference Q/DQ output,
// in output quantization steps (absolute differences when the output is not
// quantized); ORT float vs the float graph (absolute).
// An export that fails (an aten op without an ONNX mapping) is recorded as
// that side's error and the other sides are still measured. Prints one JSON
// object on stdout; progress on stderr.
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench_timing.h"
#include "common/error.h"
#include "convert/convert.h"
#include "convert/lowering.h"
#include "export/onnx_export.h"
#include "export/onnx_runtime.h"
#include "graph/graph.h"
#include "pipeline/pipeline.h"
#include "plugins/plugin_registry.h"
#include "target/cpu_target.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // keys in the order measured
using qsdk::bench::median;
using qsdk::bench::seconds_of;

namespace {

// Input shapes of a TorchScript file from the .json tools/export_models.py
// writes next to it; zoo models know their own.
std::vector<std::vector<std::int64_t>> input_shapes_of(const std::string& model) {
  if (model.rfind("zoo:", 0) == 0) return {};
  const fs::path meta = fs::path(model).replace_extension(".json");
  std::ifstream in(meta);
  if (!in) return {{1, 3, 224, 224}};
  return json::parse(in).at("input_shapes").get<std::vector<std::vector<std::int64_t>>>();
}

std::string label_of(const std::string& model) {
  return model.rfind("zoo:", 0) == 0 ? model.substr(4) : fs::path(model).stem().string();
}

std::vector<at::Tensor> random_batch(const std::vector<std::vector<std::int64_t>>& shapes, std::int64_t n) {
  std::vector<at::Tensor> out;
  for (auto shape : shapes) {
    shape.at(0) = n;
    out.push_back(torch::randn(shape));
  }
  return out;
}

double steps_between(const at::Tensor& a, const at::Tensor& b, double scale) {
  const double diff = (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

// One side of the comparison at one batch size.
struct Side {
  std::vector<double> ms;
  std::string error;
  at::Tensor output;  // of the first round
  json to_json() const {
    json j;
    if (!error.empty()) j["error"] = error;
    if (!ms.empty()) {
      j["median_ms"] = median(ms);
      j["min_ms"] = *std::min_element(ms.begin(), ms.end());
      j["runs_ms"] = ms;
    }
    return j;
  }
};

// One ONNX file: where it was written, its inputs, or why there is none.
struct OnnxFile {
  fs::path path;
  std::vector<std::string> input_names;
  std::string error;
  bool fixed_batch = false;  // the export folded shapes: it runs at the captured batch size only
};

// One pipeline run and its two ONNX files: int8 from the pipeline, float
// exported here; both written to a scratch directory.
struct Prepared {
  qsdk::PipelineResult pipeline;
  OnnxFile int8, float_;
  json info;
};

// When the pipeline's ONNX export fails, it runs again without it, so that
// the LibTorch side is still measured; throws when the pipeline itself fails.
Prepared prepare(const qsdk::PluginRegistry& registry, qsdk::PipelineOptions options,
                 const std::vector<std::shared_ptr<const qsdk::Backend>>& chosen, const fs::path& dir,
                 const std::string& tag) {
  Prepared p;
  std::string int8_export_error;
  try {
    p.pipeline = qsdk::run_pipeline(registry, options, chosen);
  } catch (const qsdk::InputError& e) {
    // The export is the last step that can refuse a model the rest took; if
    // the run without it fails too, that run's error is the one reported.
    options.export_onnx = false;
    p.pipeline = qsdk::run_pipeline(registry, options, chosen);
    int8_export_error = e.what();
  }
  if (p.pipeline.onnx) {
    const auto& m = *p.pipeline.onnx;
    p.int8 = {dir / ("int8" + tag + ".onnx"), m.input_names, "", m.fixed_batch};
    std::ofstream(p.int8.path, std::ios::binary) << m.bytes;
    p.info["int8_onnx"] = {{"bytes", m.bytes.size()},
                           {"nodes", m.nodes},
                           {"quantize_linear", m.quantize_linear},
                           {"dequantize_linear", m.dequantize_linear},
                           {"fixed_batch", m.fixed_batch}};
  } else {
    p.int8.error = int8_export_error.empty() ? "not exported" : "export failed: " + int8_export_error;
    p.info["int8_onnx_error"] = p.int8.error;
  }
  try {
    const qsdk::OnnxModel m = qsdk::export_onnx(*p.pipeline.float_graph, {});
    p.float_ = {dir / ("float" + tag + ".onnx"), m.input_names, "", m.fixed_batch};
    std::ofstream(p.float_.path, std::ios::binary) << m.bytes;
    p.info["float_onnx"] = {{"bytes", m.bytes.size()}, {"nodes", m.nodes}, {"fixed_batch", m.fixed_batch}};
  } catch (const std::exception& e) {
    p.float_.error = std::string("export failed: ") + e.what();
    p.info["float_onnx_error"] = p.float_.error;
  }
  if (p.pipeline.measurements.lowered)
    p.info["pipeline_lowered_vs_reference_steps"] = p.pipeline.measurements.lowered->max_difference_steps;
  p.info["output_scale"] = qsdk::output_scale(*p.pipeline.reference);
  return p;
}

// ORT int8, ORT float and LibTorch int8 on one batch of inputs, `rounds`
// rounds of `repeat` runs each, the side that starts rotating by round.
json measure(const Prepared& prepared, qsdk::Lowering target, const std::vector<at::Tensor>& inputs, int rounds,
             int repeat, int threads, const fs::path& dir) {
  const qsdk::PipelineResult& pipeline = prepared.pipeline;
  Side ort_int8, ort_float, libtorch;
  auto ort = [&](const OnnxFile& file, Side& side, int round) {
    if (!file.error.empty()) side.error = file.error;
    if (!side.error.empty()) return;
    try {
      qsdk::OrtRunOptions o;
      o.optimize = true;
      o.repeat = repeat;
      o.threads = threads;
      auto out = qsdk::run_onnx_runtime(file.path, file.input_names, inputs, o, dir);
      side.ms.insert(side.ms.end(), out.latency_ms.begin(), out.latency_ms.end());
      if (round == 0) side.output = out.outputs.at(0);
    } catch (const std::exception& e) {
      side.error = e.what();
    }
  };
  // A fresh lowered graph for this batch size (see the top of the file).
  std::unique_ptr<qsdk::Graph> lowered;
  try {
    lowered = pipeline.reference->clone();
    qsdk::lower(*lowered, target);
    libtorch.output = qsdk::run_with_engine(*lowered, target, inputs).at(0);  // warm-up
  } catch (const std::exception& e) {
    libtorch.error = e.what();
  }
  auto torch_side = [&](int) {
    if (!libtorch.error.empty()) return;
    try {
      for (int i = 0; i < repeat; ++i)
        libtorch.ms.push_back(1e3 * seconds_of([&] { qsdk::run_with_engine(*lowered, target, inputs); }));
    } catch (const std::exception& e) {
      libtorch.error = e.what();
    }
  };
  const std::vector<std::function<void(int)>> sides{[&](int round) { ort(prepared.int8, ort_int8, round); },
                                                    [&](int round) { ort(prepared.float_, ort_float, round); },
                                                    torch_side};
  for (int round = 0; round < rounds; ++round)
    for (std::size_t k = 0; k < sides.size(); ++k) sides[(k + static_cast<std::size_t>(round)) % sides.size()](round);

  json b;
  b["ort_int8"] = ort_int8.to_json();
  b["ort_float"] = ort_float.to_json();
  b["libtorch_int8"] = libtorch.to_json();
  if (!ort_int8.ms.empty() && !ort_float.ms.empty())
    b["ort_int8_speedup_vs_float"] = median(ort_float.ms) / median(ort_int8.ms);
  if (!ort_int8.ms.empty() && !libtorch.ms.empty())
    b["libtorch_int8_over_ort_int8"] = median(libtorch.ms) / median(ort_int8.ms);
  // In output steps; when the output is not quantized (scale <= 0), absolute.
  const double scale = qsdk::output_scale(*pipeline.reference);
  json agree{{"output_scale", scale}};
  if (ort_int8.output.defined()) {
    if (libtorch.output.defined())
      agree["ort_int8_vs_libtorch_int8"] = steps_between(ort_int8.output, libtorch.output, scale);
    agree["ort_int8_vs_reference"] = steps_between(ort_int8.output, pipeline.reference->run(inputs).at(0), scale);
  }
  if (ort_float.output.defined())
    agree["ort_float_vs_float_max_abs"] = steps_between(ort_float.output, pipeline.float_graph->run(inputs).at(0), 0);
  b["agreement"] = agree;
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models{"zoo:mnist_cnn",
                                  "build/models/resnet18.pt",
                                  "build/models/resnet50.pt",
                                  "build/models/mobilenet_v2.pt",
                                  "build/models/mobilenet_v3_small.pt",
                                  "build/models/transformer_encoder.pt"};
  std::vector<std::string> backends{"x86-int8", "arm"};
  std::vector<std::int64_t> batch_sizes{1, 8};
  int repeat = 5;
  int rounds = 5;
  int threads = 1;
  CLI::App app{"ONNX Runtime int8 (qsdk QDQ export) vs ONNX Runtime float and LibTorch lowered int8; prints JSON."};
  app.add_option("--model", models, "zoo:<name> or a .pt file (input shapes from the .json next to it)")
      ->capture_default_str();
  app.add_option("--backend", backends, "Backends")->capture_default_str();
  app.add_option("--batch", batch_sizes, "Batch sizes")->capture_default_str();
  app.add_option("--repeat", repeat, "Timed runs per side per round")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "Rounds of all three sides")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Intra-op threads, LibTorch and ONNX Runtime alike")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    at::set_num_interop_threads(1);
    torch::NoGradGuard no_grad;
    std::string why;
    if (!qsdk::find_onnx_runtime(&why)) throw qsdk::InputError("ONNX Runtime", why);
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());
    json result{{"tool", "qsdk_bench_onnx"}, {"threads", at::get_num_threads()},           {"repeat", repeat},
                {"rounds", rounds},          {"onnxruntime", "1.30.0 (onnxruntime-node)"}, {"libtorch", TORCH_VERSION}};
    const auto& cpu = qsdk::cpu_target();
    result["target"] = {{"cpu_features", cpu.feature_names()},
                        {"onednn_isa", cpu.onednn_isa},
                        {"onednn_max_cpu_isa", cpu.onednn_cap},
                        {"int8_isa", qsdk::to_string(cpu.int8_isa)}};
    for (const auto& model : models) {
      const std::string label = label_of(model);
      for (const auto& name : backends) {
        std::cerr << "bench: " << label << " " << name << ": pipeline\n";
        json r{{"model", model}};
        qsdk::PipelineOptions options;
        options.model = model;
        for (const auto& shape : input_shapes_of(model)) options.inputs.emplace_back(shape);
        options.backends = {qsdk::BackendChoice{name, {}, "--backend"}};
        options.calibration.source = "random";
        options.calibration.batches = 4;
        options.calibration.batch_size = 4;
        options.progress = false;
        options.export_onnx = true;
        options.onnx_runtime = false;  // the pipeline exports; this program measures
        const auto chosen = qsdk::instantiate_backends(registry, options.backends);
        const qsdk::Lowering target = chosen.front()->lowering;
        r["engine"] = qsdk::to_string(target);
        r["options"] = registry.resolve_options(name, {});
        const qsdk::ScratchDir scratch;
        std::unique_ptr<Prepared> base;
        try {
          base = std::make_unique<Prepared>(prepare(registry, options, chosen, scratch.path(), ""));
        } catch (const std::exception& e) {
          r["error"] = e.what();
          result["results"][label][name] = r;
          std::cerr << "bench: " << label << " " << name << ": " << e.what() << "\n";
          continue;
        }
        r.update(base->info);
        const auto shapes = base->pipeline.measurements.run.input_shapes;
        for (const std::int64_t batch : batch_sizes) {
          std::cerr << "bench: " << label << " " << name << ": batch " << batch << "\n";
          json b;
          // An export that folded shapes runs at the captured batch only: then
          // the model is captured again at this batch (same calibration data,
          // so the same quantization) and all three sides run that capture.
          std::unique_ptr<Prepared> recaptured;
          const bool fixed = base->int8.fixed_batch || base->float_.fixed_batch;
          if (fixed && batch != shapes.at(0).at(0) && !options.inputs.empty()) {
            auto again = options;
            for (auto& in : again.inputs) in.shape.at(0) = batch;
            try {
              recaptured = std::make_unique<Prepared>(
                  prepare(registry, again, chosen, scratch.path(), "_b" + std::to_string(batch)));
              b["recaptured_at_batch"] = batch;
              b["recaptured"] = recaptured->info;
            } catch (const std::exception& e) {
              b["recapture_error"] = e.what();
            }
          }
          torch::manual_seed(static_cast<std::uint64_t>(batch));
          const auto inputs = random_batch(shapes, batch);
          b.update(measure(recaptured ? *recaptured : *base, target, inputs, rounds, repeat, threads, scratch.path()));
          r["batch"][std::to_string(batch)] = b;
        }
        result["results"][label][name] = r;
      }
    }
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_onnx: error: " << e.what() << "\n";
    return 2;
  }
}
