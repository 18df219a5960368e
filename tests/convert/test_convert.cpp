// Convert (reference Q/DQ): BatchNorm folded, observers replaced by
// quantize/dequantize, weights stored quantized, SQNR against float, and a
// TorchScript export that LibTorch and Python's torch.jit.load both run.
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "annotate/annotator.h"
#include "capture/capture.h"
#include "convert/convert.h"
#include "data/data_source.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"
#include "support/pipeline_fixture.h"
#include "support/process.h"

using namespace qsdk;
using test::convert_zoo;
using test::Converted;
namespace fs = std::filesystem;

namespace {

std::map<std::string, int> histogram(const Graph& g) {
  std::map<std::string, int> h;
  for (const auto* n : g.ir().nodes()) ++h[n->kind().toQualString()];
  return h;
}

}  // namespace

TEST_CASE("conv-bn-relu on x86-int8: folded, Q/DQ around the fused op, per-channel int8 weight constant") {
  auto c = convert_zoo("conv_bn_relu", "x86-int8");
  auto h = histogram(*c.captured.graph);
  CHECK(c.summary.folded_batch_norms == 1);
  CHECK(h["aten::batch_norm"] == 0);
  CHECK(h["qsdk::observe"] == 0);
  CHECK(h["aten::quantize_per_tensor"] == 2);  // input, output
  CHECK(h["aten::dequantize"] == 3);           // input, weight, output
  bool saw_weight = false;
  for (const auto* n : c.captured.graph->ir().nodes()) {
    if (n->kind() != c10::prim::Constant) continue;
    auto v = torch::jit::toIValue(n->output());
    if (v && v->isTensor() && v->toTensor().is_quantized()) {
      saw_weight = true;
      CHECK((v->toTensor().qscheme() == at::kPerChannelAffine));
      CHECK(v->toTensor().q_per_channel_zero_points().abs().max().item<int64_t>() == 0);  // symmetric
      CHECK(v->toTensor().int_repr().abs().max().item<int>() <= 127);
    }
  }
  CHECK(saw_weight);
  const auto q = c.captured.graph->run(c.captured.example_inputs);
  CHECK(sqnr_db(c.float_out[0], q[0]) > 30.0);
}

TEST_CASE("every zoo model converts for every bundled backend and stays close to float") {
  for (const char* model : {"conv_bn_relu", "linear_relu", "residual_add", "conv_cat", "pooling", "mbv3_block",
                            "mnist_cnn", "transformer_block"}) {
    for (const char* backend : {"x86-int8", "arm", "per-channel"}) {
      CAPTURE(model);
      CAPTURE(backend);
      auto c = convert_zoo(model, backend);
      const auto q = c.captured.graph->run(c.captured.example_inputs);
      CHECK(histogram(*c.captured.graph)["qsdk::observe"] == 0);
      CHECK(sqnr_db(c.float_out[0], q[0]) > 15.0);
    }
  }
}

TEST_CASE("4-bit weights use the narrow range and lose more than 8-bit") {
  auto eight = convert_zoo("mnist_cnn", "per-channel");
  auto four = convert_zoo("mnist_cnn", "per-channel", {{"weight_bits", "4"}, {"activation_bits", "4"}});
  const double s8 = sqnr_db(eight.float_out[0], eight.captured.graph->run(eight.captured.example_inputs)[0]);
  const double s4 = sqnr_db(four.float_out[0], four.captured.graph->run(four.captured.example_inputs)[0]);
  CHECK(histogram(*four.captured.graph)["aten::fake_quantize_per_tensor_affine"] > 0);
  CHECK(s4 < s8 - 6.0);
}

TEST_CASE("dynamic linear quantizes its input at run time") {
  auto c = convert_zoo("linear_relu", "per-channel", {{"linear", "dynamic"}});
  CHECK(c.summary.dynamic_inputs == 2);
  CHECK(histogram(*c.captured.graph)["aten::quantize_per_tensor_dynamic"] == 2);
  const auto q = c.captured.graph->run(c.captured.example_inputs);
  CHECK(sqnr_db(c.float_out[0], q[0]) > 25.0);
}

TEST_CASE("embedding tables are quantized weight-only, per row, at 8 and 4 bits") {
  // The float table, before any backend touches it.
  const auto float_model = capture_model("zoo:tiny_lm", {});
  at::Tensor table;
  for (const auto* n : float_model.graph->nodes())
    if (n->kind() == c10::aten::embedding) table = torch::jit::toIValue(n->input(0))->toTensor();
  REQUIRE(table.defined());

  double error8 = 0;
  for (const char* bits : {"8", "4"}) {
    CAPTURE(bits);
    auto c = convert_zoo("tiny_lm", "per-channel", {{"embedding_bits", bits}});
    const torch::jit::Node* emb = nullptr;
    for (const auto* n : c.captured.graph->nodes())
      if (n->kind() == c10::aten::embedding) emb = n;
    REQUIRE(emb);
    // The table is a per-row quantized constant behind a dequantize; the ids stay int64.
    const auto* dq = emb->input(0)->node();
    REQUIRE(dq->kind() == c10::aten::dequantize);
    const auto q = torch::jit::toIValue(dq->input(0))->toTensor();
    REQUIRE(q.is_quantized());
    CHECK((q.qscheme() == at::kPerChannelAffine || q.qscheme() == at::kPerChannelSymmetric));
    CHECK(q.q_per_channel_axis() == 0);
    CHECK(q.q_per_channel_scales().numel() == table.size(0));
    const auto ints = q.int_repr();
    const int top = std::string(bits) == "8" ? 127 : 7;
    CHECK(ints.abs().max().item<int>() == top);  // each row's largest |value| uses the full width
    // Within half a step of each row's own scale.
    const auto step = q.q_per_channel_scales().to(at::kFloat).unsqueeze(1);
    const auto error = (q.dequantize() - table).abs();
    CHECK((error <= step * 0.5 + 1e-6).all().item<bool>());
    const double rms = error.pow(2).mean().sqrt().item<double>();
    if (std::string(bits) == "8")
      error8 = rms;
    else
      CHECK(rms > 8 * error8);  // 4 bits: 16x the step, more than 8x the error
    // The lookup's output is float: the next op's own rule quantizes it.
    CHECK(emb->output()->uses().at(0).user->kind() != c10::aten::dequantize);
  }
  // float: the table is left alone.
  auto kept = convert_zoo("tiny_lm", "per-channel", {{"embedding_bits", "float"}});
  for (const auto* n : kept.captured.graph->nodes())
    if (n->kind() == c10::aten::embedding) CHECK(n->input(0)->node()->kind() == c10::prim::Constant);
}

