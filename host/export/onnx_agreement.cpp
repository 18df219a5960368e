#include "export/onnx_agreement.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/ir.h>

#include <fstream>
#include <limits>

#include "convert/convert.h"
#include "convert/lowering.h"
#include "export/onnx_export.h"
#include "export/onnx_runtime.h"
#include "graph/graph.h"
#include "target/cpu_target.h"

namespace qsdk {
namespace {

// Largest |a - b| in steps of `scale`, per element of a tensor pair.
double steps_between(const at::Tensor& a, const at::Tensor& b, double scale) {
  if (a.numel() == 0) return 0;
  const double diff = (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

// The reference's value of each activation QuantizeLinear, dequantized:
// the reference graph with those values added as outputs.
std::vector<at::Tensor> reference_quantized_values(const Graph& reference,
                                                   const std::vector<const OnnxQuantizedTensor*>& tensors,
                                                   const std::vector<at::Tensor>& inputs, std::size_t& outputs) {
  auto copy = reference.clone();
  outputs = reference.run(inputs).size();
  for (const auto* t : tensors) copy->ir().registerOutput(copy->node(t->reference_node)->output());
  copy->renumber();
  auto all = copy->run(inputs);
  std::vector<at::Tensor> values(all.begin() + static_cast<std::ptrdiff_t>(outputs), all.end());
  for (auto& v : values)
    if (v.is_quantized()) v = v.dequantize();
  return values;
}

at::Tensor dequantized(const at::Tensor& ints, const OnnxQuantizedTensor& t) {
  const at::Tensor q = ints.to(at::kDouble);
  if (!t.axis) return (q - double(t.zero_point.at(0))) * t.scale.at(0);
  std::vector<std::int64_t> shape(static_cast<std::size_t>(q.dim()), 1);
  shape[static_cast<std::size_t>(*t.axis)] = -1;
  const at::Tensor s = at::tensor(t.scale, at::kDouble).reshape(shape);
  const at::Tensor z = at::tensor(t.zero_point, at::kDouble).reshape(shape);
  return (q - z) * s;
}

}  // namespace

std::vector<OnnxRuntimeAgreement> measure_onnx_agreement(const Graph& reference, const OnnxModel& model,
                                                         const std::vector<at::Tensor>& inputs,
                                                         const at::Tensor& float_output) {
  const ScratchDir scratch;
  const auto file = scratch.path() / "model.onnx";
  std::ofstream(file, std::ios::binary) << model.bytes;

  const at::Tensor ref_out = reference.run(inputs).at(0);
  const double scale = std::max(0.0, output_scale(reference));
  std::vector<const OnnxQuantizedTensor*> activations;
  for (const auto& t : model.quantized)
    if (t.reference_node >= 0 && t.tensor != t.quantized_tensor) activations.push_back(&t);

  std::vector<OnnxRuntimeAgreement> runs;
  for (const bool optimized : {true, false}) {
    OnnxRuntimeAgreement a;
    a.optimized = optimized;
    a.output_scale = scale;
    a.steps_bound = !optimized || cpu_target().avx512_vnni || cpu_target().avx_vnni;
    OrtRunOptions options;
    options.optimize = optimized;
    // An intermediate as a graph output keeps ONNX Runtime from fusing it
    // away: only the unoptimized run looks inside, on a copy that lists them.
    auto run_file = file;
    if (!optimized && !activations.empty()) {
      std::vector<std::string> names;
      for (const auto* t : activations) names.push_back(t->quantized_tensor);
      run_file = scratch.path() / "model_with_tensors.onnx";
      std::ofstream(run_file, std::ios::binary) << with_outputs(model.bytes, names);
      options.fetch = {model.output_names.at(0)};
      options.fetch.insert(options.fetch.end(), names.begin(), names.end());
    }
    const OrtRunResult ort = run_onnx_runtime(run_file, model.input_names, inputs, options, scratch.path());
    a.max_steps = steps_between(ref_out, ort.outputs.at(0), scale);
    a.sqnr_db = sqnr_db(float_output, ort.outputs.at(0));
    a.noise_margin_db = noise_margin_db(ref_out, ort.outputs.at(0), float_output);
    if (!optimized && !activations.empty()) {
      std::size_t n_outputs = 0;
      const auto values = reference_quantized_values(reference, activations, inputs, n_outputs);
      for (std::size_t i = 0; i < activations.size(); ++i) {
        const auto& t = *activations[i];
        const double steps = steps_between(values[i], dequantized(ort.outputs.at(i + 1), t), t.scale.at(0));
        ++a.tensors_checked;
        if (a.worst_tensor.empty() || steps > a.worst_tensor_steps) {
          a.worst_tensor_steps = steps;
          a.worst_tensor = t.tensor;
        }
      }
    }
    runs.push_back(a);
  }
  return runs;
}

}  // namespace qsdk
