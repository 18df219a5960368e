// The one JSON form of Measurements (pipeline/measurements.h), versioned,
// and its reader. Every file qsdk writes about a run is this document or a
// projection of it:
//
//   manifest.json      the document without `measurements_version`,
//                      `backend`, `latency_ms`, `seconds` and `details`
//                      (plus `files`, added when the model is written);
//   summary.json       one entry per backend: the document without `qparams`
//                      and `details`, plus `lowering_agrees`;
//   results.json       each conformance case's `measurements`: the whole
//                      document;
//   layers.json        `details.layers`.
//
// Layout (keys as written; nlohmann writes them sorted):
//   measurements_version: 1, backend: "a" | "a+b",
//   backends: [{name, version, vendor, rule_hash, plugin_abi_version, plugin_file, options?}],
//   backend_options: {..}  (the first backend's, target option resolved),
//   target: {cpu_features, onednn_isa, onednn_max_cpu_isa, int8_isa, choices?: {OPTION: {requested, chosen}}},
//   model: {source, input_shapes, fingerprint}, mode: ptq | qat,
//   calibration: {source, batches, batch_size, seed, fingerprint},
//   qat?: {steps, epochs, optimizer, lr, lr_schedule, momentum, weight_decay, batch_size,
//          freeze_bn_after, freeze_observers_after, final_loss},
//   versions: {qsdk, sdk_abi, libtorch},
//   conversion: {folded_batch_norms, quantized_activations, quantized_weights, quantized_biases,
//                dynamic_inputs, standalone_batch_norms},
//   ops: {quantized, float, bookkeeping, total} (float: tensor ops; bookkeeping: shape/scalar arithmetic),
//   sqnr_db, size_bytes: {float, quantized}, qparams: [{slot, kind, label, dtype, quant_min, quant_max,
//   scale?, zero_point?, axis?}],
//   lowering: {target, lowered_ops?, output_scale?, max_difference_steps?, sqnr_db_lowered?,
//              op_by_op?: {checked, skipped, first_over_limit?}},
//   accuracy?: {float_top1, quantized_top1, agreement, samples}, latency_ms?: {float, int8},
//   mixed_precision?: {metric, order, target, float, start, final, met, units, runs,
//                      fallbacks: [{unit, nodes, to}], overrides_file, stopped?},
//   notes: [..], seconds,
//   details: {decisions: [{id, op, module, status, match, reason, bookkeeping?}], shared_tensors: [[label, ..]],
//             graphs: {reference: [{id, op, module, near?}], lowered?: [..]},
//             biases: [{node, op, module, per_channel, max_error_steps}],
//             layers: [{node, op, module, sqnr_db}], worst_kernel_steps?, worst_kernel?, qat_losses: [..]}
//
// An infinite (or NaN) number is written as the string "inf", "-inf" or
// "nan", everywhere: JSON has no infinity.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/measurements.h"

namespace qsdk {

inline constexpr int kMeasurementsVersion = 1;

nlohmann::json to_json(const Measurements& m);

// Reads the document (or a projection of it: summary entries leave out
// qparams and details, which then read as empty). InputError naming
// `source` for another version or a malformed document.
Measurements measurements_from_json(const nlohmann::json& j, const std::string& source);

// The projections above.
nlohmann::json manifest_json(const Measurements& m);
nlohmann::json summary_entry_json(const Measurements& m, double max_steps, double min_noise_margin_db);
nlohmann::json layers_json(const Measurements& m);
// qparams.json (and `qsdk calibrate --json`): the `qparams` list.
nlohmann::json qparams_json(const std::vector<QParamsRecord>& slots);

// Numbers as the document writes them: +inf as "inf".
nlohmann::json json_number(double v);
double number_of(const nlohmann::json& v, double fallback = 0);

}  // namespace qsdk
