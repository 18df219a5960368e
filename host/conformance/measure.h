// One conformance case, measured: runs the whole pipeline for one spec and
// one backend and returns the case's measurement JSON (schema in
// conformance/checks.h), which its process writes for the parent. Runs in a child process of `qsdk conformance`
// (LibTorch's quantized engine is process-global).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "conformance/spec.h"
#include "pipeline/pipeline_options.h"

namespace qsdk {
class PluginRegistry;
}

namespace qsdk::conformance {

struct MeasureOptions {
  bool graph_svg = true;  // render the deployed graph with Graphviz for the HTML report
};

// The pipeline options of one case: the spec's pipeline, this backend with
// the spec's options for it, accuracy when a floor needs it.
PipelineOptions case_pipeline_options(const ConformanceSpec& spec, const std::string& backend,
                                      const Expectations& expect);

// Never throws for pipeline failures: a rejected model (InputError) gives
// outcome "rejected", anything else outcome "error", with the message.
nlohmann::json measure_case(const PluginRegistry& plugins, const ConformanceSpec& spec, const std::string& backend,
                            const MeasureOptions& options);

}  // namespace qsdk::conformance
