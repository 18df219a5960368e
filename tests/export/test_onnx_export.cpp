// ONNX export: every zoo model on every bundled backend becomes a QDQ model
// that onnx's checker accepts, whose encodings match it, and that ONNX
// Runtime runs within a step or two of the reference; ops without a mapping
// are errors that name the node; run configs and specs take the new keys.
#include <torch/csrc/jit/ir/irparser.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/run_config.h"
#include "export/encodings_check.h"
#include "export/onnx_agreement.h"
#include "export/onnx_export.h"
#include "export/onnx_runtime.h"
#include "graph/graph.h"
#include "pipeline/encodings_json.h"
#include "pipeline/pipeline.h"
#include "support/pipeline_fixture.h"
#include "support/process.h"
#include "support/temp_files.h"

using namespace qsdk;
using test::convert_zoo;
namespace fs = std::filesystem;

namespace {

int count_of(const Graph& g, const char* kind) {
  int n = 0;
  for (const auto* node : g.ir().nodes()) n += std::string(node->kind().toQualString()) == kind;
  return n;
}

Graph parse_graph(const std::string& ir) {
  auto g = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(ir, g.get());
  return Graph(g, "test graph");
}

// A run of the whole pipeline with the ONNX export, as `qsdk convert --format onnx` does.
PipelineResult pipeline_with_onnx(const std::string& model, const std::string& backend, BackendOptions options = {}) {
  PipelineOptions o;
  o.model = model;
  o.backends = {{backend, std::move(options), ""}};
  o.calibration.source = "random";
  o.calibration.batches = 2;
  o.calibration.batch_size = 4;
  o.progress = false;
  o.formats = {"onnx", "encodings"};
  return run_pipeline(test::bundled_plugins(), o);
}

}  // namespace

TEST_CASE("every zoo model exports to a checked QDQ model on every bundled backend") {
  for (const char* model : {"conv_bn_relu", "linear_relu", "residual_add", "conv_cat", "pooling", "mbv3_block",
                            "mnist_cnn", "transformer_block", "resnet18"}) {
    for (const char* backend : {"x86-int8", "arm", "per-channel"}) {
      const std::string model_name = model, backend_name = backend;
      CAPTURE(model_name);
      CAPTURE(backend_name);
      auto c = convert_zoo(model, backend);
      const Graph& ref = *c.captured.graph;
      const OnnxModel onnx = export_onnx(ref, c.summary.quantized_tensors);
      CHECK_NOTHROW(check_onnx_model(onnx.bytes, model));
      // One QuantizeLinear per activation quantize; one DequantizeLinear per
      // dequantize (weights and activations) plus one per int32 bias.
      const int activations = count_of(ref, "aten::quantize_per_tensor");
      CHECK(onnx.quantize_linear == activations);
      int biases = 0;
      for (const auto& t : onnx.quantized) biases += t.kind == "bias";
      CHECK(onnx.dequantize_linear == count_of(ref, "aten::dequantize") + biases);
      CHECK(biases == c.summary.quantized_biases);
      // Every quantization has its record from convert: kind, range, label.
      for (const auto& t : onnx.quantized)
        if (t.kind != "bias") CHECK_MESSAGE(!t.source.empty(), t.tensor);
      Measurements m;
      CHECK(check_encodings(onnx.bytes, encodings_json(onnx, m)).empty());
    }
  }
}

TEST_CASE("per-channel weights keep their axis, biases are int32 at input scale x weight scale") {
  auto c = convert_zoo("conv_bn_relu", "per-channel");
  const OnnxModel onnx = export_onnx(*c.captured.graph, c.summary.quantized_tensors);
  const OnnxQuantizedTensor *weight = nullptr, *bias = nullptr, *input = nullptr;
  for (const auto& t : onnx.quantized) {
    if (t.kind == "weight") weight = &t;
    if (t.kind == "bias") bias = &t;
    if (t.kind == "activation" && !input) input = &t;
  }
  REQUIRE(weight);
  REQUIRE(bias);
  REQUIRE(input);
  CHECK(weight->axis == 0);
  CHECK(weight->scale.size() == 16);
  CHECK(weight->dtype == "int8");
  CHECK(weight->symmetric);
  CHECK(bias->dtype == "int32");
  REQUIRE(bias->scale.size() == 16);
  for (std::size_t i = 0; i < 16; ++i)
    CHECK(bias->scale[i] == doctest::Approx(weight->scale[i] * input->scale[0]).epsilon(1e-6));
}

