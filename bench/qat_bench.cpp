// qsdk_bench_qat [--model M] [--case BACKEND[:key=value,...]]... [--steps N] [--lr X] ...
//
// Issue "QAT" measurement: top-1 accuracy on the held-out MNIST split (the
// last 2,000 digits, never trained or calibrated on) of
//   float   the captured model,
//   PTQ     calibrated on the calibration split (the pipeline's default 8
//           batches of 32, and all 8,000 digits), converted, lowered,
//   QAT     train_qat fine-tuned on the calibration split, converted with
//           the same convert, lowered the same way,
// for each backend case, and how much of PTQ's loss QAT recovers:
// (QAT - PTQ) / (float - PTQ) with the better PTQ. A control row: the float
// model fine-tuned exactly as QAT trains, without fake-quantize. Uses the pipeline's building blocks directly
// (capture_model, annotate, PreparedModel, train_qat, convert_to_reference,
// lower). Prints one JSON object.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "annotate/annotator.h"
#include "bench_timing.h"
#include "capture/capture.h"
#include "convert/convert.h"
#include "convert/lowering.h"
#include "data/data_source.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"
#include "qat/qat.h"

namespace {

struct Case {
  std::string backend;
  qsdk::BackendOptions options;
  std::string text;
};

// "per-channel:weight_bits=4,activation_bits=4"
Case parse_case(const std::string& text) {
  Case c;
  c.text = text;
  const auto colon = text.find(':');
  c.backend = text.substr(0, colon);
  if (colon == std::string::npos) return c;
  std::stringstream ss(text.substr(colon + 1));
  for (std::string kv; std::getline(ss, kv, ',');) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--case " + text + ": expected key=value, got " + kv);
    c.options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return c;
}

std::unique_ptr<qsdk::DataSource> mnist(const std::string& split, int batches, int batch_size, std::uint64_t seed) {
  qsdk::CalibrationConfig c;
  c.source = "mnist";
  c.split = split;
  c.batches = batches;
  c.batch_size = batch_size;
  c.seed = seed;
  return qsdk::open_data_source(c, {{1, 1, 28, 28}});
}

double accuracy(const qsdk::Graph& g, qsdk::Lowering target, const qsdk::DataSource& data) {
  torch::NoGradGuard no_grad;
  std::int64_t correct = 0, total = 0;
  for (std::size_t i = 0; i < data.num_batches(); ++i) {
    const auto b = data.batch(i);
    const auto logits = qsdk::run_with_engine(g, target, b.inputs).at(0);
    correct += logits.argmax(1).eq(b.labels).sum().item<std::int64_t>();
    total += b.labels.size(0);
  }
  return double(correct) / double(total);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "zoo:mnist_cnn_trained";
  std::vector<std::string> cases{"x86-int8", "per-channel:weight_bits=4,activation_bits=4"};
  qsdk::QatOptions qat;
  qat.steps = 300;
  qat.lr = 0.01;
  qat.freeze_bn_after = 200;
  qat.freeze_observers_after = 250;
  int calib_batches = 8;       // the pipeline's default calibration: 8 batches of 32
  const int full_batches = 0;  // one pass over the 8,000 calibration digits
  int threads = 2;
  bool progress = true;
  CLI::App app{"Held-out MNIST accuracy: float, PTQ int8 and QAT int8; prints JSON."};
  app.add_option("--model", model, "zoo:<name> or a .pt file with a [N,1,28,28] input")->capture_default_str();
  app.add_option("--case", cases, "backend[:key=value,...]")->capture_default_str();
  app.add_option("--steps", qat.steps, "QAT steps")->capture_default_str();
  app.add_option("--batch-size", qat.batch_size, "QAT and calibration batch size")->capture_default_str();
  app.add_option("--lr", qat.lr, "QAT learning rate (SGD, momentum 0.9)")->capture_default_str();
  app.add_option("--lr-schedule", qat.lr_schedule, "QAT learning-rate schedule: cosine or constant")
      ->capture_default_str();
  app.add_option("--freeze-bn-after", qat.freeze_bn_after, "QAT: freeze BatchNorm statistics after this step")
      ->capture_default_str();
  app.add_option("--freeze-observers-after", qat.freeze_observers_after, "QAT: freeze activation ranges after")
      ->capture_default_str();
  app.add_option("--calib-batches", calib_batches, "PTQ calibration batches")->capture_default_str();
  app.add_option("--threads", threads, "Torch intra-op threads")->check(CLI::PositiveNumber);
  app.add_flag("!--no-progress", progress, "No progress bars");
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());
    qsdk::CaptureOptions capture_options;
    if (model.rfind("zoo:", 0) != 0) capture_options.inputs = {{1, 1, 28, 28}};
    const auto heldout = mnist("heldout", 0, 500, 0);
    nlohmann::json result{{"tool", "qsdk"},
                          {"model", model},
                          {"threads", at::get_num_threads()},
                          {"heldout_samples", qsdk::kMnistHeldoutCount},
                          {"qat",
                           {{"steps", qat.steps},
                            {"batch_size", qat.batch_size},
                            {"optimizer", qat.optimizer},
                            {"lr", qat.lr},
                            {"lr_schedule", qat.lr_schedule},
                            {"momentum", qat.momentum},
                            {"freeze_bn_after", qat.freeze_bn_after},
                            {"freeze_observers_after", qat.freeze_observers_after}}},
                          {"calibration", {{"batches", calib_batches}, {"batch_size", qat.batch_size}}}};
    // Float accuracy, and a control: the float model fine-tuned exactly as
    // QAT trains (same data, steps, optimizer, BN freeze) without any
    // fake-quantize, to tell what QAT gains from training at all from what
    // it gains from training quantization-aware.
    double float_top1 = 0;
    auto f = qsdk::capture_model(model, capture_options);
    {
      float_top1 = accuracy(*f.graph, qsdk::Lowering::Reference, *heldout);
      const auto train = mnist("calibration", qat.steps, qat.batch_size, 1);
      std::cerr << "bench: " << model << " float fine-tuning control\n";
      qsdk::train_qat(*f.graph, qsdk::Annotation{}, qat, *train, progress);
      result["float_top1"] = float_top1;
      result["float_finetuned_top1"] = accuracy(*f.graph, qsdk::Lowering::Reference, *heldout);
    }
    for (const auto& text : cases) {
      const Case c = parse_case(text);
      const auto backend = registry.instantiate(c.backend, c.options);
      std::cerr << "bench: " << model << " " << c.text << "\n";
      nlohmann::json r{
          {"backend", c.backend}, {"options", c.options}, {"lowering", qsdk::to_string(backend->lowering)}};

      r["float_top1"] = float_top1;
      // PTQ of the fine-tuned float control (default calibration): with
      // QAT, the same training, quantization-aware or not.
      {
        auto g = f.graph->clone();
        const auto annotation = qsdk::annotate(*g, *backend);
        qsdk::PreparedModel prepared(*g, annotation);
        const auto calib = mnist("calibration", calib_batches, qat.batch_size, 0);
        {
          torch::NoGradGuard no_grad;
          for (std::size_t i = 0; i < calib->num_batches(); ++i) prepared.calibrate(calib->batch(i).inputs);
        }
        qsdk::convert_to_reference(prepared);
        qsdk::lower(*g, backend->lowering);
        r["ptq_of_finetuned_top1"] = accuracy(*g, backend->lowering, *heldout);
      }
      // PTQ twice: the pipeline's default calibration, and every digit QAT trains on.
      for (const auto& [key, batches] :
           {std::pair<std::string, int>{"ptq", calib_batches}, {"ptq_full", full_batches}}) {
        auto ptq = qsdk::capture_model(model, capture_options);
        const auto annotation = qsdk::annotate(*ptq.graph, *backend);
        qsdk::PreparedModel prepared(*ptq.graph, annotation);
        const auto calib = mnist("calibration", batches, qat.batch_size, 0);
        r[key + "_calibration_samples"] = calib->num_batches() * std::size_t(qat.batch_size);
        {
          torch::NoGradGuard no_grad;
          for (std::size_t i = 0; i < calib->num_batches(); ++i) prepared.calibrate(calib->batch(i).inputs);
        }
        qsdk::convert_to_reference(prepared);
        r[key + "_reference_top1"] = accuracy(*ptq.graph, qsdk::Lowering::Reference, *heldout);
        qsdk::lower(*ptq.graph, backend->lowering);
        r[key + "_top1"] = accuracy(*ptq.graph, backend->lowering, *heldout);
      }

      auto qat_model = qsdk::capture_model(model, capture_options);
      {
        const auto annotation = qsdk::annotate(*qat_model.graph, *backend);
        const auto train = mnist("calibration", qat.steps, qat.batch_size, 1);
        qsdk::QatResult trained;
        r["qat_seconds"] = qsdk::bench::seconds_of(
            [&] { trained = qsdk::train_qat(*qat_model.graph, annotation, qat, *train, progress); });
        r["qat_first_loss"] = trained.losses.front();
        r["qat_last_loss"] = trained.losses.back();
        qsdk::convert_to_reference(*trained.prepared);
        r["qat_reference_top1"] = accuracy(*qat_model.graph, qsdk::Lowering::Reference, *heldout);
        qsdk::lower(*qat_model.graph, backend->lowering);
        r["qat_top1"] = accuracy(*qat_model.graph, backend->lowering, *heldout);
      }
      // Against the better PTQ of the two: the conservative figure.
      const double best_ptq = std::max(r["ptq_top1"].get<double>(), r["ptq_full_top1"].get<double>());
      const double lost = float_top1 - best_ptq;
      r["best_ptq_top1"] = best_ptq;
      r["ptq_loss_points"] = 100 * lost;
      r["qat_recovered_fraction"] = lost > 0 ? (r["qat_top1"].get<double>() - best_ptq) / lost : 0.0;
      result["results"].push_back(r);
    }
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_qat: error: " << e.what() << "\n";
    return 2;
  }
}
