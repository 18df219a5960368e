// qsdk_bench_compare MODEL.pt --shape 1,3,224,224 --data DATA.pt [--backend B]... [--calib-batches K]
//                   [--batch-size 8] [--pipeline-repeat R] [--repeat N] [--threads T]
//
// qsdk's side of bench/run.sh's comparison with PyTorch's FX and TorchScript
// graph mode quantization (bench/peer_compare.py is the other side; both read
// the same model file and the same calibration tensor file). Per backend:
//   pipeline   capture, annotate, prepare, convert, lower, each timed; median
//              of R runs (run 1 calibrates on K batches, later runs on one
//              batch, untimed: calibration is not part of the pipeline time)
//   calibrate  per batch: the prepared graph vs the float graph on the same
//              batch, interleaved, median over the K batches
//   latency    float vs lowered int8 at batch 1 and at the data's batch size
//              (one lowered instance per batch size: onednn quantized convs in
//              LibTorch 1.13 can fail when one instance sees a second size)
//   sqnr       lowered int8 output vs float on the evaluation batch (the data
//              file's batch K, not used for calibration)
//   size       exported bytes of the float and the lowered model
// Prints one JSON object (seconds, bytes, dB).
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
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

using qsdk::bench::median;
using qsdk::bench::seconds_of;

namespace {

double latency(const std::function<void()>& run, int repeat) {
  run();  // warm-up: kernel selection, allocations
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) t.push_back(seconds_of(run));
  return median(t);
}