TEST_CASE("4-bit activations are a QuantizeLinear, a Clip to the declared range and a DequantizeLinear") {
  auto c = convert_zoo("conv_bn_relu", "per-channel", {{"weight_bits", "4"}, {"activation_bits", "4"}});
  const OnnxModel onnx = export_onnx(*c.captured.graph, c.summary.quantized_tensors);
  CHECK_NOTHROW(check_onnx_model(onnx.bytes, "4-bit"));
  bool saw_narrow = false;
  for (const auto& t : onnx.quantized)
    if (t.kind == "activation") {
      CHECK(t.bitwidth == 4);
      CHECK(t.quant_max - t.quant_min == 15);
      saw_narrow = true;
    }
  CHECK(saw_narrow);
  bool saw_clip = false;
  for (const auto& op : onnx.ops) saw_clip |= op.op_type == "QuantizeLinear+Clip+DequantizeLinear";
  CHECK(saw_clip);
}

TEST_CASE("an op without an ONNX mapping is an error naming the op and the node") {
  const Graph g = parse_graph(R"IR(
    graph(%x : Float(2, 3, strides=[3, 1], requires_grad=0, device=cpu)):
      %dim : int = prim::Constant[value=1]()
      %none : NoneType = prim::Constant()
      %r : Tensor = aten::relu(%x)
      %y : Tensor = aten::cumsum(%r, %dim, %none)
      return (%y))IR");
  try {
    export_onnx(g, {});
    FAIL("export of aten::cumsum did not throw");
  } catch (const InputError& e) {
    const std::string message = e.what();
    CHECK(message.find("aten::cumsum") != std::string::npos);
    CHECK(message.find("node %1") != std::string::npos);
    CHECK(message.find("no ONNX mapping") != std::string::npos);
  }
}

TEST_CASE("encodings that do not match the file are reported, entry by entry") {
  auto c = convert_zoo("conv_bn_relu", "x86-int8");
  const OnnxModel onnx = export_onnx(*c.captured.graph, c.summary.quantized_tensors);
  const nlohmann::json good = encodings_json(onnx, Measurements{});
  REQUIRE(check_encodings(onnx.bytes, good).empty());

  nlohmann::json changed_scale = good;
  auto& first = changed_scale["activation_encodings"].begin().value();
  first["scale"][0] = first["scale"][0].get<double>() * 2;
  const auto problems = check_encodings(onnx.bytes, changed_scale);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("scale") != std::string::npos);

  nlohmann::json missing = good;
  missing["param_encodings"].erase(missing["param_encodings"].begin());
  CHECK(check_encodings(onnx.bytes, missing).size() == 1);

  nlohmann::json extra = good;
  extra["activation_encodings"]["no_such_tensor"] = good["activation_encodings"].begin().value();
  const auto extra_problems = check_encodings(onnx.bytes, extra);
  REQUIRE(extra_problems.size() == 1);
  CHECK(extra_problems[0].find("no_such_tensor") != std::string::npos);
}

TEST_CASE("ONNX Runtime runs the export within two output steps of the reference, fused and unfused") {
  std::string why;
  REQUIRE_MESSAGE(find_onnx_runtime(&why), why);  // scripts/setup.sh installs it
  for (const char* backend : {"x86-int8", "arm", "per-channel"}) {
    CAPTURE(backend);
    const PipelineResult r = pipeline_with_onnx("zoo:mnist_cnn", backend);
    REQUIRE(r.measurements.onnx);
    const OnnxMeasurements& o = *r.measurements.onnx;
    CHECK(o.encodings_problems.empty());
    REQUIRE(o.runtime.size() == 2);
    for (const auto& run : o.runtime) {
      CAPTURE(run.optimized);
      CHECK(run.output_scale > 0);
      if (run.steps_bound) CHECK(run.max_steps <= 2.0 + 1e-3);  // see OnnxRuntimeAgreement::steps_bound
      CHECK(run.sqnr_db > 25.0);
    }
    // The unfused run compares every quantized tensor.
    CHECK(o.runtime[1].tensors_checked == std::size_t(o.quantize_linear));
    CHECK(r.measurements.onnx_problem(2.0).empty());
  }
}

