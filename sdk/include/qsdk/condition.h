// Conditions: what a match must satisfy for a rule to apply, as data the
// host evaluates (qsdk_condition in the C ABI). Being data, a condition is
// printed by `qsdk plugins describe`, compared by `plugins diff` and covered
// by the rule hash, so changing one shows in `qsdk verify`.
//
//   Rule("conv2d").match({"aten::conv2d"})
//       .when(cond::arg("groups").eq(1))            // an argument, by its schema name
//       .when(cond::input_rank(0).eq(4))            // input 0 is (N, C, H, W)
//       .when(cond::arg("stride").in({1, 2}))       // every element of a list argument
//       .when(cond::input_dim(0, 1).between(1, 4096))
//       .when(cond::input_dtype(0).in({"float32"}))
//       .when(cond::input_is_constant(1).eq(true));  // the weight is a constant
//
// A fact the host cannot know (an argument that is not a constant, a shape
// capture could not infer) fails the condition unless `.or_unknown()` says
// it passes. Argument names are checked against LibTorch's op schemas when
// the plugin loads.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "qsdk/abi.h"

namespace qsdk {

enum class ConditionSubject : std::int32_t {
  Arg = QSDK_CONDITION_ARG,
  InputRank = QSDK_CONDITION_INPUT_RANK,
  InputDim = QSDK_CONDITION_INPUT_DIM,
  InputDtype = QSDK_CONDITION_INPUT_DTYPE,
  InputIsConstant = QSDK_CONDITION_INPUT_IS_CONSTANT
};

enum class ConditionOp : std::int32_t {
  Eq = QSDK_CONDITION_EQ,
  Ne = QSDK_CONDITION_NE,
  In = QSDK_CONDITION_IN,
  Range = QSDK_CONDITION_RANGE
};

struct Condition {
  ConditionSubject subject = ConditionSubject::Arg;
  int node = 0;     // index in the rule's pattern
  std::string arg;  // Arg: the schema name ("groups")
  int input = 0;    // Input*: operand index
  int dim = 0;      // InputDim: negative counts from the end
  ConditionOp op = ConditionOp::Eq;
  std::vector<double> values;      // numeric facts; booleans are 0 and 1
  std::vector<std::string> names;  // dtypes and string arguments
  bool unknown_passes = false;

  // --- fluent builder (each returns a copy, so a base can be reused) -------
  Condition eq(int v) const { return with(ConditionOp::Eq, {double(v)}); }
  Condition eq(double v) const { return with(ConditionOp::Eq, {v}); }
  Condition eq(std::vector<double> list) const { return with(ConditionOp::Eq, std::move(list)); }
  Condition eq(const char* name) const { return with_names(ConditionOp::Eq, {name}); }
  Condition ne(int v) const { return with(ConditionOp::Ne, {double(v)}); }
  Condition ne(double v) const { return with(ConditionOp::Ne, {v}); }
  Condition ne(const char* name) const { return with_names(ConditionOp::Ne, {name}); }
  Condition in(std::initializer_list<double> set) const { return with(ConditionOp::In, set); }
  Condition in(std::initializer_list<const char*> set) const {
    return with_names(ConditionOp::In, std::vector<std::string>(set.begin(), set.end()));
  }
  Condition in(std::vector<double> set) const { return with(ConditionOp::In, std::move(set)); }
  Condition in(std::vector<std::string> set) const { return with_names(ConditionOp::In, std::move(set)); }
  Condition between(double lo, double hi) const { return with(ConditionOp::Range, {lo, hi}); }
  // The condition concerns pattern node `n` (default: the first).
  Condition at_node(int n) const {
    Condition c = *this;
    c.node = n;
    return c;
  }
  // A fact the host cannot know passes instead of failing.
  Condition or_unknown() const {
    Condition c = *this;
    c.unknown_passes = true;
    return c;
  }

