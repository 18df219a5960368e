// A backend: identity, options, lowering target and rules. This is what a
// plugin's factory returns.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qsdk/rule.h"

namespace qsdk {

// Which kernel library the converted model is lowered to.
enum class Lowering {
  Reference,  // quantize/dequantize around float ops only
  OneDNN,     // x86 int8 kernels (LibTorch's onednn quantized engine)
  QNNPACK     // ARM int8 kernels (LibTorch's qnnpack engine; also runs on x86)
};

const char* to_string(Lowering);
bool parse(const std::string& name, Lowering& out);

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
  Lowering lowering = Lowering::Reference;
  std::vector<BackendOption> options;
  std::vector<Rule> rules;
};

// Value of option `name` in `given`, or the declared default.
std::string option_value(const Backend& backend, const BackendOptions& given, const std::string& name);

}  // namespace qsdk
