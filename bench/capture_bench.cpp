// qsdk_bench_capture MODEL --input-shape S [--input-shape S]... [--repeat N] [--phases] [--annotate BACKEND]
//
// Times qsdk::capture_model on a TorchScript file: one warm-up capture, then
// N timed ones. With --phases, also times LibTorch's own steps alone on the
// same file (load; load + eval + freeze_module; one forward of the frozen
// module), so capture time can be split into what LibTorch does and what
// qsdk adds (canonicalization, shape propagation). With --annotate, also
// times annotating the captured graph with a bundled backend's rules.
// Prints one JSON object;
// all times are in seconds. bench/run.sh runs it next to bench/peer_capture.py.
#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/script.h>
#include <torch/version.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "annotate/annotator.h"
#include "bench_timing.h"
#include "capture/capture.h"
#include "common/error.h"
#include "plugins/plugin_registry.h"

namespace {

using qsdk::bench::median;
using qsdk::bench::seconds_of;

using json = nlohmann::json;

// One warm-up run, then `repeat` timed runs.
json measure(int repeat, const std::function<void()>& work) {
  const double warmup = seconds_of(work);
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) times.push_back(seconds_of(work));
  return {{"warmup_s", warmup},
          {"times_s", times},
          {"median_s", median(times)},
          {"min_s", *std::min_element(times.begin(), times.end())}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  std::vector<std::string> shape_texts;
  int repeat = 5;
  int threads = 2;
  std::uint64_t seed = 0;
  bool phases = false;
  std::string annotate_backend;

  CLI::App app{"Times qsdk capture of a TorchScript file; prints one JSON object (seconds)."};
  app.add_option("model", model, "TorchScript file (.pt) or zoo:<name>")->required();
  app.add_option("--input-shape", shape_texts, "Shape of one model input, e.g. 1,3,224,224; once per input")
      ->type_name("SHAPE");
  app.add_option("--repeat", repeat, "Timed captures after one warm-up")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Torch intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Seed of the example inputs");
  app.add_flag("--phases", phases, "Also time LibTorch's load, load+freeze and one forward alone");
  app.add_option("--annotate", annotate_backend, "Also time annotation with this bundled backend")
      ->type_name("BACKEND");
  CLI11_PARSE(app, argc, argv);

  try {
    at::set_num_threads(threads);
    qsdk::CaptureOptions options;
    for (const auto& s : shape_texts) options.inputs.push_back(qsdk::parse_shape(s));
    options.seed = seed;

    std::size_t nodes = 0;
    json result = {{"tool", "qsdk"},
                   {"model", model},
                   {"input_shapes", qsdk::shapes_of(options.inputs)},
                   {"repeat", repeat},
                   {"threads", at::get_num_threads()},
                   {"torch_version", TORCH_VERSION}};
    json measures;
    measures["capture"] = measure(repeat, [&] {
      auto captured = qsdk::capture_model(model, options);
      nodes = captured.graph->nodes().size();
    });
    result["nodes"] = nodes;

    if (!annotate_backend.empty()) {
      qsdk::PluginRegistry registry;
      registry.load_directory(qsdk::bundled_plugin_dir());
      const auto backend = registry.instantiate(annotate_backend, {});
      const auto captured = qsdk::capture_model(model, options);
      std::size_t matches = 0;
      measures["annotate"] =
          measure(repeat, [&] { matches = qsdk::annotate(*captured.graph, *backend).matches.size(); });
      result["annotate_backend"] = annotate_backend;
      result["annotate_matches"] = matches;
    }

    if (phases && model.rfind("zoo:", 0) != 0) {
      torch::NoGradGuard no_grad;
      std::vector<c10::IValue> inputs;
      for (const auto& s : options.inputs) inputs.emplace_back(torch::randn(s.shape));
      measures["load"] = measure(repeat, [&] { torch::jit::load(model); });
      measures["load_freeze"] = measure(repeat, [&] {
        auto m = torch::jit::load(model);
        m.eval();
        torch::jit::freeze_module(m);
      });
      auto m = torch::jit::load(model);
      m.eval();
      auto frozen = torch::jit::freeze_module(m);
      measures["forward"] = measure(repeat, [&] { frozen.forward(inputs); });
    }
    result["measures"] = measures;
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const qsdk::InputError& e) {
    std::cerr << "qsdk_bench_capture: error: " << e.what() << "\n";
    return qsdk::kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_capture: error: " << e.what() << "\n";
    return 1;
  }
}
