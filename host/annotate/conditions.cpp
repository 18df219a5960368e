#include "annotate/conditions.h"

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>

#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;

// A fact: numbers (a scalar is one number, a list argument several) or a name.
struct Fact {
  bool known = false;
  bool is_list = false;
  std::vector<double> numbers;
  std::vector<std::string> names;
};

// LibTorch's types under the names of condition_dtype_names() (qsdk/condition.h).
const std::pair<c10::ScalarType, const char*> kDtypeNames[] = {
    {c10::kFloat, "float32"}, {c10::kHalf, "float16"}, {c10::kBFloat16, "bfloat16"}, {c10::kDouble, "float64"},
    {c10::kByte, "uint8"},    {c10::kChar, "int8"},    {c10::kShort, "int16"},       {c10::kInt, "int32"},
    {c10::kLong, "int64"},    {c10::kBool, "bool"}};

Fact numbers(std::vector<double> v, bool is_list) { return {true, is_list, std::move(v), {}}; }

Fact argument_fact(const Node* n, const std::string& name) {
  const c10::FunctionSchema* schema = n->maybeSchema();
  if (!schema) return {};
  const auto index = schema->argumentIndexWithName(name);
  if (!index || *index >= static_cast<int>(n->inputs().size())) return {};
  const auto value = torch::jit::toIValue(n->input(static_cast<std::size_t>(*index)));
  if (!value) return {};  // not a constant
  if (value->isBool()) return numbers({value->toBool() ? 1.0 : 0.0}, false);
  if (value->isInt()) return numbers({static_cast<double>(value->toInt())}, false);
  if (value->isDouble()) return numbers({value->toDouble()}, false);
  if (value->isIntList()) {
    std::vector<double> v;
    for (auto x : value->toIntVector()) v.push_back(static_cast<double>(x));
    return numbers(std::move(v), true);
  }
  if (value->isDoubleList()) {
    const auto list = value->toDoubleVector();
    return numbers(std::vector<double>(list.begin(), list.end()), true);
  }
  if (value->isString()) return {true, false, {}, {value->toStringRef()}};
  return {};  // None, tensors, devices: nothing a condition compares
}

Fact input_fact(const Condition& c, const Node* n) {
  if (c.input < 0 || c.input >= static_cast<int>(n->inputs().size())) return {};
  const torch::jit::Value* v = n->input(static_cast<std::size_t>(c.input));
  if (c.subject == ConditionSubject::InputIsConstant)
    return numbers({v->node()->kind() == c10::prim::Constant ? 1.0 : 0.0}, false);
  const auto type = v->type()->cast<c10::TensorType>();
  if (!type) return {};
  switch (c.subject) {
    case ConditionSubject::InputRank:
      if (auto rank = type->dim()) return numbers({static_cast<double>(*rank)}, false);
      return {};
    case ConditionSubject::InputDim: {
      const auto shape = concrete_shape(v);
      if (!shape) return {};
      const auto rank = static_cast<int>(shape->size());
      const int d = c.dim < 0 ? c.dim + rank : c.dim;
      if (d < 0 || d >= rank) return {};
      return numbers({static_cast<double>((*shape)[static_cast<std::size_t>(d)])}, false);
    }
    case ConditionSubject::InputDtype: {
      if (!type->scalarType()) return {};
      for (const auto& [t, name] : kDtypeNames)
        if (t == *type->scalarType()) return {true, false, {}, {name}};
      return {true, false, {}, {c10::toString(*type->scalarType())}};
    }
    default: return {};
  }
}

std::string fact_text(const Fact& f) {
  if (!f.known) return "unknown";
  std::vector<std::string> items;
  for (double v : f.numbers) items.push_back(number_text(v));
  for (const auto& n : f.names) items.push_back(n);
  std::string s;
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return f.is_list ? "[" + s + "]" : s;
}

bool equal(const Fact& f, const Condition& c) {
  if (!c.names.empty()) return f.names == c.names;
  if (f.is_list) return f.numbers == c.values;
  return f.names.empty() && c.values.size() == 1 && f.numbers.size() == 1 && f.numbers[0] == c.values[0];
}

bool holds(const Fact& f, const Condition& c) {
  switch (c.op) {
    case ConditionOp::Eq: return equal(f, c);
    case ConditionOp::Ne: return !equal(f, c);
    case ConditionOp::In:
      if (!f.names.empty())
        return std::all_of(f.names.begin(), f.names.end(), [&](const std::string& n) {
          return std::find(c.names.begin(), c.names.end(), n) != c.names.end();
        });
      return !f.numbers.empty() && std::all_of(f.numbers.begin(), f.numbers.end(), [&](double v) {
        return std::find(c.values.begin(), c.values.end(), v) != c.values.end();
      });
    case ConditionOp::Range:
      return f.names.empty() && !f.numbers.empty() && c.values.size() == 2 &&
             std::all_of(f.numbers.begin(), f.numbers.end(),
                         [&](double v) { return v >= c.values[0] && v <= c.values[1]; });
  }
  return false;
}

}  // namespace

ConditionOutcome evaluate_condition(const Condition& c, const std::vector<const Node*>& chain) {
  if (c.node < 0 || c.node >= static_cast<int>(chain.size())) return {false, "no such pattern node"};
  const Node* n = chain[static_cast<std::size_t>(c.node)];
  const Fact f = c.subject == ConditionSubject::Arg ? argument_fact(n, c.arg) : input_fact(c, n);
  if (!f.known) return {c.unknown_passes, "unknown"};
  return {holds(f, c), fact_text(f)};
}

}  // namespace qsdk
