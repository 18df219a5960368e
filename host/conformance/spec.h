// Conformance specs: YAML files that say what a correct quantization of one
// model looks like for one or more backends (schema: specs/README.md).
// Parsing validates everything it can before anything runs: unknown keys
// (with a "did you mean"), wrong types, unknown backends, missing models and
// bad op names are InputErrors at file:line:column. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/pipeline_config.h"
#include "qsdk/backend.h"

namespace qsdk::conformance {

// Ops of one converted graph (the reference Q/DQ model, or the lowered one).
struct StructureExpect {
  std::map<std::string, int> counts;  // exact number of nodes of each op kind
  std::vector<std::string> present;   // op kinds that must remain (at least one node)
  std::vector<std::string> absent;    // op kinds that must be gone
  std::vector<std::string> sequence;  // must appear in this order (a subsequence of the graph's nodes)
  std::string where;                  // file:line:column of the section
  bool empty() const { return counts.empty() && present.empty() && absent.empty() && sequence.empty(); }
};

// Properties every observer slot the selector matches must have.
struct QParamsExpect {
  std::string select;  // "all_activations", "all_weights", "all", or a glob over tensor labels
  std::optional<std::string> dtype;
  std::optional<std::int64_t> quant_min, quant_max;
  std::optional<bool> symmetric;    // every zero point is 0
  std::optional<bool> per_channel;  // more than one scale / an axis
  std::optional<int> axis;
  std::optional<double> scale;  // fixed qparams (relative tolerance 1e-6)
  std::optional<std::int64_t> zero_point;
  std::optional<int> count;  // number of slots matched (default: at least one)
  std::string where;
};

// Tensors (globs over labels) that must all be served by one observer: one
// set of qparams.
struct SharedExpect {
  std::vector<std::string> tensors;
  std::string where;
};

// Biases of conv/linear after convert: multiples of input scale x weight
// scale (per channel when the weight is per-channel).
struct BiasExpect {
  std::optional<bool> per_channel;
  double max_error_steps = 1e-3;  // |bias / step - round(bias / step)|
  std::string where;
};

struct NumericsExpect {
  std::optional<double> sqnr_min_db;          // reference Q/DQ output vs float
  std::optional<double> sqnr_lowered_min_db;  // lowered output vs float
  std::optional<double> max_steps;            // lowered vs reference, output quantization steps
  // Op by op (each lowered kernel on the reference's inputs); max_steps
  // bounds both when this is unset. Deep models: a tight kernel bound and an
  // output bound set from the measured spread (specs/README.md).
  std::optional<double> kernel_max_steps;
  std::optional<double> top1_agreement_min;  // float vs quantized top-1 on the held-out split
  std::optional<double> layer_sqnr_min_db;   // every quantized op's output vs float
  // Language models: quantized held-out perplexity / float perplexity.
  std::optional<double> perplexity_ratio_max;
  std::string where;
};

// The ONNX export (README.md, "ONNX export"): checked by the onnx checker
// always; its encodings.json matches it; ONNX Runtime (optimizations all
// and disabled) within max_steps of the reference at the output and
// sqnr_min_db against float; optionally its QuantizeLinear /
// DequantizeLinear counts.
struct OnnxExpect {
  std::optional<double> max_steps;
  std::optional<double> sqnr_min_db;
  std::optional<int> quantize_linear, dequantize_linear;
  std::string where;
};

// How closely an engine must match the integer reference on one tensor
// (the TOSA reference model's verify modes): exact integers, within N
// least significant bits, an SQNR floor, or an absolute / relative bound on
// the dequantized values.
struct VerifyMode {
  enum class Kind { Exact, Lsb, Sqnr, Absolute, Relative } kind = Kind::Exact;
  double value = 0;
  std::string text() const;  // "exact", "<= 1 LSB", ">= 40 dB SQNR", "|diff| <= 0.01", "|diff| / max|ref| <= 0.001"
  std::string spec_text() const;  // as parse_verify_mode reads it: "exact", "lsb:1", ...
};
// "exact", "lsb:N", "sqnr:DB", "abs:X", "rel:X"; InputError at `where` otherwise.
VerifyMode parse_verify_mode(const std::string& text, const std::string& where);

// The engine under test against the integer-exact reference
// (CONTRIBUTING.md, "Checking your engine").
struct EngineExpect {
  std::string run = "backend";  // backend (its own engine) | onnxruntime | onnxruntime-fused
  VerifyMode verify;            // every quantized tensor the engine returns, and the output
  std::optional<VerifyMode> output;
  std::vector<std::pair<std::string, VerifyMode>> tensors;  // glob over ONNX tensor names -> mode; first match wins
  // qsdk conformance --verify-engine: the engine is all the case checks; an
  // engine that does not run the model, or a backend that refuses it, skips
  // the case (saying why) instead of failing it.
  bool only = false;
  std::string where;
};

struct ConformanceSpec;
// Replaces what `spec` checks with the engine check alone, on every backend
// (qsdk conformance --verify-engine); its skips stay.
void check_engine_only(ConformanceSpec& spec, EngineExpect engine);

// The backend must refuse the model (the pipeline throws) or leave it whole
// in float; `reason` must occur in the error / in a node's float reason.
struct FailureExpect {
  enum class Kind { Reject, Skip } kind = Kind::Reject;
  std::string reason;
  std::string where;
};

struct Expectations {
  std::optional<StructureExpect> structure;  // reference Q/DQ graph
  std::optional<StructureExpect> lowered;    // lowered graph (backends that lower)
  std::vector<QParamsExpect> qparams;
  std::vector<SharedExpect> shared;
  std::optional<BiasExpect> bias;
  std::optional<NumericsExpect> numerics;
  std::optional<OnnxExpect> onnx;
  std::optional<EngineExpect> engine;
  std::optional<FailureExpect> failure;

