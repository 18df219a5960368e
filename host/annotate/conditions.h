// Evaluates a rule's conditions (qsdk/condition.h) on a matched op chain:
// the facts come from the captured graph (constant arguments by schema name,
// inferred shapes and dtypes, whether an input is a constant).
#pragma once

#include <string>
#include <vector>

#include "qsdk/condition.h"

namespace torch::jit {
struct Node;
}

namespace qsdk {

struct ConditionOutcome {
  bool holds = false;
  std::string fact;  // what the graph says, for the report: "32", "[1, 3]", "unknown"
};

ConditionOutcome evaluate_condition(const Condition& condition, const std::vector<const torch::jit::Node*>& chain);

}  // namespace qsdk
