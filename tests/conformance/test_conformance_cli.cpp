// `qsdk conformance` as users and CI run it: real cases on the bundled
// backends, deliberately wrong and bad specs, parallel vs serial, shards and
// merge, bless, and the HTML report in headless Chromium.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>

#include "support/process.h"

using qsdk::test::run_command;
using qsdk::test::shell_quote;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kExe = QSDK_TEST_EXE;
const std::string kSource = QSDK_TEST_SOURCE_DIR;

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("qsdk-conformance-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& text) const {
    const auto p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }
};

std::string conv_model() {
  return "model: {file: " + kSource + "/specs/models/conv2d.pt, input_shapes: [[1, 3, 16, 16]]}\n";
}

qsdk::test::CommandResult conformance(const std::string& args) {
  return run_command(shell_quote(kExe) + " conformance " + args);
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// results.json without what differs between two runs of the same cases,
// serial or not: times, and the lowered graph's module paths (and so its
// picture), which lowering assigns in no fixed order.
json comparable(json j) {
  if (j.is_object()) {
    j.erase("seconds");
    j.erase("stages");  // per-stage time and peak memory differ run to run
    j.erase("shard");
    j.erase("graph_svg");
    // The lowered graph's module paths and nearest-source labels come from
    // LibTorch's fusion passes and may differ between processes.
    if (j.contains("graphs") && j["graphs"].contains("lowered"))
      for (auto& n : j["graphs"]["lowered"]) n.erase("module"), n.erase("near");
    for (auto& [k, v] : j.items()) v = comparable(v);
  } else if (j.is_array()) {
    for (auto& v : j) v = comparable(v);
  }
  return j;
}

}  // namespace

