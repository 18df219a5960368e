// The checks of a spec against what one pipeline run measured. Pure
// functions: the case's measurement JSON (written by its process) is read
// once through the one measurements reader, and the checks run on the
// typed Measurements, so they are tested without running a model and
// `conformance merge` needs nothing re-run. Torch-free.
//
// A case's measurement (one spec x backend pair), written by the case's
// child process and read once by the parent:
//   spec, backend, spec_file, seconds,
//   outcome: "ran" | "rejected" (the pipeline threw InputError) | "error" (crash or internal error),
//   error: message (rejected/error),
//   backend_options: {key: value}  what the backend ran with, its target option resolved
//                    (selects per-option sections: x86-int8[isa=avx2]),
//   measurements: the pipeline's Measurements as pipeline/measurements_json.h writes them
//                 (present when the outcome is "ran"),
//   graph_svg?: the deployed graph, for the HTML report.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "conformance/spec.h"
#include "pipeline/measurements.h"

namespace qsdk::conformance {

enum class Status { Pass, Fail, Skip, Error };
const char* to_string(Status);
Status parse_status(const std::string&);

// One check: "structure.counts[aten::dequantize]", what the spec expected,
// what the run found, and the graph nodes involved ("%3 aten::conv2d
// (layer1.0.conv1)").
struct CheckResult {
  std::string check;
  bool passed = true;
  std::string expected;
  std::string found;
  std::vector<std::string> nodes;
  std::string where;  // spec file:line:column of the expectation

  std::string message() const;  // "check: expected X, found Y; nodes: ...; (spec.yaml:12:5)"
};

struct CaseResult {
  std::string spec;
  std::string backend;
  std::string spec_file;
  Status status = Status::Pass;
  std::string reason;             // why skipped / error message
  bool expected_failure = false;  // passed because the backend rejected/skipped as the spec said
  bool unspecified = false;       // passed with no structure expectations (what --bless fills in)
  std::vector<CheckResult> checks;
  nlohmann::json measurement;            // the case's document as its process wrote it; null when not run
  std::optional<Measurements> measured;  // its pipeline part, read once (when the pipeline ran)
  double seconds = 0;
};

// Runs every check of `expect` on `measurement` and sets status: Pass when
// all pass, Fail otherwise; Error when the run crashed, or the pipeline
// rejected the model and the spec did not expect it.
CaseResult evaluate(const Expectations& expect, const nlohmann::json& measurement);

nlohmann::json to_json(const CheckResult&);
nlohmann::json to_json(const CaseResult&);  // includes the measurement
// `source` names the file in errors (a case measured by another qsdk version).
CaseResult case_from_json(const nlohmann::json&, const std::string& source = "results.json");

// The measurements' qparams slots as the checks see them: {slot, label,
// tensors}, `tensors` the labels of every edge the slot serves (its shared
// group, labelled as edge_label does: "%3 (aten::conv2d, layer1.0.conv1) output").
nlohmann::json build_slots(const Measurements& measurements);

// "%3 aten::conv2d (layer1.0.conv1)", "%4 aten::dequantize (next to layer1.0.conv1)"
std::string node_ref(const nlohmann::json& node);

}  // namespace qsdk::conformance
