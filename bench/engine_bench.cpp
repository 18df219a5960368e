// qsdk_bench_engine [--model M]... [--backend B]... [--batch N]
//
// Which declared arithmetic LibTorch's own int8 kernels follow: per model and
// bundled backend that lowers (x86-int8: onednn, arm: qnnpack), the lowered
// model's output against the integer-exact reference computed under every
// declaration (multiplier float32 / float64 / int32_shift / gemmlowp x
// rounding half_to_even / half_away_from_zero / half_up), on the same seeded
// random inputs: the largest difference in output steps and the fraction of
// output values that are equal. The float Q/DQ reference against the
// lowered model is given beside them. Prints one JSON object on stdout.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "convert/lowering.h"
#include "engine/integer_reference.h"
#include "graph/graph.h"
#include "pipeline/pipeline.h"
#include "plugins/plugin_registry.h"
#include "target/cpu_target.h"

using json = nlohmann::ordered_json;

namespace {

at::Tensor dequantized(const at::Tensor& t) { return (t.is_quantized() ? t.dequantize() : t).to(at::kDouble); }

json agreement(const at::Tensor& lowered, const at::Tensor& other, double scale) {
  const at::Tensor steps = at::round((lowered - other.to(at::kDouble)).abs() / scale);
  return {{"max_steps", steps.max().item<double>()},
          {"equal_fraction", steps.eq(0).to(at::kDouble).mean().item<double>()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"LibTorch's int8 kernels against the integer reference under each declared arithmetic"};
  std::vector<std::string> models{"zoo:conv_bn_relu", "zoo:linear_relu", "zoo:residual_add",
                                  "zoo:pooling",      "zoo:conv_cat",    "zoo:mnist_cnn"};
  std::vector<std::string> backends{"x86-int8", "arm"};
  std::int64_t batch = 8;
  app.add_option("--model", models, "Models (zoo:NAME or a .pt file)");
  app.add_option("--backend", backends, "Bundled backends that lower");
  app.add_option("--batch", batch, "Samples per input");
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(1);
    torch::NoGradGuard no_grad;
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());
    json result{{"tool", "qsdk_bench_engine"},
                {"batch", batch},
                {"int8_isa", qsdk::to_string(qsdk::cpu_target().int8_isa)},
                {"onednn_isa", qsdk::cpu_target().onednn_isa}};
    for (const auto& model : models)
      for (const auto& name : backends) {
        std::cerr << "bench: " << model << " " << name << "\n";
        qsdk::PipelineOptions o;
        o.model = model;
        o.backends = {qsdk::BackendChoice{name, {}, "--backend"}};
        o.calibration.source = "random";
        o.calibration.batches = 4;
        o.calibration.batch_size = 4;
        o.progress = false;
        json r{{"model", model}, {"backend", name}};
        const qsdk::PipelineResult p = qsdk::run_pipeline(registry, o);
        if (!p.lowered) {
          r["error"] = "not lowered";
          result["results"].push_back(r);
          continue;
        }
        torch::manual_seed(7);
        std::vector<at::Tensor> inputs;
        for (auto shape : p.measurements.run.input_shapes) {
          shape.at(0) = batch;
          inputs.push_back(torch::randn(shape));
        }
        const double scale = qsdk::output_scale(*p.reference);
        const at::Tensor lowered = dequantized(p.lowered->run(inputs).at(0));
        r["output_scale"] = scale;
        r["float_reference"] = agreement(lowered, dequantized(p.reference->run(inputs).at(0)), scale);
        for (auto m : {qsdk::Multiplier::Float32, qsdk::Multiplier::Float64, qsdk::Multiplier::Int32Shift,
                       qsdk::Multiplier::Gemmlowp})
          for (auto rounding : {qsdk::Rounding::HalfToEven, qsdk::Rounding::HalfAwayFromZero, qsdk::Rounding::HalfUp}) {
            if (m == qsdk::Multiplier::Gemmlowp && rounding != qsdk::Rounding::HalfToEven) continue;  // fixed rounding
            qsdk::Arithmetic a;
            a.multiplier = m;
            a.rounding = a.pooling_rounding = a.elementwise_rounding = rounding;
            const auto ref = qsdk::run_integer_reference(*p.reference, a, inputs);
            const std::string key =
                std::string(qsdk::to_string(m)) +
                (m == qsdk::Multiplier::Gemmlowp ? "" : std::string("/") + qsdk::to_string(rounding));
            r["integer_reference"][key] = agreement(lowered, ref.outputs.at(0), scale);
          }
        result["results"].push_back(r);
      }
    std::cout << result.dump(1) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_engine: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
