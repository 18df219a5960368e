// PTQ algorithms that recover the accuracy low-bit weights lose (the run
// config's `algorithms:` list). Torch-free: what was asked for and what each
// algorithm decided, for the options and the manifest. The algorithms
// themselves are in ptq_algorithms.h.
//
// They run at fixed places in the pipeline, whatever the list's order:
//   capture, fold BatchNorm
//   -> cle, smoothquant      (float-equivalent rewrites of the weights)
//   -> annotate, prepare     (weight observers fix the weight qparams)
//   -> adaround              (learned rounding, on the fixed weight grid)
//   -> bias_correction       (on the weights convert will quantize)
//   -> calibrate, convert
#pragma once

#include <map>
#include <string>
#include <vector>

namespace qsdk {

inline const std::vector<std::string> kAlgorithmNames{"cle", "smoothquant", "adaround", "bias_correction"};

struct AlgorithmOptions {
  bool cle = false;
  bool smoothquant = false;
  bool adaround = false;
  bool bias_correction = false;
  // SmoothQuant's migration strength: 0 leaves activations as they are, 1
  // moves all of their range into the weights (the paper's 0.5 default).
  double smoothquant_alpha = 0.5;
  // AdaRound, per layer: Adam steps, samples per step, and the rounding
  // regularizer's weight (AIMET's default).
  int adaround_iterations = 1000;
  int adaround_batch = 32;
  double adaround_regularization = 0.01;
  // Calibration samples the data-driven algorithms (smoothquant, adaround,
  // bias_correction) use: the first whole batches holding at least this many.
  int samples = 1024;
  std::string where;  // file:line:column of the list, for messages

  bool any() const { return cle || smoothquant || adaround || bias_correction; }
  std::vector<std::string> names() const;  // the ones on, in pipeline order
};

// One decision of one algorithm, for the manifest's `algorithms` list:
// what it changed ("conv1 -> conv2"), in words, and its numbers.
struct AlgorithmDecision {
  std::string algorithm;  // cle, smoothquant, adaround, bias_correction
  std::string target;     // the layer or pair, by module path and node id
  std::string decision;   // "equalized 16 channels", "skipped: ..."
  std::map<std::string, double> values;
};

inline std::vector<std::string> AlgorithmOptions::names() const {
  std::vector<std::string> out;
  if (cle) out.push_back("cle");
  if (smoothquant) out.push_back("smoothquant");
  if (adaround) out.push_back("adaround");
  if (bias_correction) out.push_back("bias_correction");
  return out;
}

}  // namespace qsdk
