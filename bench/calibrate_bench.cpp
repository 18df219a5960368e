// qsdk_bench_calibrate MODEL [--input-shape S]... [--backend B]... [--batch-size N] [--repeat N]
//
// Calibration cost: the prepared graph (observe nodes feeding the backend's
// observers) against the captured float graph, on the same batches, in the
// same process, interleaved so machine noise hits both. Prints one JSON
// object with per-batch medians and the ratio prepared / float (issue
// "Prepare and calibrate" target: at most 1.2 on resnet18).
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "annotate/annotator.h"
#include "bench_timing.h"
#include "capture/capture.h"
#include "common/error.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"

using qsdk::bench::median;
using qsdk::bench::seconds_of;

int main(int argc, char** argv) {
  std::string model = "zoo:resnet18";
  std::vector<std::string> shape_texts;
  std::vector<std::string> backends{"x86-int8", "arm"};
  int batch_size = 8;
  int repeat = 5;
  int threads = 2;
  CLI::App app{"Times calibration batches on the prepared graph against the float graph; prints JSON."};
  app.add_option("model", model, "zoo:<name> or a TorchScript file")->capture_default_str();
  app.add_option("--input-shape", shape_texts, "Model input shape (files)")->type_name("SHAPE");
  app.add_option("--backend", backends, "Backends to prepare with")->capture_default_str();
  app.add_option("--batch-size", batch_size, "Calibration batch size")->check(CLI::PositiveNumber);
  app.add_option("--repeat", repeat, "Timed batches per measure")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Torch intra-op threads")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    at::set_num_threads(threads);
    torch::NoGradGuard no_grad;
    qsdk::CaptureOptions options;
    for (const auto& s : shape_texts) options.inputs.push_back(qsdk::parse_shape(s));
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());

    nlohmann::json result{{"tool", "qsdk"},
                          {"model", model},
                          {"batch_size", batch_size},
                          {"repeat", repeat},
                          {"threads", at::get_num_threads()}};
    for (const auto& name : backends) {
      auto captured = qsdk::capture_model(model, options);
      auto float_graph = qsdk::capture_model(model, options);  // a second, untouched copy
      const auto backend = registry.instantiate(name, {});
      const auto annotation = qsdk::annotate(*captured.graph, *backend);
      qsdk::PreparedModel prepared(*captured.graph, annotation);

      std::vector<at::Tensor> batch;
      for (const auto& t : captured.example_inputs) {
        auto shape = t.sizes().vec();
        shape[0] = batch_size;
        batch.push_back(torch::randn(shape));
      }
      // Warm up both (first runs allocate and pick kernels).
      float_graph.graph->run(batch);
      prepared.calibrate(batch);
      std::vector<double> float_times, prepared_times;
      for (int i = 0; i < repeat; ++i) {
        float_times.push_back(seconds_of([&] { float_graph.graph->run(batch); }));
        prepared_times.push_back(seconds_of([&] { prepared.calibrate(batch); }));
      }
      const double f = median(float_times), p = median(prepared_times);
      result["backends"][name] = {{"float_batch_s", f},
                                  {"prepared_batch_s", p},
                                  {"ratio", p / f},
                                  {"float_times_s", float_times},
                                  {"prepared_times_s", prepared_times},
                                  {"observer_slots", prepared.slots().size()},
                                  {"observe_nodes", prepared.observe_nodes()}};
    }
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_calibrate: error: " << e.what() << "\n";
    return 2;
  }
}
