// Checks a backend's declared rules before the host uses them. A plugin
// whose rules fail is refused at load with every problem listed, so bad
// rules never surface later as a crash in matching.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "qsdk/backend.h"

namespace qsdk {

// What the validator needs to know about an op: the largest number of
// inputs any of its overloads takes, and the argument names of all of them
// (what conditions may name), in schema order.
struct OpSchema {
  std::size_t arity = 0;
  std::vector<std::string> argument_names;
};
// nullopt when the op does not exist.
using OpSchemaLookup = std::function<std::optional<OpSchema>(const std::string& op)>;

// LibTorch's operator registry (host/plugins/op_registry.cpp).
std::optional<OpSchema> torch_op_schema(const std::string& op);

// How many problems validate_backend lists as text; the rest are counted.
constexpr std::size_t kMaxListedProblems = 20;

// The problems found, each a readable sentence naming the rule: the first
// kMaxListedProblems, then, when there are more, one last entry
// "and N more problems (M in all)". Empty means valid. Linear in the size of
// the backend (100,000 rules validate well under a second).
std::vector<std::string> validate_backend(const Backend& backend, const OpSchemaLookup& op_schema = torch_op_schema);

// Problems with one spec taken alone (range, dtype fit, axis, scale, eps),
// each a phrase such as "quant_min (10) must be below quant_max (10)".
std::vector<std::string> spec_problems(const QuantSpec& spec);

// Resets fields that do not matter for a spec's kind to their defaults, so
// that two specs that mean the same compare equal (and YAML round-trips).
QuantSpec normalized(QuantSpec spec);

}  // namespace qsdk
