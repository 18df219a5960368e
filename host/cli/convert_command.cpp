// qsdk convert MODEL -b BACKEND [calibration options] --output DIR
//
// Capture, annotate, prepare, calibrate, convert to the reference Q/DQ model,
// lower it to the backend's int8 kernels (unless --no-lower or the backend
// is reference-only), and write DIR/<backend>/{model.pt,
// model_reference.pt (when lowered), manifest.json, qparams.json,
// annotation.json}. Every file is written atomically; a failure before the
// writes leaves DIR as it was.
#include <torch/version.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "annotate/report.h"
#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/fingerprint.h"
#include "convert/agreement.h"
#include "convert/convert.h"
#include "convert/lowering.h"
#include "prepare/prepare.h"
#include "prepare/qparams_report.h"
#include "qsdk/abi.h"

namespace qsdk::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  ModelArgs model;
  CalibrationArgs calibration;
  std::string output;
  bool no_lower = false;
  double max_steps = 1.0;
};

int run_convert(const GlobalOptions& global, const ConvertArgs& args) {
  auto m = capture_and_annotate(global, args.model);
  Graph float_graph(m.captured.graph->ir().copy(), m.captured.graph->source());
  PreparedModel prepared(*m.captured.graph, m.annotation);
  const CalibrationRun calibration = calibrate_prepared(prepared, m.captured, args.calibration);
  // SQNR is measured on data like the calibration data (its first batch),
  // or on the example input when statistics were loaded instead.
  const std::vector<at::Tensor> eval_inputs =
      calibration.first_batch.empty() ? m.captured.example_inputs : calibration.first_batch;
  const auto float_out = float_graph.run(eval_inputs);

  const std::string qparams = qparams_json(prepared);
  const std::string annotation = annotation_json(*m.captured.graph, m.annotation);
  const ConversionSummary summary = convert_to_reference(prepared);
  const auto quant_out = m.captured.graph->run(eval_inputs);
  const double sqnr = sqnr_db(float_out.at(0), quant_out.at(0));

  // Lowering to the first backend's kernels; the reference Q/DQ model is
  // kept next to it, and the two must agree within --max-steps output steps.
  const Lowering target = args.no_lower ? Lowering::Reference : m.backends.front()->lowering;
  Graph reference(m.captured.graph->ir().copy(), m.captured.graph->source());
  nlohmann::json lowering_json{{"target", to_string(target)}};
  double steps = 0;
  std::string first_bad_op;
  if (target != Lowering::Reference) {
    const double out_scale = output_scale(reference);
    const LoweringReport report = lower(*m.captured.graph, target);
    const auto lowered_out = run_with_engine(*m.captured.graph, target, eval_inputs);
    steps = out_scale > 0 ? max_difference_in_steps(quant_out.at(0), lowered_out.at(0), out_scale) : 0.0;
    const AgreementReport ops = op_by_op_agreement(reference, *m.captured.graph, target, eval_inputs);
    lowering_json["op_by_op"] = {{"checked", ops.checked.size()}, {"skipped", ops.skipped}};
    if (const OpAgreement* bad = ops.first_over(args.max_steps)) {
      lowering_json["op_by_op"]["first_over_limit"] = {
          {"op", bad->op}, {"position", bad->position}, {"steps", bad->steps}};
      first_bad_op = bad->op + " (node " + std::to_string(bad->position) + " of the lowered graph) differs by " +
                     std::to_string(bad->steps) + " steps";
    }
    lowering_json["lowered_ops"] = report.lowered_ops;
    lowering_json["notes"] = report.notes;
    lowering_json["output_scale"] = out_scale;
    lowering_json["max_difference_steps"] = steps;
    lowering_json["sqnr_db_lowered"] = sqnr_db(float_out.at(0), lowered_out.at(0));
  }

  nlohmann::json manifest;
  manifest["qsdk_manifest_version"] = 1;
  manifest["backends"] = nlohmann::json::array();
  for (const auto& b : m.backends)
    manifest["backends"].push_back({{"name", b->name}, {"version", b->version}, {"vendor", b->vendor}});
  manifest["model"] = {
      {"source", args.model.model},
      {"input_shapes", nlohmann::json::array()},
      {"fingerprint", args.model.model.rfind("zoo:", 0) == 0 ? "zoo:" + args.model.model.substr(4) + "@seed0"
                                                             : Fingerprint::of_file(args.model.model)}};
  for (const auto& t : m.captured.example_inputs) manifest["model"]["input_shapes"].push_back(t.sizes().vec());
  manifest["calibration"] = {{"source", args.calibration.load_stats.empty() ? args.calibration.data.source
                                                                            : "stats:" + args.calibration.load_stats},
                             {"batches", args.calibration.data.batches},
                             {"batch_size", args.calibration.data.batch_size},
                             {"seed", args.calibration.data.seed},
                             {"fingerprint", calibration.fingerprint}};
  manifest["versions"] = {{"qsdk", "0.1.0"}, {"sdk_abi", kAbiVersion}, {"libtorch", TORCH_VERSION}};
  manifest["conversion"] = {
      {"folded_batch_norms", summary.folded_batch_norms}, {"quantized_activations", summary.quantized_activations},
      {"quantized_weights", summary.quantized_weights},   {"quantized_biases", summary.quantized_biases},
      {"dynamic_inputs", summary.dynamic_inputs},         {"standalone_batch_norms", summary.notes}};
  const auto float_size = exported_file_size(float_graph);
  const auto int8_size = exported_file_size(*m.captured.graph);
  const auto reference_size = exported_file_size(reference);
  manifest["sqnr_db"] = sqnr;
  manifest["size_bytes"] = {{"float", float_size}, {"quantized", int8_size}, {"reference", reference_size}};
  manifest["qparams"] = nlohmann::json::parse(qparams);
  manifest["lowering"] = lowering_json;

  const fs::path dir = fs::path(args.output) / m.annotation.backends;
  export_torchscript(*m.captured.graph, dir / "model.pt");
  if (target != Lowering::Reference) export_torchscript(reference, dir / "model_reference.pt");
  write_file_atomically(dir / "qparams.json", qparams);
  write_file_atomically(dir / "annotation.json", annotation);
  write_file_atomically(dir / "manifest.json", manifest.dump(2) + "\n");

  std::cout << "backend:        " << m.annotation.backends << "\n"
            << "model:          " << args.model.model << "\n"
            << "folded BN:      " << summary.folded_batch_norms << "\n"
            << "quantized:      " << summary.quantized_activations << " activations, " << summary.quantized_weights
            << " weights, " << summary.quantized_biases << " biases, " << summary.dynamic_inputs << " dynamic inputs\n"
            << "SQNR vs float:  " << sqnr << " dB\n"
            << "size:           " << int8_size << " bytes (float " << float_size << ", "
            << (float_size ? 100.0 * double(int8_size) / double(float_size) : 0.0) << "%)\n"
            << "written:        " << (dir / "model.pt").string()
            << " and manifest.json, qparams.json, annotation.json\n";
  if (target != Lowering::Reference)
    std::cout << "lowered:        " << to_string(target) << ", " << lowering_json["lowered_ops"].get<int>()
              << " ops on int8 kernels; differs from the reference Q/DQ model by at most " << steps
              << " output quantization steps (limit " << args.max_steps
              << "); op by op: " << lowering_json["op_by_op"]["checked"].get<int>()
              << " kernels checked on the reference's inputs, " << lowering_json["op_by_op"]["skipped"].get<int>()
              << " not matchable\n";
  for (const auto& note : summary.notes) std::cout << "note: " << note << "\n";
  if (target != Lowering::Reference)
    for (const auto& note : lowering_json["notes"]) std::cout << "lowering: " << note.get<std::string>() << "\n";
  if (!first_bad_op.empty()) {
    std::cerr << "qsdk: check failed: lowered kernel " << first_bad_op
              << " from the reference on the same inputs (limit " << args.max_steps << ")\n";
    return kExitCheckFailed;
  }
  // Steps come from dequantized floats: one step can read as 1.00001.
  if (steps > args.max_steps + 1e-3) {
    std::cerr << "qsdk: check failed: lowered model differs from the reference Q/DQ model by " << steps
              << " output quantization steps (limit " << args.max_steps << ")\n";
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
  cmd->add_flag("--no-lower", args->no_lower,
                "Keep the reference Q/DQ model; do not lower to the backend's int8 kernels (onednn, qnnpack)");
  cmd->add_option("--max-steps", args->max_steps,
                  "Largest allowed difference between lowered and reference outputs, in output quantization steps "
                  "(exit 1 beyond it)")
      ->capture_default_str();
  cmd->callback([&global, &result, args] { result = run_convert(global, *args); });
}

}  // namespace qsdk::cli