TEST_CASE("the exported model loads in LibTorch and in Python's torch.jit.load with the same output") {
  auto c = convert_zoo("mnist_cnn", "x86-int8");
  const fs::path dir = fs::temp_directory_path() / ("qsdk-export-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const fs::path model = dir / "model.pt";
  export_torchscript(*c.captured.graph, model);
  const auto expected = c.captured.graph->run(c.captured.example_inputs)[0];

  auto loaded = torch::jit::load(model.string());
  const auto cpp_out = loaded.forward({c.captured.example_inputs[0]}).toTensor();
  CHECK(torch::equal(cpp_out, expected));

  // Python: load the model, run it on the same input, compare with C++.
  const fs::path io = dir / "io.pkl";
  {
    auto bytes = torch::jit::pickle_save(c10::ivalue::Tuple::create({c.captured.example_inputs[0], expected}));
    std::ofstream(io, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  }
  const std::string script =
      "import sys, torch\n"
      "m = torch.jit.load(sys.argv[1])\n"
      "x, expected = torch.load(sys.argv[2])\n"
      "d = (m(x) - expected).abs().max().item()\n"
      "print(d)\n"
      "sys.exit(0 if d <= 1e-6 else 1)\n";
  std::ofstream(dir / "check.py") << script;
  auto r = test::run_command("/usr/bin/python3 " + test::shell_quote((dir / "check.py").string()) + " " +
                             test::shell_quote(model.string()) + " " + test::shell_quote(io.string()));
  CHECK_MESSAGE(r.exit_code == 0, r.out << r.err);
  fs::remove_all(dir);
}

TEST_CASE("qsdk convert writes model, manifest, qparams and annotation, a bad output path exits 2") {
  const fs::path dir = fs::temp_directory_path() / ("qsdk-convert-cli-" + std::to_string(std::random_device{}()));
  const std::string qsdk = QSDK_TEST_EXE;
  auto r =
      test::run_command(qsdk + " convert zoo:conv_bn_relu -b arm --data random --batches 2 --batch-size 2 --output " +
                        test::shell_quote(dir.string()));
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("folded BN:      1") != std::string::npos);
  CHECK(r.out.find("lowered:        qnnpack") != std::string::npos);  // arm declares qnnpack
  CHECK(fs::exists(dir / "arm" / "model_reference.pt"));
  for (const char* f : {"model.pt", "manifest.json", "qparams.json", "annotation.json"})
    CHECK_MESSAGE(fs::exists(dir / "arm" / f), f);
  std::ifstream in(dir / "arm" / "manifest.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string manifest = ss.str();
  for (const char* key :
       {"\"backends\"", "\"fingerprint\"", "\"libtorch\"", "\"sqnr_db\"", "\"size_bytes\"", "\"max_difference_steps\""})
    CHECK_MESSAGE(manifest.find(key) != std::string::npos, key);
  auto loaded = torch::jit::load((dir / "arm" / "model.pt").string());
  CHECK(loaded.forward({torch::randn({1, 3, 32, 32})}).toTensor().sizes().vec() ==
        std::vector<std::int64_t>{1, 16, 32, 32});

  // Python's torch.jit.load runs the lowered (qnnpack) model too, close to the reference form.
  std::ofstream(dir / "check_lowered.py") << "import sys, torch\n"
                                             "torch.backends.quantized.engine = 'qnnpack'\n"
                                             "m = torch.jit.load(sys.argv[1]); r = torch.jit.load(sys.argv[2])\n"
                                             "x = torch.randn(1, 3, 32, 32)\n"
                                             "d = (m(x) - r(x)).abs().max().item()\n"
                                             "print(d)\n"
                                             "sys.exit(0 if d < 0.1 else 1)\n";
  auto py = test::run_command("/usr/bin/python3 " + test::shell_quote((dir / "check_lowered.py").string()) + " " +
                              test::shell_quote((dir / "arm" / "model.pt").string()) + " " +
                              test::shell_quote((dir / "arm" / "model_reference.pt").string()));
  CHECK_MESSAGE(py.exit_code == 0, py.out << py.err);

  // An output path under a regular file cannot be created: exit 2, nothing written.
  const fs::path blocker = dir / "file";
  std::ofstream(blocker) << "x";
  auto bad = test::run_command(qsdk + " convert zoo:conv_bn_relu -b arm --data random --batches 1 --output " +
                               test::shell_quote((blocker / "sub").string()));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find((blocker / "sub").string()) != std::string::npos);
  fs::remove_all(dir);
}
