// qsdk convert MODEL -b BACKEND [calibration options] --output DIR
//
// Capture, annotate, prepare, calibrate, convert to the reference Q/DQ model,
// lower it to the backend's int8 kernels (unless --no-lower or the backend
// is reference-only), and write DIR/<backend>/{model.pt,
// model_reference.pt (when lowered), manifest.json, qparams.json,
// annotation.json}. DIR is locked and checked before any work; the files are
// written to a staging directory and DIR/<backend> is replaced as a whole
// only when all of them are written (common/output_ledger.h), so a failure
// (a full disk) leaves the previous output exactly as it was.
#include <filesystem>
#include <iostream>

#include "accuracy/mixed_precision.h"
#include "cli/cli_support.h"
#include "common/error.h"
#include "common/output_ledger.h"
#include "pipeline/pipeline.h"

namespace qsdk::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  ModelArgs model;
  CalibrationArgs calibration;
  std::string output;
  bool no_lower = false;
  bool allow_unrelated_files = false;
  double max_steps = PipelineOptions{}.max_steps;
  double kernel_max_steps = PipelineOptions{}.kernel_max_steps;
  double noise_margin_db = PipelineOptions{}.min_noise_margin_db;
  double onnx_max_steps = 2.0;
  std::vector<std::string> formats{"torchscript"};
};

PipelineOptions pipeline_options(const ConvertArgs& args) {
  PipelineOptions o;
  o.model = args.model.model;
  o.inputs = parse_inputs(args.model.input_shapes);
  o.backends = args.model.backend_choices();
  if (!args.model.overrides_file.empty()) o.overrides = load_overrides_file(args.model.overrides_file);
  o.calibration = args.calibration.data;
  o.activation_observer = args.calibration.observer;
  o.load_stats = args.calibration.load_stats;
  o.lower = !args.no_lower;
  o.max_steps = args.max_steps;
  o.kernel_max_steps = args.kernel_max_steps;
  o.min_noise_margin_db = args.noise_margin_db;
  if (const std::string problem = formats_problem(args.formats); !problem.empty())
    throw InputError("--format", problem);
  o.formats = args.formats;
  o.onnx_max_steps = args.onnx_max_steps;
  return o;
}

