#include "conformance/measure.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "graph/graph.h"
#include "common/error.h"
#include "conformance/checks.h"
#include "graph/graph_drawing.h"
#include "pipeline/pipeline.h"
#include "plugins/plugin_registry.h"
#include "prepare/observers.h"

namespace qsdk::conformance {
namespace {

using json = nlohmann::json;
using torch::jit::Node;
using torch::jit::Value;

// Module path of the op a quantize/dequantize (which have none) serves: its
// producer's, else its first consumer's with one.
std::string near_module(const Graph& g, const Node* n) {
  for (const Value* in : n->inputs())
    if (const auto& p = g.module_path(in->node()); !p.empty()) return p;
  for (const Value* out : n->outputs())
    for (const auto& use : out->uses())
      if (const auto& p = g.module_path(use.user); !p.empty()) return p;
  return "";
}

json graph_nodes(const Graph& g) {
  json nodes = json::array();
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const Node* n = g.nodes()[i];
    json j{{"id", static_cast<int>(i)}, {"op", n->kind().toQualString()}, {"module", g.module_path(n)}};
    if (g.module_path(n).empty())
      if (const auto near = near_module(g, n); !near.empty()) j["near"] = near;
    nodes.push_back(j);
  }
  return json{{"nodes", nodes}};
}

std::optional<double> input_scale(const Value* x) {
  const Node* p = x->node();
  if (p->kind() == c10::Symbol::fromQualString("aten::dequantize")) {
    const Node* q = p->input(0)->node();
    if (q->kind() == c10::Symbol::fromQualString("aten::quantize_per_tensor")) {
      if (auto s = torch::jit::constant_as<double>(q->input(1))) return *s;
    }
    return std::nullopt;
  }
  if (p->kind() == c10::Symbol::fromQualString("aten::fake_quantize_per_tensor_affine"))
    if (auto s = torch::jit::constant_as<double>(p->input(1))) return *s;
  return std::nullopt;
}

std::vector<double> weight_scales(const Value* w) {
  const Node* p = w->node();
  if (p->kind() != c10::Symbol::fromQualString("aten::dequantize")) return {};
  const auto iv = torch::jit::toIValue(p->input(0));
  if (!iv || !iv->isTensor()) return {};
  const at::Tensor t = iv->toTensor();
  if (!t.is_quantized()) return {};
  if (t.qscheme() == at::kPerTensorAffine || t.qscheme() == at::kPerTensorSymmetric) return {t.q_scale()};
  const at::Tensor s = t.q_per_channel_scales().to(at::kDouble).contiguous();
  return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

// Conv/linear biases of the reference graph, measured against input scale x
// weight scale: how far each is from a whole number of steps.
json bias_report(const Graph& g) {
  json out = json::array();
  const auto conv = c10::Symbol::fromQualString("aten::conv2d");
  const auto linear = c10::Symbol::fromQualString("aten::linear");
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const Node* n = g.nodes()[i];
    if ((n->kind() != conv && n->kind() != linear) || n->inputs().size() < 3) continue;
    const auto bias = torch::jit::toIValue(n->input(2));
    if (!bias || !bias->isTensor()) continue;
    const auto s_in = input_scale(n->input(0));
    const auto s_w = weight_scales(n->input(1));
    if (!s_in || s_w.empty()) continue;
    const at::Tensor b = bias->toTensor().to(at::kDouble).contiguous();
    double worst = 0;
    for (std::int64_t c = 0; c < b.numel(); ++c) {
      const double step = *s_in * s_w[s_w.size() == 1 ? 0 : static_cast<std::size_t>(c)];
      const double k = b.data_ptr<double>()[c] / step;
      worst = std::max(worst, std::abs(k - std::round(k)));
    }
    out.push_back({{"node", static_cast<int>(i)},
                   {"op", n->kind().toQualString()},
                   {"module", g.module_path(n)},
                   {"per_channel", s_w.size() > 1},
                   {"max_error_steps", worst}});
  }
  return out;
}

std::string graph_svg(const Graph& g, const std::filesystem::path& dir) {
  const std::string dot = graph_to_dot(g, [](const Node* n) -> DotStyle {
    const std::string k = n->kind().toQualString();
    if (k.rfind("quantized::", 0) == 0) return {"#c8e6c9", "int8 kernel"};
    if (k.find("quantize") != std::string::npos) return {"#bbdefb", ""};
    return {"#ffe0b2", ""};
  });
  const auto path = dir / ("graph-" + std::to_string(getpid()) + ".svg");
  write_svg(dot, path);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::string svg = ss.str();
  // Inline in HTML: drop the XML prolog and DOCTYPE.
  if (const auto at = svg.find("<svg"); at != std::string::npos) svg = svg.substr(at);
  return svg;
}

}  // namespace

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
         {"model", spec.model.pipeline_model()},
         {"backend_options", options_resolved}};

  PipelineOptions o;
  o.model = spec.model.pipeline_model();
  o.input_shapes = spec.model.input_shapes;
  o.model_seed = spec.model.seed;
  o.backend = backend;
  o.backend_options = options_given;
  o.overrides = spec.pipeline.overrides;
  o.calibration = spec.pipeline.calibration;
  o.activation_observer = spec.pipeline.observer;
  if (spec.pipeline.qat) o.qat = spec.pipeline.qat_options;
  o.lower = spec.pipeline.lower;
  o.max_steps = spec.pipeline.max_steps;
  o.measure_accuracy = spec.pipeline.accuracy || (expect.numerics && expect.numerics->top1_agreement_min);
  o.per_layer_sqnr = true;
  o.progress = false;

  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  try {
    const PipelineResult r = run_pipeline(plugins, o);
    m["outcome"] = "ran";

    m["lowering"] = to_string(r.target);
    int quantized = 0;
    json reasons = json::array();
    for (const auto& n : r.annotation_report.value("nodes", json::array())) {
      if (n.value("status", std::string()) == "quantized")
        ++quantized;
      else
        reasons.push_back({{"node", n.value("id", -1)},
                           {"op", n.value("op", "")},
                           {"module", n.value("module", "")},
                           {"reason", n.value("reason", "")}});
    }
    m["quantized_ops"] = quantized;
    m["float_reasons"] = reasons;
    m["graphs"] = {{"reference", graph_nodes(*r.reference)}};
    if (r.lowered) m["graphs"]["lowered"] = graph_nodes(*r.lowered);
    m["slots"] = build_slots(r.qparams, r.annotation_report);
    m["biases"] = bias_report(*r.reference);
    json num{{"sqnr_db", json_number(r.sqnr_db)}};
    if (r.lowered) {
      num["sqnr_db_lowered"] = json_number(r.sqnr_db_lowered);
      num["max_difference_steps"] = json_number(r.max_difference_steps);
      const OpAgreement* worst = nullptr;
      for (const auto& a : r.op_by_op.checked)
        if (!worst || a.steps > worst->steps) worst = &a;
      num["worst_kernel_steps"] = worst ? worst->steps : 0.0;
      if (worst) {
        std::string ref = "%" + std::to_string(worst->position) + " " + worst->op;
        if (worst->position >= 0 && static_cast<std::size_t>(worst->position) < r.lowered->nodes().size()) {
          const auto& path = r.lowered->module_path(r.lowered->nodes()[static_cast<std::size_t>(worst->position)]);
          if (!path.empty()) ref += " (" + path + ")";
        }
        num["worst_kernel"] = ref + ": " + std::to_string(worst->steps) + " steps";
      }
      num["kernels_checked"] = r.op_by_op.checked.size();
      num["kernels_skipped"] = r.op_by_op.skipped;
    }
    if (r.accuracy)
      num["accuracy"] = {{"float_top1", r.accuracy->float_top1},
                         {"quantized_top1", r.accuracy->quantized_top1},
                         {"agreement", r.accuracy->agreement},
                         {"samples", r.accuracy->samples}};
    m["numerics"] = num;
    json layers = json::array();
    for (const auto& l : r.layers)
      layers.push_back(
          {{"node", l.node}, {"op", l.op}, {"module", l.module_path}, {"sqnr_db", json_number(l.sqnr_db)}});
    m["layers"] = layers;
    m["notes"] = r.notes;
    if (options.graph_svg) {
      try {
        std::filesystem::path dir =
            options.work_dir.empty() ? std::filesystem::temp_directory_path() : options.work_dir;
        m["graph_svg"] = graph_svg(r.deployed(), dir);
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
