#include "qsdk/backend.h"

namespace qsdk {

const char* to_string(Lowering v) {
  switch (v) {
    case Lowering::Reference: return "reference";
    case Lowering::OneDNN: return "onednn";
    case Lowering::QNNPACK: return "qnnpack";
  }
  return "?";
}

bool parse(const std::string& name, Lowering& out) {
  for (Lowering l : {Lowering::Reference, Lowering::OneDNN, Lowering::QNNPACK})
    if (name == to_string(l)) {
      out = l;
      return true;
    }
  return false;
}

std::string option_value(const Backend& backend, const BackendOptions& given, const std::string& name) {
  if (auto it = given.find(name); it != given.end()) return it->second;
  for (const auto& o : backend.options)
    if (o.name == name) return o.default_value;
  return {};
}

}  // namespace qsdk
