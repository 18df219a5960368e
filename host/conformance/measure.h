// One conformance case, measured: runs the whole pipeline for one spec and
// one backend and returns the measurement JSON the checks read (schema in
// conformance/checks.h). Runs in a child process of `qsdk conformance`
// (LibTorch's quantized engine is process-global).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "conformance/spec.h"

namespace qsdk {
class PluginRegistry;
}

namespace qsdk::conformance {

struct MeasureOptions {
  bool graph_svg = true;           // render the deployed graph with Graphviz for the HTML report
  std::filesystem::path work_dir;  // scratch files (the SVG); a temporary directory when empty
};

// Never throws for pipeline failures: a rejected model (InputError) gives
// outcome "rejected", anything else outcome "error", with the message.
nlohmann::json measure_case(const PluginRegistry& plugins, const ConformanceSpec& spec, const std::string& backend,
                            const MeasureOptions& options);

}  // namespace qsdk::conformance
