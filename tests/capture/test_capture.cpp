// Capture: zoo models and TorchScript files to the canonical graph.
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "capture/capture.h"
#include "capture/zoo/zoo.h"
#include "common/error.h"
#include "inspect/inspect.h"
#include "support/canonical_form.h"
#include "support/process.h"
#include "support/torch_doctest.h"

using namespace qsdk;
namespace fs = std::filesystem;

namespace {

int count(const Graph& g, const std::string& kind) {
  auto h = op_histogram(g);
  auto it = h.find(kind);
  return it == h.end() ? 0 : it->second;
}

// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("qsdk-capture-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

fs::path save_scripted(const fs::path& file, const std::string& source) {
  torch::jit::Module m("Tiny");
  m.register_attribute("training", c10::BoolType::get(), true);
  m.define(source);
  m.save(file.string());
  return file;
}

}  // namespace

TEST_CASE("every zoo model captures to canonical form") {
  REQUIRE(zoo::zoo_models().size() >= 9);
  for (const auto& z : zoo::zoo_models()) {
    CAPTURE(z.name);
    auto m = capture_model("zoo:" + z.name);
    test::check_canonical_form(m);
  }
}

TEST_CASE("traced linear becomes aten::linear, and conv-bn-relu keeps its BatchNorm") {
  auto lin = capture_model("zoo:linear_relu");
  CHECK(count(*lin.graph, "aten::linear") == 2);
  CHECK(count(*lin.graph, "aten::t") == 0);
  auto cbr = capture_model("zoo:conv_bn_relu");
  CHECK(count(*cbr.graph, "aten::conv2d") == 1);
  CHECK(count(*cbr.graph, "aten::batch_norm") == 1);
  CHECK(count(*cbr.graph, "aten::relu") == 1);
}

TEST_CASE("zoo resnet18 has torchvision's module paths") {
  auto m = capture_model("zoo:resnet18");
  std::set<std::string> paths;
  for (const auto* n : m.graph->nodes()) paths.insert(m.graph->module_path(n));
  for (const char* p : {"conv1", "bn1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.bn2", "fc"})
    CHECK_MESSAGE(paths.count(p) == 1, p);
  CHECK(count(*m.graph, "aten::conv2d") == 20);
}

TEST_CASE("node ids are stable and index the node list") {
  auto a = capture_model("zoo:residual_add");
  auto b = capture_model("zoo:residual_add");
  REQUIRE(a.graph->nodes().size() == b.graph->nodes().size());
  for (std::size_t i = 0; i < a.graph->nodes().size(); ++i) {
    CHECK(a.graph->id(a.graph->nodes()[i]) == int(i));
    CHECK(a.graph->nodes()[i]->kind() == b.graph->nodes()[i]->kind());
  }
}

TEST_CASE("a scripted TorchScript file: module paths from the call stack, dropout and in-place ops removed") {
  TempDir dir;
  torch::jit::Module inner("Inner");
  inner.register_attribute("training", c10::BoolType::get(), true);
  inner.register_parameter("weight", torch::randn({4, 8}), false);
  inner.register_parameter("bias", torch::randn({4}), false);
  inner.define(R"(
def forward(self, x):
    y = torch.matmul(x, self.weight.t()) + self.bias
    return torch.dropout(y, 0.5, self.training).relu_()
)");
  torch::jit::Module outer("Outer");
  outer.register_attribute("training", c10::BoolType::get(), true);
  outer.register_module("head", inner);
  outer.define("def forward(self, x):\n    return self.head.forward(x)\n");
  const fs::path file = dir.path / "scripted.pt";
  outer.save(file.string());

  auto m = capture_model(file.string(), {{{2, 8}}, 0});
  test::check_canonical_form(m);
  CHECK(count(*m.graph, "aten::linear") == 1);
  CHECK(count(*m.graph, "aten::relu") == 1);
  for (const auto* n : m.graph->nodes())
    if (n->kind().toQualString() == std::string("aten::linear")) CHECK(m.graph->module_path(n) == "head");
}