TEST_CASE("a wrong ONNX Runtime result is caught: the agreement is measured, not assumed") {
  std::string why;
  REQUIRE_MESSAGE(find_onnx_runtime(&why), why);
  auto c = convert_zoo("conv_bn_relu", "x86-int8");
  OnnxModel onnx = export_onnx(*c.captured.graph, c.summary.quantized_tensors);
  // The same file, measured against a reference whose output scale is off:
  // ONNX Runtime's output then differs from "the reference" by many steps.
  auto shifted = c.captured.graph->clone();
  for (auto* n : shifted->ir().nodes())
    if (n->kind() == c10::aten::quantize_per_tensor) {
      torch::jit::WithInsertPoint guard(n);
      n->replaceInput(1, shifted->ir().insertConstant(torch::jit::toIValue(n->input(1))->toDouble() * 3));
    }
  shifted->renumber();
  const auto runs = measure_onnx_agreement(*shifted, onnx, c.captured.example_inputs, c.float_out[0]);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].max_steps > 2.0);
}

TEST_CASE("write_pipeline_outputs writes model.onnx and encodings.json when asked, and lists them") {
  const PipelineResult r = pipeline_with_onnx("zoo:conv_bn_relu", "x86-int8");
  test::TempDir dir("qsdk-onnx-outputs");
  write_pipeline_outputs(r, dir.path, false, {"onnx", "encodings"});
  CHECK(fs::exists(dir.path / "model.onnx"));
  CHECK(fs::exists(dir.path / "encodings.json"));
  CHECK_FALSE(fs::exists(dir.path / "model.pt"));
  const auto manifest = nlohmann::json::parse(test::slurp(dir.path / "manifest.json"));
  CHECK(manifest.at("files").contains("model.onnx"));
  CHECK(manifest.at("files").contains("encodings.json"));
  CHECK_FALSE(manifest.at("files").contains("model.pt"));
  // The file on disk is what was checked, and Python's onnx agrees.
  CHECK_NOTHROW(check_onnx_model(test::slurp(dir.path / "model.onnx"), "model.onnx"));
  const auto py = test::run_command(
      "/usr/bin/python3 -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
      "full_check=True)' " +
      test::shell_quote((dir.path / "model.onnx").string()));
  CHECK_MESSAGE(py.exit_code == 0, py.out << py.err);
  const auto enc = nlohmann::json::parse(test::slurp(dir.path / "encodings.json"));
  CHECK(enc.at("version") == kEncodingsVersion);
  CHECK(check_encodings(test::slurp(dir.path / "model.onnx"), enc).empty());
  CHECK(enc.at("ops").size() >= 2);  // conv, relu: each with its decision
  for (const auto& op : enc.at("ops")) CHECK(op.contains("status"));
}

TEST_CASE("output formats: run config key, did-you-mean, encodings needs onnx") {
  const std::string base = "model: zoo:conv_bn_relu\nbackends: [x86-int8]\n";
  const RunConfig c = parse_run_config(base + "output: {formats: [onnx, encodings]}\n", "cfg.yaml", ".");
  CHECK(c.pipeline.formats == std::vector<std::string>{"onnx", "encodings"});
  CHECK(c.pipeline.exports_onnx());
  CHECK_THROWS_WITH_AS(parse_run_config(base + "output: {formats: [onx]}\n", "cfg.yaml", "."),
                       doctest::Contains("did you mean 'onnx'"), InputError);
  CHECK_THROWS_WITH_AS(parse_run_config(base + "output: {formats: [encodings]}\n", "cfg.yaml", "."),
                       doctest::Contains("list onnx too"), InputError);
  CHECK(formats_problem({"torchscript", "torchscript"}).find("twice") != std::string::npos);
  CHECK(formats_problem({"torchscript", "onnx", "encodings"}).empty());
}
