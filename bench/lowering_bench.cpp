// qsdk_bench_lowering [--model M]... [--backend B]... [--repeat N]
//
// Latency of the float graph and of the lowered int8 model (onednn for
// x86-int8, qnnpack for arm) at batch 1 and 8, SQNR of the lowered output
// against float, and exported file sizes (issue "Convert" targets: onednn
// int8 resnet50 at batch 1 at least 2x faster than float, file at most 0.3x).
// Calibration: 4 random batches of 4 (latency and size do not depend on the
// data; SQNR on random data is a lower bound). One lowered graph per batch
// size: onednn's quantized convs in LibTorch 1.13 can fail when one instance
// runs at a second batch size. Also the lowered output's largest difference
// from the reference Q/DQ output, in output steps, and the CPU target the
// run saw (bench/lowering.sh runs it uncapped and with ONEDNN_MAX_CPU_ISA=AVX2).
// Prints one JSON object.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "annotate/annotator.h"
#include "bench_timing.h"
#include "capture/capture.h"
#include "convert/convert.h"
#include "convert/lowering.h"
#include "data/data_source.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"
#include "target/cpu_target.h"

namespace fs = std::filesystem;
using qsdk::bench::median;
using qsdk::bench::seconds_of;

namespace {

double latency(const std::function<void()>& run, int repeat) {
  run();  // warm-up: kernel selection, allocations
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) t.push_back(seconds_of(run));
  return median(t);
}

std::vector<at::Tensor> batch_of(const std::vector<at::Tensor>& example, std::int64_t n) {
  std::vector<at::Tensor> out;
  for (const auto& t : example) {
    auto shape = t.sizes().vec();
    shape[0] = n;
    out.push_back(torch::randn(shape));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models{"zoo:mnist_cnn", "build/models/resnet18.pt", "build/models/resnet50.pt",
                                  "build/models/mobilenet_v2.pt"};
  std::vector<std::string> backends{"x86-int8", "arm"};
  int repeat = 5;
  int threads = 2;
  CLI::App app{"Float vs lowered int8 latency, SQNR and size; prints JSON."};
  app.add_option("--model", models, "zoo:<name> or a .pt file (1x3x224x224 input)")->capture_default_str();
  app.add_option("--backend", backends, "Backends")->capture_default_str();
  app.add_option("--repeat", repeat, "Timed runs per measure")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Torch intra-op threads")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    torch::NoGradGuard no_grad;
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());
    nlohmann::json result{{"tool", "qsdk"}, {"threads", at::get_num_threads()}, {"repeat", repeat}};
    const auto& cpu = qsdk::cpu_target();
    result["target"] = {{"cpu_features", cpu.feature_names()},
                        {"onednn_isa", cpu.onednn_isa},
                        {"onednn_max_cpu_isa", cpu.onednn_cap},
                        {"int8_isa", qsdk::to_string(cpu.int8_isa)}};
    for (const auto& model : models) {
      qsdk::CaptureOptions options;
      if (model.rfind("zoo:", 0) != 0) options.inputs = {{1, 3, 224, 224}};
      for (const auto& name : backends) {
        std::cerr << "bench: " << model << " " << name << "\n";
        auto captured = qsdk::capture_model(model, options);
        qsdk::Graph float_graph(captured.graph->ir().copy(), model);
        const auto backend = registry.instantiate(name, {});
        const auto annotation = qsdk::annotate(*captured.graph, *backend);
        qsdk::PreparedModel prepared(*captured.graph, annotation);
        for (int i = 0; i < 4; ++i) prepared.calibrate(batch_of(captured.example_inputs, 4));
        prepared.calibrate(captured.example_inputs);
        qsdk::convert_to_reference(prepared);
        qsdk::Graph reference(captured.graph->ir().copy(), model);
        qsdk::Graph lowered8(captured.graph->ir().copy(), model);
        qsdk::lower(*captured.graph, backend->lowering);
        qsdk::lower(lowered8, backend->lowering);
        const auto& lowered1 = *captured.graph;

        const auto x1 = captured.example_inputs;
        const auto x8 = batch_of(x1, 8);
        nlohmann::json r;
        r["float_b1_s"] = latency([&] { float_graph.run(x1); }, repeat);
        r["int8_b1_s"] = latency([&] { qsdk::run_with_engine(lowered1, backend->lowering, x1); }, repeat);
        r["float_b8_s"] = latency([&] { float_graph.run(x8); }, repeat);
        r["int8_b8_s"] = latency([&] { qsdk::run_with_engine(lowered8, backend->lowering, x8); }, repeat);
        r["speedup_b1"] = r["float_b1_s"].get<double>() / r["int8_b1_s"].get<double>();
        r["speedup_b8"] = r["float_b8_s"].get<double>() / r["int8_b8_s"].get<double>();
        r["sqnr_db"] =
            qsdk::sqnr_db(float_graph.run(x1).at(0), qsdk::run_with_engine(lowered1, backend->lowering, x1).at(0));
        const double scale = qsdk::output_scale(reference);
        r["steps_vs_reference"] = scale > 0 ? qsdk::max_difference_in_steps(
                                                  reference.run(x1).at(0),
                                                  qsdk::run_with_engine(lowered1, backend->lowering, x1).at(0), scale)
                                            : 0.0;
        r["options"] = registry.resolve_options(name, {});
        r["float_bytes"] = qsdk::exported_file_size(float_graph);
        r["int8_bytes"] = qsdk::exported_file_size(lowered1);
        r["size_ratio"] =
            double(r["int8_bytes"].get<std::uintmax_t>()) / double(r["float_bytes"].get<std::uintmax_t>());
        result["results"][model][name] = r;
      }
    }
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_lowering: error: " << e.what() << "\n";
    return 2;
  }
}