TEST_CASE("capture errors name the file and the cause") {
  TempDir dir;
  SUBCASE("missing file") {
    CHECK_THROWS_WITH(capture_model((dir.path / "nope.pt").string(), {{{1}}, 0}),
                      ((dir.path / "nope.pt").string() + ": no such file").c_str());
  }
  SUBCASE("empty file") {
    const auto f = dir.path / "empty.pt";
    std::ofstream(f).close();
    CHECK_THROWS_WITH(capture_model(f.string(), {{{1}}, 0}), doctest::Contains("file is empty"));
  }
  SUBCASE("not a TorchScript archive") {
    const auto f = dir.path / "text.pt";
    std::ofstream(f) << "hello, I am not a model\n";
    CHECK_THROWS_WITH(capture_model(f.string(), {{{1}}, 0}),
                      doctest::Contains((f.string() + ": not a TorchScript archive, or a truncated one").c_str()));
  }
  SUBCASE("truncated archive") {
    const auto f = save_scripted(dir.path / "cut.pt", "def forward(self, x):\n    return x.relu()\n");
    fs::resize_file(f, fs::file_size(f) / 2);
    CHECK_THROWS_WITH(capture_model(f.string(), {{{1, 4}}, 0}),
                      doctest::Contains((f.string() + ": not a TorchScript archive, or a truncated one").c_str()));
  }
  SUBCASE("control flow left after freezing") {
    const auto f = save_scripted(dir.path / "if.pt",
                                 "def forward(self, x):\n    if bool(x.sum() > 0):\n        return x.relu()\n"
                                 "    return x.sigmoid()\n");
    CHECK_THROWS_WITH(capture_model(f.string(), {{{1, 4}}, 0}),
                      doctest::Contains((f.string() + ": control flow left after freezing: prim::If").c_str()));
  }
  SUBCASE("input shape that does not fit") {
    CHECK_THROWS_WITH(capture_model("zoo:mnist_cnn", {{{1, 3, 28, 28}}, 0}),
                      doctest::Contains("zoo:mnist_cnn: input shape [1,3,28,28] does not fit the model"));
  }
  SUBCASE("wrong number of inputs") {
    const auto f = save_scripted(dir.path / "one.pt", "def forward(self, x):\n    return x.relu()\n");
    CHECK_THROWS_WITH(capture_model(f.string(), {{{1, 4}, {1, 4}}, 0}),
                      doctest::Contains("model takes 1 input(s), 2 input shape(s) given"));
  }
  SUBCASE("unknown zoo model") {
    CHECK_THROWS_WITH(capture_model("zoo:alexnet"), doctest::Contains("zoo:alexnet: no such zoo model (known: "));
  }
  SUBCASE("file without input shapes") {
    const auto f = save_scripted(dir.path / "noshape.pt", "def forward(self, x):\n    return x.relu()\n");
    CHECK_THROWS_WITH(capture_model(f.string()), doctest::Contains("input shapes unknown: pass --input-shape"));
  }
}

TEST_CASE("parse_shape accepts 1,3,224,224 and rejects junk") {
  CHECK(parse_shape("1,3,224,224") == std::vector<std::int64_t>{1, 3, 224, 224});
  CHECK_THROWS_AS(parse_shape("1,x"), InputError);
  CHECK_THROWS_AS(parse_shape("1,,2"), InputError);
  CHECK_THROWS_AS(parse_shape("0,3"), InputError);
}

TEST_CASE("parse_input_spec: SHAPE[:DTYPE[:LOW..HIGH]], and the inverse") {
  const auto ids = parse_input_spec("2,64:int64:0..256");
  CHECK(ids.shape == std::vector<std::int64_t>{2, 64});
  CHECK(ids.dtype == InputDtype::int64);
  CHECK(ids.low == 0);
  CHECK(ids.high == 256);
  CHECK(input_spec_text(ids) == "2,64:int64:0..256");
  CHECK(parse_input_spec("1,3").dtype == InputDtype::float32);
  CHECK_FALSE(parse_input_spec("1,8:int32").has_range());
  CHECK(parse_input_spec("1,8:bool").dtype == InputDtype::boolean);
  auto cause = [](const std::string& text) {
    try {
      parse_input_spec(text);
    } catch (const InputError& e) {
      return e.where() + ": " + e.cause();
    }
    return std::string();
  };
  CHECK(cause("1,8:int8") ==
        "--input 1,8:int8: unknown dtype 'int8'; expected float32, int64, int32 or bool (SHAPE[:DTYPE[:LOW..HIGH]], "
        "e.g. 2,64:int64:0..256)");
  CHECK(cause("1,8:int64:5..5") == "--input 1,8:int64:5..5: empty range 5..5: HIGH is excluded, so it must exceed LOW");
  CHECK(cause("1,8:int64:0-9") ==
        "--input 1,8:int64:0-9: range '0-9' is not LOW..HIGH (integers, HIGH excluded), e.g. 0..256");
  CHECK(cause("1,8:float32:0..2") ==
        "--input 1,8:float32:0..2: a range is for integer inputs; float32 data is normal noise");
  CHECK(cause("x:int64").find("expected positive integers") != std::string::npos);
}

