// How a model's inputs are described wherever a user names them: the CLI
// (--input 2,64:int64:0..256, or --input-shape 1,3,224,224 for float), run
// configs and specs (model.inputs), zoo entries and data sources. Kept free
// of torch headers: the CLI and config readers include it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace qsdk {

enum class InputDtype { float32, int64, int32, boolean };

struct InputSpec {
  std::vector<std::int64_t> shape;  // the first dim is the batch dim
  InputDtype dtype = InputDtype::float32;
  // Integer inputs: random data is drawn from [low, high). high <= low means
  // "not declared": capture takes it from the embedding the input indexes,
  // and refuses an integer input it cannot bound. bool is always [0, 2).
  std::int64_t low = 0;
  std::int64_t high = 0;
  std::string name;  // the graph input's name, once captured ("idx"); for messages

  InputSpec() = default;
  // A float32 input of this shape: what --input-shape and input_shapes give.
  InputSpec(std::vector<std::int64_t> float_shape) : shape(std::move(float_shape)) {}  // NOLINT: implicit on purpose
  InputSpec(std::initializer_list<std::int64_t> float_shape) : shape(float_shape) {}
  InputSpec(std::vector<std::int64_t> shape_, InputDtype dtype_, std::int64_t low_, std::int64_t high_)
      : shape(std::move(shape_)), dtype(dtype_), low(low_), high(high_) {}

  bool is_integer() const { return dtype != InputDtype::float32; }
  bool has_range() const { return high > low; }
  bool operator==(const InputSpec& o) const {
    return shape == o.shape && dtype == o.dtype && low == o.low && high == o.high;
  }
};

// "float32", "int64", "int32", "bool".
std::string dtype_name(InputDtype dtype);
// The inverse; false for an unknown name.
bool parse_dtype(const std::string& text, InputDtype& out);
inline constexpr const char* kInputDtypes = "float32, int64, int32 or bool";

// "2,64:int64:0..256" -> shape [2, 64], int64, values in [0, 256). The dtype
// defaults to float32, the range to undeclared. Throws InputError with
// `where` (the flag) naming what is wrong.
InputSpec parse_input_spec(const std::string& text, const std::string& where = "--input");
// "1,3,224,224" -> [1, 3, 224, 224]: positive integers. Throws InputError.
std::vector<std::int64_t> parse_input_dims(const std::string& text, const std::string& where);

// The inverse: "2,64:int64:0..256" ("1,3,224,224" for a float input).
std::string input_spec_text(const InputSpec& input);

// "input 0 (idx)" or "input 1": how messages name an input.
std::string input_label(const InputSpec& input, std::size_t index);

// The shapes alone, for records that only keep shapes.
std::vector<std::vector<std::int64_t>> shapes_of(const std::vector<InputSpec>& inputs);

}  // namespace qsdk
