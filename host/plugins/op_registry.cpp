// The only torch-dependent piece of plugin validation: does an op exist,
// and what are its arguments called?
#include <ATen/core/interned_strings.h>
#include <torch/csrc/jit/runtime/operator.h>

#include <algorithm>

#include "plugins/rule_validation.h"

namespace qsdk {

std::optional<OpSchema> torch_op_schema(const std::string& op) {
  if (op.find("::") == std::string::npos) return std::nullopt;
  c10::Symbol symbol;
  try {
    symbol = c10::Symbol::fromQualString(op);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const auto& ops = torch::jit::getAllOperatorsFor(symbol);
  if (ops.empty()) return std::nullopt;
  OpSchema schema;
  for (const auto& o : ops) {
    schema.arity = std::max(schema.arity, o->schema().arguments().size());
    for (const auto& a : o->schema().arguments())
      if (std::find(schema.argument_names.begin(), schema.argument_names.end(), a.name()) ==
          schema.argument_names.end())
        schema.argument_names.push_back(a.name());
  }
  return schema;
}

}  // namespace qsdk
