// A backend: identity, options, lowering target and rules. This is what a
// plugin's factory returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qsdk/engine.h"
#include "qsdk/rule.h"

namespace qsdk {

// Which kernel library the converted model is lowered to.
enum class Lowering : std::int32_t {
  Reference = QSDK_LOWERING_REFERENCE,  // quantize/dequantize around float ops only
  OneDNN = QSDK_LOWERING_ONEDNN,        // x86 int8 kernels (LibTorch's onednn quantized engine)
  QNNPACK = QSDK_LOWERING_QNNPACK       // ARM int8 kernels (LibTorch's qnnpack engine; also runs on x86)
};

inline const char* to_string(Lowering v) {
  switch (v) {
    case Lowering::Reference: return "reference";
    case Lowering::OneDNN: return "onednn";
    case Lowering::QNNPACK: return "qnnpack";
  }
  return "?";
}

inline bool parse(const std::string& name, Lowering& out) {
  for (Lowering l : {Lowering::Reference, Lowering::OneDNN, Lowering::QNNPACK})
    if (name == to_string(l)) {
      out = l;
      return true;
    }
  return false;
}

// An option users may set per backend in the YAML config
// (backends: {per-channel: {weight_bits: 4}}).
struct BackendOption {
  std::string name;
  std::string description;
  std::string default_value;
  std::vector<std::string> allowed;  // empty: any value
};

using BackendOptions = std::map<std::string, std::string>;

// A backend whose rules depend on the CPU declares a *target option*: an
// option named "isa" whose allowed values include "auto" and names from
// {"amx", "vnni", "avx2"} (see host/target/cpu_target.h for what each
// means). The host never passes "auto" to the factory: it replaces it, given
// or defaulted, with the best allowed name this machine's int8 kernels run
// (as onednn reports it, so ONEDNN_MAX_CPU_ISA caps it) and records that
// choice in the manifest. A factory still handed "auto" (by an older host)
// should pick the choice that is correct everywhere.
inline constexpr const char* kTargetOptionName = "isa";
inline constexpr const char* kTargetOptionAuto = "auto";

struct Backend {
  std::string name;     // what users type in YAML: "x86-int8"
  std::string version;  // the plugin's own version, e.g. "1.2.0"
  std::string vendor;
  std::string description;
  std::string homepage;  // where the vendor documents the backend (ABI 2.1); may be empty
  Lowering lowering = Lowering::Reference;
  std::vector<BackendOption> options;
  std::vector<Rule> rules;
  // How the hardware computes quantized ops (ABI 2.2): the host's integer
  // reference follows it, and describe, diff and the rule hash cover it.
  Arithmetic arithmetic;
  // Optional (ABI 2.2): runs a quantized model on the vendor's engine.
  Engine engine;
};

// Value of option `name` in `given`, or the declared default.
inline std::string option_value(const Backend& backend, const BackendOptions& given, const std::string& name) {
  if (auto it = given.find(name); it != given.end()) return it->second;
  for (const auto& o : backend.options)
    if (o.name == name) return o.default_value;
  return {};
}

}  // namespace qsdk
