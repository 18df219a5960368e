#include "pipeline/encodings_json.h"

#include <map>

#include "export/encodings_check.h"

namespace qsdk {
namespace {

using nlohmann::json;

json tensor_entry(const OnnxQuantizedTensor& t) {
  // AIMET's per-channel fields (offset = quant_min - zero_point, so that
  // x = (q_unsigned + offset) * scale), then qsdk's own.
  json channels = json::array();
  for (std::size_t c = 0; c < t.scale.size(); ++c) {
    const double offset = double(t.quant_min - t.zero_point.at(c));
    channels.push_back({{"bitwidth", t.bitwidth},
                        {"dtype", "int"},
                        {"is_symmetric", t.symmetric ? "True" : "False"},
                        {"scale", t.scale[c]},
                        {"offset", offset},
                        {"min", offset * t.scale[c]},
                        {"max", (offset + double(t.quant_max - t.quant_min)) * t.scale[c]}});
  }
  json e{{"kind", t.kind},
         {"storage", t.dtype},
         {"bitwidth", t.bitwidth},
         {"quant_min", t.quant_min},
         {"quant_max", t.quant_max},
         {"symmetric", t.symmetric},
         {"scale", t.scale},
         {"zero_point", t.zero_point},
         {"axis", t.axis ? json(*t.axis) : json()},
         {"quantized_tensor", t.quantized_tensor},
         {"source", t.source},
         {"encodings", channels}};
  return e;
}

}  // namespace

json encodings_json(const OnnxModel& model, const Measurements& m) {
  json j{{"schema", "qsdk-encodings"},
         {"version", kEncodingsVersion},
         {"model", "model.onnx"},
         {"opset", kOnnxOpset},
         {"backend", m.backend}};
  j["activation_encodings"] = json::object();
  j["param_encodings"] = json::object();
  for (const auto& t : model.quantized)
    j[t.tensor == t.quantized_tensor ? "param_encodings" : "activation_encodings"][t.tensor] = tensor_entry(t);

  // Decisions are on the float graph; the export is of the reference, which
  // lost folded BatchNorms and gained Q/DQ. The k-th op of a kind in a module
  // is the same op in both.
  std::map<std::pair<std::string, std::string>, std::vector<const NodeDecision*>> decisions;
  for (const auto& d : m.decisions) decisions[{d.op, d.module}].push_back(&d);
  std::map<std::pair<std::string, std::string>, std::size_t> seen;
  j["ops"] = json::array();
  for (const auto& op : model.ops) {
    if (op.aten_op.find("quantize") != std::string::npos) continue;  // Q/DQ themselves
    json e{{"node", op.node}, {"op_type", op.op_type}, {"aten_op", op.aten_op}, {"module", op.module}};
    const auto key = std::make_pair(op.aten_op, op.module);
    const auto& list = decisions[key];
    const std::size_t k = seen[key]++;
    if (k < list.size()) {
      e["status"] = list[k]->status;
      e["reason"] = list[k]->reason;
    } else {
      e["status"] = "float";
      e["reason"] = "not in the captured graph (added by convert)";
    }
    j["ops"].push_back(e);
  }
  return j;
}

}  // namespace qsdk
