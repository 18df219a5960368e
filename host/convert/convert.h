// Convert (PT2E's convert_pt2e), reference form: BatchNorm folded into the
// conv/linear before it; every observe node replaced by quantize ->
// dequantize with its slot's qparams; weights stored already quantized (a
// quantized constant followed by dequantize: PT2E's fold_quantize); derived
// (bias) specs rounded to int32 steps of input scale x weight scale and kept
// as float; dynamic specs quantized at run time. Ranges that LibTorch's
// quantized dtypes cannot hold exactly (4-bit, 16-bit) use
// fake_quantize_per_{tensor,channel}_affine, which clamps to the spec's range.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "convert/convert_results.h"

namespace qsdk {

class Graph;
class PreparedModel;

// Converts `prepared`'s graph in place. Needs calibrated (or loaded)
// statistics for every activation slot; throws InputError naming the slot
// otherwise.
ConversionSummary convert_to_reference(PreparedModel& prepared);

// Signal-to-quantization-noise ratio of `quantized` against `reference`, in
// dB: 20 log10(|reference| / |reference - quantized|). +inf when equal.
double sqnr_db(const at::Tensor& reference, const at::Tensor& quantized);

// How far below the quantization noise a second implementation's
// difference from the reference lies, in dB: 20 log10(|reference - float| /
// |candidate - reference|); +inf when they are equal. Rounding differences
// that propagate through a deep model keep it high; drift (a wrong scale,
// zero point or bias) brings it down to 0 dB or below.
double noise_margin_db(const at::Tensor& reference, const at::Tensor& candidate, const at::Tensor& float_out);

// The inputs cut along the batch dimension into slices of at most
// `max_samples`, for measurements that expose every intermediate value: in
// slices, their peak memory is one slice's activations, not the batch's.
// One slice (the inputs as given) when the inputs have no common batch size.
inline constexpr std::int64_t kMeasureSliceSamples = 8;
std::vector<std::vector<at::Tensor>> batch_slices(const std::vector<at::Tensor>& inputs,
                                                  std::int64_t max_samples = kMeasureSliceSamples);

// Writes `graph` as a TorchScript module file (forward = the graph) that
// torch::jit::load and Python's torch.jit.load both run. Atomic.
void export_torchscript(const Graph& graph, const std::filesystem::path& path);

// Size in bytes of the file export_torchscript would write (via a temporary file).
std::uintmax_t exported_file_size(const Graph& graph);

}  // namespace qsdk