std::vector<at::Tensor> first_rows(const std::vector<at::Tensor>& batch, std::int64_t n) {
  std::vector<at::Tensor> out;
  for (const auto& t : batch) out.push_back(t.narrow(0, 0, n).contiguous());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, shape_text, data;
  std::vector<std::string> backends{"x86-int8", "arm"};
  int calib_batches = 4;
  int batch_size = 8;
  int pipeline_repeat = 3;
  int repeat = 5;
  int threads = 2;
  CLI::App app{"qsdk side of the PyTorch comparison (bench/run.sh); prints JSON."};
  app.add_option("model", model, "TorchScript file")->required();
  app.add_option("--shape", shape_text, "Input shape at batch 1, e.g. 1,3,224,224")->required();
  app.add_option("--data", data, "Tensor file (torch.save) of at least (K+1) x batch-size samples")->required();
  app.add_option("--backend", backends, "Backends")->capture_default_str();
  app.add_option("--calib-batches", calib_batches, "Calibration batches K")->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "Calibration batch size")->check(CLI::PositiveNumber);
  app.add_option("--pipeline-repeat", pipeline_repeat, "Pipeline runs R")->check(CLI::PositiveNumber);
  app.add_option("--repeat", repeat, "Timed runs per latency measure")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Torch intra-op threads")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    torch::NoGradGuard no_grad;
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());
    qsdk::CaptureOptions options;
    options.inputs = {qsdk::parse_shape(shape_text)};

    qsdk::CalibrationConfig config;
    config.source = data;
    config.batches = calib_batches + 1;
    config.batch_size = batch_size;
    const auto source = qsdk::open_data_source(config, options.inputs);
    std::vector<std::vector<at::Tensor>> batches;
    for (int i = 0; i < calib_batches; ++i) batches.push_back(source->batch(std::size_t(i)).inputs);
    const auto eval8 = source->batch(std::size_t(calib_batches)).inputs;
    const auto eval1 = first_rows(eval8, 1);

    nlohmann::json result{{"tool", "qsdk"},
                          {"model", model},
                          {"threads", at::get_num_threads()},
                          {"torch_version", TORCH_VERSION},
                          {"calib_batches", calib_batches},
                          {"batch_size", batch_size},
                          {"pipeline_repeat", pipeline_repeat},
                          {"repeat", repeat}};
    for (const auto& name : backends) {
      std::cerr << "bench: qsdk " << model << " " << name << "\n";
      nlohmann::json r;
      try {
        const auto backend = registry.instantiate(name, {});
        std::map<std::string, std::vector<double>> stages;
        std::unique_ptr<qsdk::Graph> float_graph, lowered1, lowered8;
        std::size_t nodes = 0, observers = 0;
        for (int run = 0; run < pipeline_repeat; ++run) {
          qsdk::CapturedModel captured;
          stages["capture"].push_back(seconds_of([&] { captured = qsdk::capture_model(model, options); }));
          nodes = captured.graph->nodes().size();
          if (run == 0) float_graph = captured.graph->clone();
          qsdk::Annotation annotation;
          stages["annotate"].push_back(seconds_of([&] { annotation = qsdk::annotate(*captured.graph, *backend); }));
          std::unique_ptr<qsdk::PreparedModel> prepared;
          stages["prepare"].push_back(
              seconds_of([&] { prepared = std::make_unique<qsdk::PreparedModel>(*captured.graph, annotation); }));
          observers = prepared->observe_nodes();
          if (run == 0) {
            // Calibration: prepared vs float on the same batch, interleaved.
            float_graph->run(batches.at(0));  // warm-up (compiles the float graph)
            std::vector<double> float_t, calib_t;
            for (const auto& b : batches) {
              float_t.push_back(seconds_of([&] { float_graph->run(b); }));
              calib_t.push_back(seconds_of([&] { prepared->calibrate(b); }));
            }
            r["calib_float_batch_s"] = median(float_t);
            r["calib_prepared_batch_s"] = median(calib_t);
            r["calib_ratio"] = median(calib_t) / median(float_t);
            r["calib_float_times_s"] = float_t;
            r["calib_prepared_times_s"] = calib_t;
          } else {
            prepared->calibrate(batches.at(0));  // untimed: convert needs statistics
          }
          stages["convert"].push_back(seconds_of([&] { qsdk::convert_to_reference(*prepared); }));
          std::unique_ptr<qsdk::Graph> reference_copy;
          if (run == 0) reference_copy = captured.graph->clone();
          stages["lower"].push_back(seconds_of([&] { qsdk::lower(*captured.graph, backend->lowering); }));
          if (run == 0) {
            lowered1 = std::move(captured.graph);
            lowered8 = std::move(reference_copy);
            qsdk::lower(*lowered8, backend->lowering);
          }
        }
        std::vector<double> total, without_capture;
        for (int i = 0; i < pipeline_repeat; ++i) {
          double without = 0;
          for (const auto& [stage, times] : stages)
            if (stage != "capture") without += times[std::size_t(i)];
          without_capture.push_back(without);
          total.push_back(without + stages["capture"][std::size_t(i)]);
        }
        for (const auto& [stage, times] : stages) {
          r["stages_s"][stage] = median(times);
          r["stage_times_s"][stage] = times;
        }
        r["pipeline_s"] = median(total);
        r["pipeline_without_capture_s"] = median(without_capture);
        r["pipeline_times_s"] = total;
        r["nodes"] = nodes;
        r["observers"] = observers;

        const auto lowering = backend->lowering;
        r["float_b1_s"] = latency([&] { float_graph->run(eval1); }, repeat);
        r["int8_b1_s"] = latency([&] { qsdk::run_with_engine(*lowered1, lowering, eval1); }, repeat);
        r["float_b8_s"] = latency([&] { float_graph->run(eval8); }, repeat);
        r["int8_b8_s"] = latency([&] { qsdk::run_with_engine(*lowered8, lowering, eval8); }, repeat);
        r["sqnr_db"] =
            qsdk::sqnr_db(float_graph->run(eval8).at(0), qsdk::run_with_engine(*lowered8, lowering, eval8).at(0));
        r["float_bytes"] = qsdk::exported_file_size(*float_graph);
        r["int8_bytes"] = qsdk::exported_file_size(*lowered1);
      } catch (const std::exception& e) {
        // One backend failing on a model does not lose the other's figures.
        std::cerr << "qsdk_bench_compare: " << name << ": error: " << e.what() << "\n";
        r["error"] = std::string(e.what()).substr(0, 300);
      }
      result["backends"][name] = r;
    }
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_compare: error: " << e.what() << "\n";
    return 2;
  }
}