TEST_SUITE("conformance cli") {
  TEST_CASE("post-training conv-BatchNorm folds before annotation: a conv (+ hardtanh) rule covers conv-BN-relu6") {
    TempDir tmp;
    const std::string plugins = std::string(QSDK_TEST_BROKEN_PLUGIN_DIR) + "/pt2e_conv";
    const auto r = run_command(shell_quote(kExe) + " --plugin-dir " + shell_quote(plugins) + " conformance " +
                               shell_quote(kSource + "/tests/specs/pt2e_conv_bn_relu6.yaml") +
                               " --backend pt2e-conv -o " + shell_quote(tmp.path.string()));
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("1 passed") != std::string::npos);
    // The decision log says what was folded, and nothing is left in float.
    const json results = json::parse(read(tmp.path / "results.json"));
    const json& d = results.at("cases").at(0).at("measurement").at("measurements").at("details").at("decisions");
    int folded = 0, quantized = 0, floating = 0;
    for (const auto& n : d) {
      const auto status = n.at("status").get<std::string>();
      folded += status == "folded";
      quantized += status == "quantized";
      floating += status == "float";
      if (status == "folded")
        CHECK(n.at("reason").get<std::string>().find("aten::batch_norm (bn) into %") != std::string::npos);
    }
    CHECK(folded == 1);
    CHECK(quantized == 2);  // conv2d and its hardtanh
    CHECK(floating == 0);
  }

  TEST_CASE("conformance: a correct spec passes on all three backends and writes the three reports") {
    TempDir dir;
    dir.write("specs/conv.yaml", conv_model() + R"(backends: all
expect:
  structure:
    counts: {aten::quantize_per_tensor: 2, aten::dequantize: 3, aten::conv2d: 1}
  qparams:
    - {select: all_activations, dtype: uint8}
per_backend:
  x86-int8: {lowered: {counts: {quantized::conv2d: 1}}, numerics: {max_steps: 1}}
  arm: {lowered: {counts: {quantized::conv2d: 1}}}
)");
    const auto r =
        conformance(shell_quote((dir.path / "specs").string()) + " -o " + shell_quote((dir.path / "out").string()));
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(std::regex_search(r.out, std::regex("conv +pass +pass +pass")));
    CHECK(r.out.find("3 cases: 3 passed, 0 failed, 0 skipped, 0 errors") != std::string::npos);
    CHECK(fs::exists(dir.path / "out" / "report.html"));
    const auto junit = read(dir.path / "out" / "junit.xml");
    CHECK(junit.find("tests=\"3\" failures=\"0\"") != std::string::npos);
    const auto results = json::parse(read(dir.path / "out" / "results.json"));
    CHECK(results["cases"].size() == 3);
    CHECK(results["cases"][0]["measurement"]["measurements"].contains("sqnr_db"));
  }

  TEST_CASE(
      "conformance: a deliberately wrong spec fails: each message names the check, expected, found and the node") {
    TempDir dir;
    const auto spec = dir.write("wrong.yaml", conv_model() + R"(backends: [x86-int8]
expect:
  structure:
    counts: {aten::dequantize: 5}
  qparams:
    - {select: all_weights, dtype: uint8}
  numerics: {sqnr_min_db: 90}
)");
    const auto r = conformance(shell_quote(spec.string()) + " -o " + shell_quote((dir.path / "out").string()));
    INFO(r.out, r.err);
    CHECK(r.exit_code == 1);
    CHECK(std::regex_search(r.out, std::regex("wrong +skip +skip +fail|wrong +fail")));
    // Wrong count: the dequantize nodes found, with ids and module paths.
    CHECK(r.out.find("structure.counts[aten::dequantize] (reference graph): expected 5, found 3; nodes:") !=
          std::string::npos);
    CHECK(std::regex_search(r.out, std::regex("%[0-9]+ aten::dequantize \\(next to conv\\)")));
    // Wrong dtype: the weight tensor by node and module.
    CHECK(r.out.find("qparams[all_weights].dtype: expected uint8, found int8; nodes:") != std::string::npos);
    CHECK(r.out.find("%0 (aten::conv2d, conv) input 1 -> int8") != std::string::npos);
    // SQNR bound too high: the value found and the weakest layer.
    CHECK(std::regex_search(r.out, std::regex("numerics.sqnr_min_db: expected >= 90.00 dB \\(reference vs float\\), "
                                              "found [0-9.]+ dB; nodes:")));
    CHECK(std::regex_search(r.out, std::regex("lowest layer SQNR: %0 aten::conv2d \\(conv\\) [0-9.]+ dB")));
    CHECK(r.out.find("(spec " + spec.string() + ":") != std::string::npos);
    const auto junit = read(dir.path / "out" / "junit.xml");
    CHECK(junit.find("<failure type=\"conformance check\" message=\"structure.counts[aten::dequantize]") !=
          std::string::npos);
    CHECK(read(dir.path / "out" / "report.html").find("qparams[all_weights].dtype") != std::string::npos);
  }

  TEST_CASE("conformance: bad specs: file:line:column and the cause, exit 2, nothing run") {
    TempDir dir;
    struct Case {
      const char* name;
      std::string text;
      std::string expected;  // after "<file>:"
    };
    const std::vector<Case> cases{
        {"syntax", conv_model() + "backends: [x86-int8\n", "3:1: YAML syntax error"},
        {"unknown_key", conv_model() + "expect:\n  numerics: {sqnr_mindb: 20}\n",
         "3:14: unknown key 'sqnr_mindb' (did you mean 'sqnr_min_db'?)"},
        {"unknown_backend", conv_model() + "backends: [x86-int8, arm64]\n",
         "2:22: unknown backend 'arm64' (did you mean 'arm'?)"},
        {"missing_zoo_model", "model: {zoo: resnet34}\n", "1:14: missing model: no zoo model 'resnet34'"},
        {"missing_file_model", "model:\n  file: missing.pt\n  input_shapes: [[1, 3, 8, 8]]\n",
         "2:9: missing model: no file"},
    };
    for (const auto& c : cases) {
      const auto spec = dir.write(std::string(c.name) + ".yaml", c.text);
      const auto r = conformance(shell_quote(spec.string()) + " -o " + shell_quote((dir.path / "out").string()));
      INFO(c.name, " ", r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("qsdk: error: " + spec.string() + ":" + c.expected) != std::string::npos);
      CHECK_FALSE(fs::exists(dir.path / "out" / "results.json"));
    }
    const auto good = dir.write("good.yaml", conv_model());
    const auto backend = conformance(shell_quote(good.string()) + " --backend x86_int8");
    CHECK(backend.exit_code == 2);
    CHECK(backend.err.find("--backend x86_int8: no such backend (did you mean 'x86-int8'?)") != std::string::npos);
    const auto shard = conformance(shell_quote(good.string()) + " --shard 3/2");
    CHECK(shard.exit_code == 2);
    CHECK(shard.err.find("expected K/N with 1 <= K <= N") != std::string::npos);
  }

  TEST_CASE("conformance: parallel equals serial, shards merged equal the whole run") {
    TempDir dir;
    dir.write("specs/conv.yaml", conv_model());
    dir.write("specs/cat.yaml", "model: {zoo: conv_cat}\nexpect: {numerics: {sqnr_min_db: 20}}\n");
    dir.write("specs/linear.yaml", "model: {zoo: linear_relu}\nbackends: [arm, per-channel]\n");
    const std::string specs = shell_quote((dir.path / "specs").string());
    auto out = [&](const std::string& name) { return shell_quote((dir.path / name).string()); };
    const auto serial = conformance(specs + " -j 1 -o " + out("serial"));
    const auto parallel = conformance(specs + " -j 3 -o " + out("parallel"));
    REQUIRE(serial.exit_code == 0);
    REQUIRE(parallel.exit_code == 0);
    const auto a = comparable(json::parse(read(dir.path / "serial" / "results.json")));
    const auto b = comparable(json::parse(read(dir.path / "parallel" / "results.json")));
    CHECK(json::diff(a, b).dump() == "[]");  // on failure: the JSON patch between them
    const auto s1 = conformance(specs + " --shard 1/2 -o " + out("s1"));
    const auto s2 = conformance(specs + " --shard 2/2 -o " + out("s2"));
    CHECK(s1.exit_code == 0);
    CHECK(s2.exit_code == 0);
    CHECK(s1.out.find("(shard 1/2)") != std::string::npos);
    const auto shard1 = json::parse(read(dir.path / "s1" / "results.json"));
    const auto shard2 = json::parse(read(dir.path / "s2" / "results.json"));
    CHECK(shard1["cases"].size() + shard2["cases"].size() == 9);
    const auto merged = run_command(shell_quote(kExe) + " conformance merge " + out("s2") + " " +
                                    out("s1/results.json") + " -o " + out("merged"));
    INFO(merged.out, merged.err);
    CHECK(merged.exit_code == 0);
    CHECK(json::diff(a, comparable(json::parse(read(dir.path / "merged" / "results.json")))).dump() == "[]");
    CHECK(fs::exists(dir.path / "merged" / "junit.xml"));
    CHECK(fs::exists(dir.path / "merged" / "report.html"));
    // Only one shard: the other's cases are errors, and the exit code says so.
    const auto partial = run_command(shell_quote(kExe) + " conformance merge " + out("s1") + " -o " + out("partial"));
    CHECK(partial.exit_code == 1);
    CHECK(partial.out.find("no shard ran this case") != std::string::npos);
    // A shard written by another qsdk version (here: no measurements_version) is named, exit 2.
    auto old = shard1;
    for (auto& c : old["cases"])
      if (c["measurement"].contains("measurements")) c["measurement"]["measurements"].erase("measurements_version");
    dir.write("old/results.json", old.dump());
    const auto stale =
        run_command(shell_quote(kExe) + " conformance merge " + out("old") + " " + out("s2") + " -o " + out("stale"));
    CHECK(stale.exit_code == 2);
    CHECK(stale.err.find("measurements written by another qsdk version") != std::string::npos);
  }

  TEST_CASE("conformance: --bless writes the measured structure of a spec without one, and the blessed spec passes") {
    TempDir dir;
    const auto spec = dir.write("specs/new_model.yaml", "# a model just added\nmodel: {zoo: residual_add}\n");
    const auto r = conformance(shell_quote((dir.path / "specs").string()) + " --bless -o " +
                               shell_quote((dir.path / "out").string()));
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    const auto blessed = dir.path / "out" / "blessed" / "new_model.yaml";
    REQUIRE(fs::exists(blessed));
    CHECK(r.out.find("diff -u " + spec.string() + " " + blessed.string()) != std::string::npos);
    const auto text = read(blessed);
    CHECK(text.find("# a model just added\nmodel: {zoo: residual_add}\n") == 0);
    CHECK(text.find("aten::quantize_per_tensor:") != std::string::npos);
    CHECK(text.find("quantized::add_relu: 1") != std::string::npos);
    CHECK(text.find("sqnr_min_db:") != std::string::npos);
    const auto again = conformance(shell_quote(blessed.string()) + " -o " + shell_quote((dir.path / "out2").string()));
    INFO(again.out);
    CHECK(again.exit_code == 0);
    CHECK(again.out.find("3 passed") != std::string::npos);
  }

  TEST_CASE("conformance: expected failures pass, unexpected rejections are errors, skips say why") {
    TempDir dir;
    const auto spec = dir.write("xfail.yaml", conv_model() + R"(backends: all
options:
  per-channel: {weight_bits: "5"}
skip:
  arm: "not relevant for this test"
per_backend:
  per-channel:
    expect_failure: {kind: reject, reason: weight_bits}
)");
    const auto r = conformance(shell_quote(spec.string()) + " -o " + shell_quote((dir.path / "out").string()));
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("(expected failure)") != std::string::npos);
    CHECK(std::regex_search(r.out, std::regex("xfail +skip +pass\\* +pass")));
    CHECK(read(dir.path / "out" / "junit.xml").find("<skipped message=\"not relevant for this test\"/>") !=
          std::string::npos);
    // The same rejection, not expected: an error, exit 1, with the pipeline's message.
    const auto bad = dir.write("unexpected.yaml", conv_model() + R"(backends: [per-channel]
options:
  per-channel: {weight_bits: "5"}
)");
    const auto e = conformance(shell_quote(bad.string()) + " -o " + shell_quote((dir.path / "out2").string()));
    CHECK(e.exit_code == 1);
    CHECK(e.out.find("error: unexpected on per-channel") != std::string::npos);
    CHECK(e.out.find("weight_bits") != std::string::npos);
  }
}