int run_convert(const GlobalOptions& global, const ConvertArgs& args) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/false);
  const PipelineOptions options = pipeline_options(args);
  OutputDirectory output(args.output, {options.backend_label()}, args.allow_unrelated_files);
  const PipelineResult r = run_pipeline_for_target(registry, options, {}, &std::cerr);
  const Measurements& m = r.measurements;
  write_pipeline_outputs(r, output.staging() / m.backend, false, options.formats);
  output.commit();
  const fs::path dir = fs::path(args.output) / m.backend;

  const auto& c = m.conversion;
  std::cout << "backend:        " << m.backend << "\n"
            << "model:          " << args.model.model << "\n"
            << "folded BN:      " << c.folded_batch_norms + r.annotation.folded_batch_norms.size()
            << (r.annotation.folded_batch_norms.empty() ? "" : " (before annotation, as PT2E does post-training)")
            << "\n"
            << "quantized:      " << c.quantized_activations << " activations, " << c.quantized_weights << " weights, "
            << c.quantized_biases << " biases, " << c.dynamic_inputs << " dynamic inputs\n"
            << "SQNR vs float:  " << m.sqnr_db << " dB\n"
            << "size:           " << m.quantized_size << " bytes (float " << m.float_size << ", "
            << (m.float_size ? 100.0 * double(m.quantized_size) / double(m.float_size) : 0.0) << "%)\n"
            << "written:        ";
  for (const auto& [format, file] :
       {std::pair{"torchscript", "model.pt"}, {"onnx", "model.onnx"}, {"encodings", "encodings.json"}})
    if (options.wants(format)) std::cout << (dir / file).string() << ", ";
  std::cout << "manifest.json, qparams.json, annotation.json\n";
  if (m.onnx) std::cout << onnx_summary(*m.onnx);
  if (m.lowered)
    std::cout << "lowered:        " << m.lowering_target << ", " << m.lowered->lowered_ops
              << " ops on int8 kernels; differs from the reference Q/DQ model by at most "
              << m.lowered->max_difference_steps << " output quantization steps (limit " << args.max_steps << "; mean "
              << m.lowered->mean_difference_steps << ", " << m.lowered->noise_margin_db
              << " dB below the quantization noise); op by op: " << m.lowered->kernels_checked
              << " kernels checked on the reference's inputs, " << m.lowered->kernels_skipped << " not matchable"
              << (m.lowered->most_differing_kernel.empty() ? ""
                                                           : "; most often off: " + m.lowered->most_differing_kernel)
              << "\n";
  std::cout << "stages:         " << stages_summary(m.stages) << "\n";
  for (const auto& note : m.notes) std::cout << "note: " << note << "\n";
  if (!m.output_warning.empty()) std::cout << "warning: " << m.output_warning << "\n";
  if (m.lowered && !m.lowered->first_over_limit.empty()) {
    std::cerr << "qsdk: check failed: lowered kernel " << m.lowered->first_over_limit
              << " from the reference on the same inputs (limit " << args.kernel_max_steps << ")\n";
    return kExitCheckFailed;
  }
  if (const std::string problem = m.onnx_problem(args.onnx_max_steps, args.noise_margin_db); !problem.empty()) {
    std::cerr << "qsdk: check failed: " << problem << "\n";
    return kExitCheckFailed;
  }
  if (!m.lowering_agrees(args.max_steps, args.noise_margin_db)) {
    std::cerr << "qsdk: check failed: lowered model differs from the reference Q/DQ model by "
              << m.lowered->max_difference_steps << " output quantization steps (limit " << args.max_steps << "), "
              << m.lowered->noise_margin_db << " dB below the quantization noise (limit " << args.noise_margin_db
              << "), SQNR against float " << m.lowered->sqnr_db_lowered << " dB against the reference's " << m.sqnr_db
              << " (at most " << kMaxLoweredSqnrLossDb << " dB lower)\n";
    return kExitCheckFailed;
  }
  return kExitOk;
}

}  // namespace

void add_convert_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Capture, annotate, prepare, calibrate and convert a model to its reference quantized form (BatchNorm "
      "folded, quantize/dequantize with the computed qparams, quantized weights); write the TorchScript model "
      "and a manifest to DIR/<backend>/.");
  args->model.add_to(*cmd);
  args->calibration.add_to(*cmd);
  cmd->add_option("--output", args->output, "Output directory")->required()->type_name("DIR");
  cmd->add_flag("--allow-unrelated-files", args->allow_unrelated_files,
                "Write into an output directory that holds files qsdk did not write (beside them, never over them)");
  cmd->add_option("--format", args->formats,
                  "What to write, repeatable: torchscript (model.pt), onnx (model.onnx, QDQ, checked in ONNX Runtime), "
                  "encodings (encodings.json)")
      ->type_name("FORMAT")
      ->default_str("torchscript");
  cmd->add_option("--onnx-max-steps", args->onnx_max_steps,
                  "Largest allowed difference between ONNX Runtime's and the reference's outputs, in output "
                  "quantization steps (exit 1 beyond it)")
      ->capture_default_str();
  cmd->add_flag("--no-lower", args->no_lower,
                "Keep the reference Q/DQ model; do not lower to the backend's int8 kernels (onednn, qnnpack)");
  cmd->add_option("--max-steps", args->max_steps,
                  "Largest allowed difference between lowered and reference model outputs, in output quantization "
                  "steps (exit 1 beyond it)")
      ->capture_default_str();
  cmd->add_option("--noise-margin-db", args->noise_margin_db,
                  "A lowered or ONNX Runtime output beyond its step limit still agrees when its difference from the "
                  "reference is this many dB below the quantization noise (deep models: one-step differences add up)")
      ->capture_default_str();
  cmd->add_option("--kernel-max-steps", args->kernel_max_steps,
                  "Largest allowed difference of one lowered kernel from the reference on the reference's inputs, in "
                  "its output steps (exit 1 beyond it)")
      ->capture_default_str();
  cmd->callback([&global, &result, args] { result = run_convert(global, *args); });
}

}  // namespace qsdk::cli