  bool has_structure() const { return (structure && !structure->empty()) || (lowered && !lowered->empty()); }
};

// One conformance spec file, parsed (named so it does not read like the
// SDK's QuantSpec, which is one tensor's quantization).
struct ConformanceSpec {
  std::string name;  // unique in a run; the matrix row
  std::string description;
  std::filesystem::path file;
  std::string text;  // the file as read (for --bless)
  // `model:` and `pipeline:` as the one pipeline reader reads them
  // (pipeline/pipeline_config.h), with a spec's defaults: 2 batches of 4,
  // per-layer SQNR on, accuracy only when asked (or implied by
  // top1_agreement_min), no latency, no progress bars. Backends are set per
  // case.
  PipelineOptions pipeline;
  bool all_backends = true;
  std::vector<std::string> backends;                     // when !all_backends
  std::map<std::string, BackendOptions> options;         // per backend
  std::map<std::string, std::string> skip;               // backend -> reason: not run, reported as skip
  Expectations expect;                                   // every backend
  std::map<std::string, Expectations> per_backend;       // replaces/merges the common sections
  std::map<std::string, std::string> per_backend_where;  // backend -> file:line:column
  // A per_backend section keyed "BACKEND[KEY=VALUE,...]" applies only when
  // the backend runs with those option values (its target option as the
  // host resolved it: "x86-int8[isa=avx2]"), merged after the plain one.
  struct OptionSection {
    std::string backend;
    BackendOptions when;
    Expectations expect;
    std::string where;  // file:line:column
  };
  std::vector<OptionSection> per_option;

  bool applies_to(const std::string& backend) const;
  // Common expectations with the backend's own merged in: a section given
  // for the backend replaces the common one, except structure counts (op by
  // op), structure lists given (each list replaces its own) and numerics
  // (bound by bound), which merge. Then each per_option section whose
  // options all hold in `options` (the options the backend ran with) merges
  // the same way.
  Expectations expectations_for(const std::string& backend, const BackendOptions& options = {}) const;
};

struct LoadContext {
  std::vector<std::string> known_backends;  // loaded plugins' names
  std::filesystem::path models_dir;         // for `search: models_dir`
  // When false, a missing model file is not an error (merge, which only
  // reads names and expectations).
  bool check_model_files = true;
  // Options each backend declares, when known: per-option sections
  // (x86-int8[isa=avx2]) are checked against them.
  std::map<std::string, std::vector<BackendOption>> declared_options;
};

// Parses one spec file. `default_name`: the name when the spec has none.
ConformanceSpec load_spec(const std::filesystem::path& file, const LoadContext& context,
                          const std::string& default_name = "");
ConformanceSpec parse_spec(const std::string& text, const std::filesystem::path& file, const LoadContext& context,
                           const std::string& default_name = "");

// Files and directories (searched recursively for *.yaml / *.yml, sorted)
// to spec files, each with its default name: the path relative to the
// directory given, without the extension ("unit/conv2d").
struct SpecFile {
  std::filesystem::path path;
  std::string default_name;
};
// Files under `exclude` (the report directory, whose blessed/ copies are
// specs too) are left out of directory searches.
std::vector<SpecFile> find_spec_files(const std::vector<std::filesystem::path>& paths,
                                      const std::filesystem::path& exclude = {});

// Loads them all; duplicate names are an error at the second one.
std::vector<ConformanceSpec> load_specs(const std::vector<std::filesystem::path>& paths, const LoadContext& context,
                                        const std::filesystem::path& exclude = {});

// The models directory: `flag` when set, else $QSDK_MODELS_DIR, else
// <executable dir>/../models (build/models in a build tree).
std::filesystem::path resolve_models_dir(const std::string& flag);

}  // namespace qsdk::conformance