namespace {

bool has_chromium() { return run_command("command -v chromium").exit_code == 0; }

}  // namespace

TEST_SUITE("conformance html") {
  // CI installs chromium through scripts/setup.sh; without it this test
  // does nothing, and says so.
  TEST_CASE("conformance: the HTML report opens in headless Chromium without errors, with the matrix and a chart") {
    if (!has_chromium()) {
      MESSAGE("skipped: chromium not installed");
      return;
    }
    TempDir dir;
    dir.write("specs/conv.yaml", conv_model());
    const auto r =
        conformance(shell_quote((dir.path / "specs").string()) + " -o " + shell_quote((dir.path / "out").string()));
    REQUIRE(r.exit_code == 0);
    const std::string url = "file://" + (dir.path / "out" / "report.html").string();
    const std::string chromium =
        "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
        "--user-data-dir=" +
        shell_quote((dir.path / "profile").string()) + " --enable-logging=stderr --v=0 ";
    // The DOM as Chromium built it: the matrix, a chart, no script errors.
    const auto dom = run_command(chromium + "--dump-dom " + shell_quote(url));
    INFO(dom.err);
    REQUIRE(dom.exit_code == 0);
    CHECK(dom.out.find("<table id=\"matrix\">") != std::string::npos);
    CHECK(dom.out.find("<svg class=\"chart\"") != std::string::npos);
    CHECK(dom.err.find("Uncaught") == std::string::npos);
    CHECK(dom.err.find(":CONSOLE(") == std::string::npos);
    // A screenshot of the top of the page (matrix and the first case's
    // chart): not blank.
    const auto png = dir.path / "shot.png";
    const auto shot = run_command(chromium + "--window-size=1200,1000 --screenshot=" + shell_quote(png.string()) + " " +
                                  shell_quote(url));
    INFO(shot.err);
    REQUIRE(shot.exit_code == 0);
    REQUIRE(fs::exists(png));
    // Debian's python3-pil (a dependency of python3-torchvision) reads it:
    // distinct colours, and the share of pixels that are not background.
    const auto stats =
        run_command("/usr/bin/python3 -c " +
                    shell_quote("import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]).convert('RGB')\n"
                                "px = list(im.getdata())\nbg = max(set(px), key=px.count)\n"
                                "print(len(set(px)), sum(p != bg for p in px) / len(px), im.size[0], im.size[1])\n") +
                    " " + shell_quote(png.string()));
    INFO(stats.out, stats.err);
    REQUIRE(stats.exit_code == 0);
    std::istringstream in(stats.out);
    int colours = 0, width = 0, height = 0;
    double ink = 0;
    in >> colours >> ink >> width >> height;
    CHECK(width == 1200);
    CHECK(height == 1000);
    CHECK(colours > 20);  // text, green cells, chart bars
    CHECK(ink > 0.02);    // a blank page would be ~0
  }
}
