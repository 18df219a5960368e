#include "export/onnx_engine_model.h"

#include <onnx/onnx_pb.h>

#include <set>

#include "common/error.h"

namespace qsdk {
namespace {

ElementType element_type(int onnx_type, const std::string& where) {
  switch (onnx_type) {
    case onnx::TensorProto_DataType_FLOAT: return ElementType::Float32;
    case onnx::TensorProto_DataType_UINT8: return ElementType::UInt8;
    case onnx::TensorProto_DataType_INT8: return ElementType::Int8;
    case onnx::TensorProto_DataType_INT32: return ElementType::Int32;
    case onnx::TensorProto_DataType_INT64: return ElementType::Int64;
    default:
      throw InputError(where, "ONNX element type " + std::to_string(onnx_type) +
                                  " has no qsdk ElementType (float32, uint8, int8, int32, int64)");
  }
}

// An initializer's values: raw_data (what qsdk writes) or the typed fields.
EngineTensor tensor_of(const onnx::TensorProto& t, const std::string& where) {
  EngineTensor out;
  out.name = t.name();
  out.type = element_type(t.data_type(), where + ": initializer '" + t.name() + "'");
  out.shape.assign(t.dims().begin(), t.dims().end());
  if (t.has_raw_data()) {
    out.data.assign(t.raw_data().begin(), t.raw_data().end());
  } else {
    switch (out.type) {
      case ElementType::Float32:
        out = EngineTensor::of(out.name, out.type, out.shape,
                               std::vector<float>(t.float_data().begin(), t.float_data().end()));
        break;
      case ElementType::Int64:
        out = EngineTensor::of(out.name, out.type, out.shape,
                               std::vector<std::int64_t>(t.int64_data().begin(), t.int64_data().end()));
        break;
      default:  // uint8, int8, int32 live in int32_data
        out = EngineTensor::of(out.name, out.type, out.shape,
                               std::vector<std::int32_t>(t.int32_data().begin(), t.int32_data().end()));
    }
  }
  if (out.data.size() != out.numel() * element_size(out.type))
    throw InputError(
        where, "initializer '" + t.name() + "' holds " + std::to_string(out.data.size()) + " bytes for its shape");
  return out;
}

}  // namespace

EngineModel engine_model_from_onnx(const std::string& bytes, const std::string& path, const std::string& where) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw InputError(where, "not a serialized ONNX model");
  EngineModel m;
  m.onnx_bytes = bytes;
  m.onnx_path = path;
  const auto& g = model.graph();
  for (const auto& n : g.node()) {
    OnnxNode node;
    node.name = n.name();
    node.op_type = n.op_type();
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    for (const auto& a : n.attribute()) {
      OnnxAttribute attr;
      attr.name = a.name();
      switch (a.type()) {
        case onnx::AttributeProto_AttributeType_INT: attr.type = QSDK_ATTRIBUTE_INT, attr.i = a.i(); break;
        case onnx::AttributeProto_AttributeType_FLOAT: attr.type = QSDK_ATTRIBUTE_FLOAT, attr.f = a.f(); break;
        case onnx::AttributeProto_AttributeType_STRING: attr.type = QSDK_ATTRIBUTE_STRING, attr.s = a.s(); break;
        case onnx::AttributeProto_AttributeType_INTS:
          attr.type = QSDK_ATTRIBUTE_INTS;
          attr.ints.assign(a.ints().begin(), a.ints().end());
          break;
        case onnx::AttributeProto_AttributeType_FLOATS:
          attr.type = QSDK_ATTRIBUTE_FLOATS;
          attr.floats.assign(a.floats().begin(), a.floats().end());
          break;
        default:
          throw InputError(where, "node '" + n.name() + "' attribute '" + a.name() +
                                      "': only int, float, string, ints and floats attributes reach an engine");
      }
      node.attributes.push_back(std::move(attr));
    }
    m.nodes.push_back(std::move(node));
  }
  std::set<std::string> initializer_names;
  for (const auto& t : g.initializer()) {
    initializer_names.insert(t.name());
    m.initializers.emplace(t.name(), tensor_of(t, where));
  }
  for (const auto& i : g.input())
    if (!initializer_names.count(i.name())) m.inputs.push_back(i.name());
  for (const auto& o : g.output()) m.outputs.push_back(o.name());
  return m;
}

}  // namespace qsdk
