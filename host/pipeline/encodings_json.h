// encodings.json: the qparams of an ONNX export, per tensor by the names the
// ONNX file uses, and per op whether it was quantized or stayed float and
// why (annotation's decision log). Schema: README.md, "Encodings file".
#pragma once

#include <nlohmann/json.hpp>

#include "export/onnx_export.h"
#include "pipeline/measurements.h"

namespace qsdk {

nlohmann::json encodings_json(const OnnxModel& model, const Measurements& m);

}  // namespace qsdk
