#include "export/encodings_check.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <map>

namespace qsdk {
namespace {

using nlohmann::json;

// Values of an initializer, as doubles (raw data or typed fields).
std::vector<double> values_of(const onnx::TensorProto& t) {
  std::vector<double> out;
  const std::string& raw = t.raw_data();
  auto read = [&](auto sample) {
    using T = decltype(sample);
    for (std::size_t i = 0; i + sizeof(T) <= raw.size(); i += sizeof(T)) {
      T v;
      std::memcpy(&v, raw.data() + i, sizeof(T));
      out.push_back(double(v));
    }
  };
  switch (t.data_type()) {
    case onnx::TensorProto_DataType_FLOAT:
      if (raw.empty())
        for (float v : t.float_data()) out.push_back(v);
      else
        read(float{});
      break;
    case onnx::TensorProto_DataType_INT8:
      if (raw.empty())
        for (auto v : t.int32_data()) out.push_back(v);
      else
        read(std::int8_t{});
      break;
    case onnx::TensorProto_DataType_UINT8:
      if (raw.empty())
        for (auto v : t.int32_data()) out.push_back(v);
      else
        read(std::uint8_t{});
      break;
    case onnx::TensorProto_DataType_INT32:
      if (raw.empty())
        for (auto v : t.int32_data()) out.push_back(v);
      else
        read(std::int32_t{});
      break;
    default: break;
  }
  return out;
}

struct FileEncoding {
  std::vector<double> scale, zero_point;
};

bool same(const std::vector<double>& a, const json& b) {
  if (!b.is_array() || a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!b[i].is_number() || float(a[i]) != float(b[i].get<double>())) return false;
  return true;
}

std::string list(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size() && i < 4; ++i) s += (i ? ", " : "") + json(v[i]).dump();
  return s + (v.size() > 4 ? ", ...]" : "]");
}

}  // namespace

std::vector<std::string> check_encodings(const std::string& onnx_bytes, const json& encodings) {
  std::vector<std::string> problems;
  onnx::ModelProto model;
  if (!model.ParseFromString(onnx_bytes)) return {"the ONNX file does not parse"};
  if (encodings.value("version", 0) != kEncodingsVersion)
    problems.push_back("version " + encodings.value("version", json()).dump() + ", expected " +
                       std::to_string(kEncodingsVersion));
  std::map<std::string, const onnx::TensorProto*> initializers;
  for (const auto& t : model.graph().initializer()) initializers[t.name()] = &t;
  auto init_values = [&](const std::string& name) {
    auto it = initializers.find(name);
    return it == initializers.end() ? std::vector<double>{} : values_of(*it->second);
  };

  // What the file says: activations by QuantizeLinear input, parameters by
  // the integer initializer a DequantizeLinear reads.
  std::map<std::string, FileEncoding> activations, params;
  for (const auto& n : model.graph().node()) {
    if (n.input_size() < 3) continue;
    const FileEncoding e{init_values(n.input(1)), init_values(n.input(2))};
    if (n.op_type() == "QuantizeLinear") activations[n.input(0)] = e;
    if (n.op_type() == "DequantizeLinear" && initializers.count(n.input(0))) params[n.input(0)] = e;
  }

  auto compare = [&](const char* section, const std::map<std::string, FileEncoding>& in_file) {
    const json listed = encodings.value(section, json::object());
    for (const auto& [name, e] : in_file) {
      if (!listed.contains(name)) {
        problems.push_back(std::string(section) + ": " + name + " is quantized in the model but not listed");
        continue;
      }
      const json& entry = listed[name];
      if (!same(e.scale, entry.value("scale", json())))
        problems.push_back(std::string(section) + ": " + name + ": scale " + entry.value("scale", json()).dump() +
                           " in the encodings, " + list(e.scale) + " in the model");
      if (!same(e.zero_point, entry.value("zero_point", json())))
        problems.push_back(std::string(section) + ": " + name + ": zero_point " +
                           entry.value("zero_point", json()).dump() + " in the encodings, " + list(e.zero_point) +
                           " in the model");
    }
    for (const auto& [name, entry] : listed.items())
      if (!in_file.count(name))
        problems.push_back(std::string(section) + ": " + name + " is listed but the model has no such quantization");
  };
  compare("activation_encodings", activations);
  compare("param_encodings", params);
  return problems;
}

}  // namespace qsdk