TEST_CASE("typed inputs: token ids and a mask captured with names, ranges and dtypes checked") {
  TempDir dir;
  torch::jit::Module m("Tokens");
  m.register_parameter("table", torch::randn({50, 8}), false);
  m.define(
      "def forward(self, idx, keep):\n"
      "    e = torch.embedding(self.table, idx)\n"
      "    return e * keep.unsqueeze(-1).float()\n");
  const auto f = (dir.path / "tokens.pt").string();
  m.save(f);
  // The range of idx comes from the table; keep's is declared.
  const auto captured = capture_model(f, {{parse_input_spec("2,6:int64"), parse_input_spec("2,6:int64:0..2")}, 0});
  REQUIRE(captured.inputs.size() == 2);
  CHECK(captured.inputs[0].name == "idx");
  CHECK(captured.inputs[0].high == 50);
  CHECK(captured.inputs[1].name == "keep");
  CHECK((captured.example_inputs[0].scalar_type() == at::kLong));
  CHECK(captured.example_inputs[0].max().item<std::int64_t>() < 50);
  CHECK(captured.example_inputs[1].max().item<std::int64_t>() <= 1);
  CHECK(captured.graph->run(captured.example_inputs).at(0).sizes().vec() == std::vector<std::int64_t>{2, 6, 8});

  CHECK_THROWS_WITH(capture_model(f, {{parse_input_spec("2,6"), parse_input_spec("2,6:int64:0..2")}, 0}),
                    doctest::Contains("input 0 (idx) of the model wants int64 token ids (it indexes aten::embedding "
                                      "(50 rows)), not float32: declare it, e.g. --input 2,6:int64"));
  CHECK_THROWS_WITH(capture_model(f, {{parse_input_spec("2,6:int64"), parse_input_spec("2,6:int64")}, 0}),
                    doctest::Contains("input 1 (keep) is int64 and indexes no embedding: declare the range of its "
                                      "values, e.g. --input 2,6:int64:0..2"));
  CHECK_THROWS_WITH(
      capture_model(f, {{parse_input_spec("2,6:int64:0..51"), parse_input_spec("2,6:int64:0..2")}, 0}),
      doctest::Contains(
          "input 0 (idx): range 0..51 does not fit aten::embedding (50 rows): token ids must lie in 0..50"));
}

TEST_CASE("qsdk inspect: histogram, nodes with paths and shapes, SVG, and errors that exit 2 and write nothing") {
  TempDir dir;
  const std::string qsdk = QSDK_TEST_EXE;
  const auto svg = dir.path / "g.svg";
  const auto dot = dir.path / "g.dot";
  auto r = test::run_command(qsdk + " inspect zoo:resnet18 --svg " + test::shell_quote(svg.string()) + " --dot " +
                             test::shell_quote(dot.string()));
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("aten::conv2d") != std::string::npos);
  CHECK(r.out.find("layer1.0.conv1") != std::string::npos);
  CHECK(r.out.find("[1,64,56,56]") != std::string::npos);
  REQUIRE(fs::exists(svg));
  std::ifstream in(svg);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("<svg") != std::string::npos);
  CHECK(text.find("layer4.1.conv2") != std::string::npos);
  CHECK(fs::file_size(dot) > 1000);

  const auto bad_svg = dir.path / "bad.svg";
  auto bad = test::run_command(qsdk + " inspect " + test::shell_quote((dir.path / "missing.pt").string()) +
                               " --input-shape 1,3 --svg " + test::shell_quote(bad_svg.string()));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err == "qsdk: error: " + (dir.path / "missing.pt").string() + ": no such file\n");
  CHECK_FALSE(fs::exists(bad_svg));
}
