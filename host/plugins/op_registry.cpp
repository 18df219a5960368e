// The only torch-dependent piece of plugin validation: does an op exist?
#include <ATen/core/interned_strings.h>
#include <torch/csrc/jit/runtime/operator.h>

#include "plugins/rule_validation.h"

namespace qsdk {

std::optional<std::size_t> torch_op_arity(const std::string& op) {
  if (op.find("::") == std::string::npos) return std::nullopt;
  c10::Symbol symbol;
  try {
    symbol = c10::Symbol::fromQualString(op);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const auto& ops = torch::jit::getAllOperatorsFor(symbol);
  if (ops.empty()) return std::nullopt;
  std::size_t arity = 0;
  for (const auto& o : ops) arity = std::max(arity, o->schema().arguments().size());
  return arity;
}

}  // namespace qsdk
