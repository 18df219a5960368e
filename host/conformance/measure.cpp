#include "conformance/measure.h"

#include <torch/csrc/jit/ir/ir.h>

#include <chrono>

#include "accuracy/mixed_precision.h"
#include "common/error.h"
#include "conformance/checks.h"
#include "graph/graph.h"
#include "graph/graph_drawing.h"
#include "pipeline/measurements_json.h"
#include "pipeline/pipeline.h"
#include "plugins/plugin_registry.h"

namespace qsdk::conformance {
namespace {

using json = nlohmann::json;
using torch::jit::Node;

// The deployed graph as inline SVG for the HTML report.
std::string graph_svg(const Graph& g) {
  const std::string dot = graph_to_dot(g, [](const Node* n) -> DotStyle {
    const std::string k = n->kind().toQualString();
    if (k.rfind("quantized::", 0) == 0) return {"#c8e6c9", "int8 kernel"};
    if (k.find("quantize") != std::string::npos) return {"#bbdefb", ""};
    return {"#ffe0b2", ""};
  });
  std::string svg = render_svg(dot);
  // Inline in HTML: drop the XML prolog and DOCTYPE.
  if (const auto at = svg.find("<svg"); at != std::string::npos) svg = svg.substr(at);
  return svg;
}

}  // namespace

PipelineOptions case_pipeline_options(const ConformanceSpec& spec, const std::string& backend,
                                      const Expectations& expect) {
  PipelineOptions o = spec.pipeline;
  BackendChoice choice{backend, {}, spec.file.string()};
  if (const auto it = spec.options.find(backend); it != spec.options.end()) choice.options = it->second;
  o.backends = {choice};
  o.measure_accuracy =
      o.measure_accuracy ||
      (expect.numerics && (expect.numerics->top1_agreement_min || expect.numerics->perplexity_ratio_max));
  o.export_onnx = o.export_onnx || expect.onnx.has_value();
  if (expect.engine) o.engines = {expect.engine->run};
  return o;
}

json measure_case(const PluginRegistry& plugins, const ConformanceSpec& spec, const std::string& backend,
                  const MeasureOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  BackendOptions options_given;
  if (const auto it = spec.options.find(backend); it != spec.options.end()) options_given = it->second;
  // Per-option expectations depend on the options as resolved here (isa).
  BackendOptions options_resolved = options_given;
  try {
    options_resolved = plugins.resolve_options(backend, options_given);
  } catch (const InputError&) {
    // run_pipeline reports the same error as the case's outcome.
  }
  const Expectations expect = spec.expectations_for(backend, options_resolved);
  json m{{"spec", spec.name},
         {"backend", backend},
         {"spec_file", spec.file.string()},
         {"model", spec.pipeline.model},
         {"backend_options", options_resolved}};
  const PipelineOptions o = case_pipeline_options(spec, backend, expect);

  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  try {
    const PipelineResult r = run_pipeline_for_target(plugins, o, {}, nullptr);
    m["outcome"] = "ran";
    m["measurements"] = to_json(r.measurements);
    if (options.graph_svg) {
      try {
        m["graph_svg"] = graph_svg(r.deployed());
      } catch (const std::exception& e) {
        m["graph_svg_error"] = e.what();
      }
    }
  } catch (const InputError& e) {
    m["outcome"] = "rejected";
    m["error"] = e.what();
  } catch (const std::exception& e) {
    m["outcome"] = "error";
    m["error"] = std::string("internal error: ") + e.what();
  }
  m["seconds"] = seconds();
  return m;
}

}  // namespace qsdk::conformance