 private:
  Condition with(ConditionOp o, std::vector<double> v) const {
    Condition c = *this;
    c.op = o;
    c.values = std::move(v);
    c.names.clear();
    return c;
  }
  Condition with_names(ConditionOp o, std::vector<std::string> v) const {
    Condition c = *this;
    c.op = o;
    c.names = std::move(v);
    c.values.clear();
    return c;
  }
};

namespace cond {

inline Condition arg(std::string schema_name) {
  Condition c;
  c.subject = ConditionSubject::Arg;
  c.arg = std::move(schema_name);
  return c;
}
// A fact about operand `input` of the pattern's first op.
inline Condition input_fact(ConditionSubject subject, int input) {
  Condition c;
  c.subject = subject;
  c.input = input;
  return c;
}
inline Condition input_rank(int input = 0) { return input_fact(ConditionSubject::InputRank, input); }
inline Condition input_dim(int input, int dim) {
  Condition c = input_fact(ConditionSubject::InputDim, input);
  c.dim = dim;
  return c;
}
inline Condition input_dtype(int input = 0) { return input_fact(ConditionSubject::InputDtype, input); }
inline Condition input_is_constant(int input) { return input_fact(ConditionSubject::InputIsConstant, input); }

}  // namespace cond

inline bool operator==(const Condition& a, const Condition& b) {
  return a.subject == b.subject && a.node == b.node && a.arg == b.arg && a.input == b.input && a.dim == b.dim &&
         a.op == b.op && a.values == b.values && a.names == b.names && a.unknown_passes == b.unknown_passes;
}
inline bool operator!=(const Condition& a, const Condition& b) { return !(a == b); }

// Names in YAML: subject "arg", "rank", "dim", "dtype", "constant"; op "eq",
// "ne", "in", "range".
inline const char* to_string(ConditionSubject s) {
  switch (s) {
    case ConditionSubject::Arg: return "arg";
    case ConditionSubject::InputRank: return "rank";
    case ConditionSubject::InputDim: return "dim";
    case ConditionSubject::InputDtype: return "dtype";
    case ConditionSubject::InputIsConstant: return "constant";
  }
  return "?";
}
inline const char* to_string(ConditionOp o) {
  switch (o) {
    case ConditionOp::Eq: return "eq";
    case ConditionOp::Ne: return "ne";
    case ConditionOp::In: return "in";
    case ConditionOp::Range: return "range";
  }
  return "?";
}
inline bool parse(const std::string& name, ConditionSubject& out) {
  for (auto s : {ConditionSubject::Arg, ConditionSubject::InputRank, ConditionSubject::InputDim,
                 ConditionSubject::InputDtype, ConditionSubject::InputIsConstant})
    if (name == to_string(s)) {
      out = s;
      return true;
    }
  return false;
}
inline bool parse(const std::string& name, ConditionOp& out) {
  for (auto o : {ConditionOp::Eq, ConditionOp::Ne, ConditionOp::In, ConditionOp::Range})
    if (name == to_string(o)) {
      out = o;
      return true;
    }
  return false;
}

// The element type names dtype conditions compare (what the host reports
// for an input's dtype).
inline const std::vector<std::string>& condition_dtype_names() {
  static const std::vector<std::string> names{"float32", "float16", "bfloat16", "float64", "uint8",
                                              "int8",    "int16",   "int32",    "int64",   "bool"};
  return names;
}

// "4", "0.5": whole numbers without a fraction.
inline std::string number_text(double v) {
  char buf[32];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Readable form for reports: "node(0).groups == 1", "in(0,0).rank == 4",
// "in(0,0).dim[1] in [1, 4096]", "in(0,1).constant == 1 (unknown passes)".
inline std::string to_string(const Condition& c) {
  std::string s;
  if (c.subject == ConditionSubject::Arg)
    s = "node(" + std::to_string(c.node) + ")." + c.arg;
  else {
    s = "in(" + std::to_string(c.node) + "," + std::to_string(c.input) + ")." + to_string(c.subject);
    if (c.subject == ConditionSubject::InputDim) s += "[" + std::to_string(c.dim) + "]";
  }
  std::vector<std::string> items;
  for (double v : c.values) items.push_back(number_text(v));
  for (const auto& n : c.names) items.push_back(n);
  std::string list;
  for (std::size_t i = 0; i < items.size(); ++i) list += (i ? ", " : "") + items[i];
  switch (c.op) {
    case ConditionOp::Eq: s += items.size() == 1 ? " == " + list : " == [" + list + "]"; break;
    case ConditionOp::Ne: s += items.size() == 1 ? " != " + list : " != [" + list + "]"; break;
    case ConditionOp::In: s += " in {" + list + "}"; break;
    case ConditionOp::Range: s += " in [" + list + "]"; break;
  }
  if (c.unknown_passes) s += " (unknown passes)";
  return s;
}

}  // namespace qsdk
