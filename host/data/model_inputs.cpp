#include "data/model_inputs.h"

#include <limits>
#include <sstream>

#include "common/error.h"

namespace qsdk {
namespace {

// A whole-string integer, or false.
bool parse_int(const std::string& text, long long& out) {
  if (text.empty()) return false;
  std::size_t used = 0;
  try {
    out = std::stoll(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == text.size();
}

}  // namespace

std::vector<std::int64_t> parse_input_dims(const std::string& text, const std::string& where) {
  std::vector<std::int64_t> shape;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    long long v = 0;
    if (!parse_int(item, v) || v <= 0)
      throw InputError(where, "expected positive integers separated by commas, e.g. 1,3,224,224");
    shape.push_back(v);
  }
  if (shape.empty()) throw InputError(where, "empty shape");
  return shape;
}

std::string dtype_name(InputDtype dtype) {
  switch (dtype) {
    case InputDtype::float32: return "float32";
    case InputDtype::int64: return "int64";
    case InputDtype::int32: return "int32";
    case InputDtype::boolean: return "bool";
  }
  return "?";
}

bool parse_dtype(const std::string& text, InputDtype& out) {
  for (auto d : {InputDtype::float32, InputDtype::int64, InputDtype::int32, InputDtype::boolean})
    if (text == dtype_name(d)) return out = d, true;
  return false;
}

InputSpec parse_input_spec(const std::string& text, const std::string& flag) {
  const std::string where = flag + " " + text;
  InputSpec in;
  const auto colon = text.find(':');
  in.shape = parse_input_dims(text.substr(0, colon), where);
  if (colon == std::string::npos) return in;
  const std::string rest = text.substr(colon + 1);
  const auto colon2 = rest.find(':');
  const std::string dtype = rest.substr(0, colon2);
  if (!parse_dtype(dtype, in.dtype))
    throw InputError(where, "unknown dtype '" + dtype + "'; expected " + kInputDtypes +
                                " (SHAPE[:DTYPE[:LOW..HIGH]], e.g. 2,64:int64:0..256)");
  if (colon2 == std::string::npos) return in;
  const std::string range = rest.substr(colon2 + 1);
  const auto dots = range.find("..");
  long long low = 0, high = 0;
  if (dots == std::string::npos || !parse_int(range.substr(0, dots), low) || !parse_int(range.substr(dots + 2), high))
    throw InputError(where, "range '" + range + "' is not LOW..HIGH (integers, HIGH excluded), e.g. 0..256");
  if (!in.is_integer()) throw InputError(where, "a range is for integer inputs; " + dtype + " data is normal noise");
  if (high <= low) throw InputError(where, "empty range " + range + ": HIGH is excluded, so it must exceed LOW");
  in.low = low;
  in.high = high;
  return in;
}

std::string input_spec_text(const InputSpec& input) {
  std::string s;
  for (std::size_t d = 0; d < input.shape.size(); ++d) s += (d ? "," : "") + std::to_string(input.shape[d]);
  if (!input.is_integer()) return s;
  s += ":" + dtype_name(input.dtype);
  if (input.has_range()) s += ":" + std::to_string(input.low) + ".." + std::to_string(input.high);
  return s;
}

std::string input_label(const InputSpec& input, std::size_t index) {
  return "input " + std::to_string(index) + (input.name.empty() ? "" : " (" + input.name + ")");
}

std::vector<std::vector<std::int64_t>> shapes_of(const std::vector<InputSpec>& inputs) {
  std::vector<std::vector<std::int64_t>> shapes;
  for (const auto& in : inputs) shapes.push_back(in.shape);
  return shapes;
}

}  // namespace qsdk
