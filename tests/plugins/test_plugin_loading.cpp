// Plugin discovery and loading through the ABI: good plugins load, each kind
// of broken plugin is refused with one precise line, and the rest still load.
#include <doctest/doctest.h>
#include <pwd.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "plugins/backend_yaml.h"
#include "plugins/plugin_registry.h"
#include "qsdk/abi.h"
#include "qsdk/version.h"
#include "support/process.h"
#include "target/cpu_target.h"

using namespace qsdk;
namespace fs = std::filesystem;

namespace {

const fs::path kBundled = QSDK_TEST_BUNDLED_PLUGIN_DIR;
const fs::path kBroken = QSDK_TEST_BROKEN_PLUGIN_DIR;
const std::string kQsdk = QSDK_TEST_EXE;

fs::path broken_file(const std::string& name) { return kBroken / name / ("lib" + name + ".so"); }

// Loads the bundled plugins plus one broken case; returns the registry.
PluginRegistry load_with(const std::string& broken_case) {
  PluginRegistry r;
  r.load_directory(kBundled);
  r.load_directory(kBroken / broken_case);
  return r;
}

void check_refused(const std::string& broken_case, const std::string& expected_cause) {
  CAPTURE(broken_case);
  const auto r = load_with(broken_case);
  REQUIRE(r.errors().size() == 1);
  CHECK(r.errors()[0].file == broken_file(broken_case));
  CHECK(r.errors()[0].cause == expected_cause);
  // The other plugins are unaffected.
  CHECK(r.names() == std::vector<std::string>{"arm", "per-channel", "x86-int8"});
}

bool is_mapped(const fs::path& library) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(library.string()) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("the three bundled backends load with their identity") {
  PluginRegistry r;
  r.load_directory(kBundled);
  CHECK(r.errors().empty());
  REQUIRE(r.names() == std::vector<std::string>{"arm", "per-channel", "x86-int8"});
  const auto* x86 = r.find("x86-int8");
  CHECK(x86->backend->lowering == Lowering::OneDNN);
  CHECK(x86->abi_version == kAbiVersion);
  CHECK(r.find("arm")->backend->lowering == Lowering::QNNPACK);
  CHECK(r.find("per-channel")->backend->lowering == Lowering::Reference);
  for (const auto& p : r.plugins()) CHECK(p.backend->rules.size() > 5);
}

TEST_CASE("broken plugins are refused with their exact cause") {
  check_refused("not_a_library", "not a shared library (no ELF header)");
  check_refused("no_entry",
                "missing entry symbol 'qsdk_plugin_entry': not a qsdk plugin (declare it with QSDK_PLUGIN(factory) "
                "from qsdk/plugin.h, or define it in C as qsdk/abi.h says)");
  // The abi_mismatch factory calls abort(): reaching this line proves it was never called.
  check_refused("abi_mismatch",
                "ABI version mismatch: plugin was built for qsdk ABI 999, this host supports 2; rebuild the plugin "
                "against this SDK");
  // So does an ABI 1 plugin's factory.
  check_refused("abi1",
                "ABI version mismatch: plugin was built for qsdk ABI 1 (C++ objects across the boundary, no longer "
                "loaded), this host supports 2; rebuild the plugin against this SDK (CONTRIBUTING.md, \"ABI "
                "versioning\")");
  // The plugin's exception stays in the plugin; its message crosses as a status.
  check_refused("throwing_factory", "the plugin's create_backend failed: license server unreachable");
  check_refused("malformed_tables",
                "the plugin's tables are malformed: rule: struct_size 0 is smaller than qsdk_rule_decl of ABI 2.0 (" +
                    std::to_string(offsetof(qsdk_rule_decl, widths)) + " bytes); set it to sizeof(qsdk_rule_decl)");
  check_refused("newer_enum",
                "the plugin's tables are malformed: backend lowering: unknown value 7 (the plugin is built for ABI "
                "2.9, this host knows 2." +
                    std::to_string(kAbiMinor) + ")");
  check_refused("bad_arithmetic",
                "the plugin's tables are malformed: backend arithmetic accumulator_bits: 99, expected 16 to 64");
  check_refused("engine_without_run",
                "the plugin's tables are malformed: the backend has an engine (has_engine) but the plugin exports no "
                "run_engine");
  check_refused("misnamed_argument",
                "backend 'broken': invalid rules: rule 0 'conv' condition 0 (node(0).group == 1): aten::conv2d has no "
                "argument 'group' (did you mean 'groups'?)");
  check_refused("duplicate_name", "backend name 'x86-int8' is already provided by " +
                                      (kBundled / "libqsdk_x86_int8.so").string() +
                                      " (the earlier one in the search path is kept)");
  check_refused("empty_pattern", "backend 'broken': invalid rules: rule 0 'conv' has an empty pattern");
  check_refused("no_axis",
                "backend 'broken': invalid rules: rule 0 'conv' spec for in(0,1): per-channel spec needs a channel "
                "axis (axis >= 0)");
  check_refused("bad_range",
                "backend 'broken': invalid rules: rule 0 'conv' spec for in(0,0): quant_min (255) must be below "
                "quant_max (0)");
  check_refused("unknown_op",
                "backend 'broken': invalid rules: rule 0 'conv' pattern names unknown op 'aten::frobnicate' "
                "(expected a qualified LibTorch op such as aten::conv2d)");
  check_refused("unobservable",
                "backend 'broken': invalid rules: rule 0 'conv' spec for in(0,1): observer mse is per-tensor only; no "
                "observer computes per-channel qparams from a histogram");
}

TEST_CASE("a missing plugin directory is reported") {
  PluginRegistry r;
  r.load_directory(kBroken / "does-not-exist");
  REQUIRE(r.errors().size() == 1);
  CHECK(r.errors()[0].cause == "plugin directory does not exist");
}

TEST_CASE("bundled constraints are data: the conv rules' condition reads the input's rank") {
  PluginRegistry r;
  r.load_directory(kBundled);
  for (const auto& name : r.names())
    for (const auto& rule : r.find(name)->backend->rules) {
      CAPTURE(rule.name);
      CHECK(rule.constraints.empty());  // no code constraint left in any bundled backend
      if (rule.pattern.front() == "aten::conv2d") {
        REQUIRE(rule.conditions.size() == 1);
        CHECK(to_string(rule.conditions[0]) == "in(0,0).rank == 4 (unknown passes)");
      }
    }
}

TEST_CASE(
    "a code constraint runs in the plugin through the C match view, and the library stays while its backend lives") {
  const fs::path lib = broken_file("code_constraint");
  std::shared_ptr<const Backend> backend;
  {
    PluginRegistry r;
    r.load_file(lib);
    REQUIRE(r.errors().empty());
    backend = r.find("code-check")->backend;
  }  // registry gone
  REQUIRE(is_mapped(lib));
  REQUIRE(backend->rules.size() == 1);
  REQUIRE(backend->rules[0].constraints.size() == 1);
  const Constraint& check = backend->rules[0].constraints[0];
  CHECK(check.name == "conv as described");

  // Every fact the plugin asks for; a 12-dim shape is more than the plugin's
  // first buffer holds, so it has to ask again.
  struct Conv : NodeView {
    std::string path = "conv";
    std::vector<std::int64_t> shape{1, 3, 224, 224, 1, 1, 1, 1, 1, 1, 1, 1};
    std::string_view kind() const override { return "aten::conv2d"; }
    std::string_view module_path() const override { return path; }
    std::size_t num_inputs() const override { return 7; }
    std::optional<std::vector<std::int64_t>> input_shape(std::size_t i) const override {
      if (i == 0) return shape;
      return std::nullopt;
    }
    std::optional<std::vector<std::int64_t>> output_shape() const override { return std::nullopt; }
    std::optional<std::int64_t> int_arg(std::size_t i) const override {
      if (i == 6) return 1;
      return std::nullopt;
    }
    std::optional<double> float_arg(std::size_t i) const override {
      if (i == 6) return 1.0;
      return std::nullopt;
    }
    std::optional<std::vector<std::int64_t>> int_list_arg(std::size_t i) const override {
      if (i == 3) return std::vector<std::int64_t>{2, 2};
      return std::nullopt;
    }
  } node;
  struct OneNode : MatchView {
    const NodeView& n;
    explicit OneNode(const NodeView& v) : n(v) {}
    std::size_t size() const override { return 1; }
    const NodeView& node(std::size_t) const override { return n; }
  } match(node);
  CHECK(check.check(match));
  node.shape = {1, 3};
  CHECK_FALSE(check.check(match));
  // The plugin's exception stays in the plugin; the host throws its message.
  node.path = "explode";
  CHECK_THROWS_WITH(check.check(match), "calibration table missing for aten::conv2d");

  backend.reset();
  CHECK_FALSE(is_mapped(lib));
}

TEST_CASE("options are checked against what the plugin declares") {
  PluginRegistry r;
  r.load_directory(kBundled);
  auto four_bit = r.instantiate("per-channel", {{"weight_bits", "4"}});
  bool saw_weight = false;
  for (const auto& a : four_bit->rules.front().annotations)
    if (a.edge == in(0, 1)) {
      saw_weight = true;
      CHECK(a.spec.quant_min == -7);
      CHECK(a.spec.quant_max == 7);
    }
  CHECK(saw_weight);
  CHECK_THROWS_WITH(r.instantiate("per-channel", {{"weight_bits", "5"}}),
                    "backend 'per-channel': option 'weight_bits' = '5' is not one of: 8, 4, 3, 2");
  CHECK_THROWS_WITH(r.instantiate("per-channel", {{"colour", "red"}}),
                    "backend 'per-channel': unknown option 'colour'");
  CHECK_THROWS_WITH(r.instantiate("tpu", {}),
                    "backend 'tpu': no loaded plugin provides it (loaded: arm, per-channel, "
                    "x86-int8)");
}

namespace {

// quant_max of the weight x86-int8's conv rule declares (input 1 of node 0).
std::int64_t conv_weight_quant_max(const Backend& b) {
  for (const auto& rule : b.rules)
    if (rule.pattern.front() == "aten::conv2d")
      for (const auto& a : rule.annotations)
        if (a.edge == in(0, 1)) return a.spec.quant_max;
  FAIL("x86-int8 has no conv2d rule with a weight annotation");
  return -1;
}

}  // namespace

TEST_CASE("x86-int8's target option: auto is resolved from the CPU, avx2 means 7-bit weights") {
  PluginRegistry r;
  r.load_directory(kBundled);
  const LoadedPlugin* x86 = r.find("x86-int8");
  REQUIRE(x86 != nullptr);
  // The default instance is made with this machine's choice, never "auto".
  const std::string chosen = x86->default_options.at("isa");
  const bool vnni_here = cpu_target().int8_isa != Int8Isa::Avx2;
  CHECK(chosen == (vnni_here ? "vnni" : "avx2"));
  CHECK(r.resolve_options("x86-int8", {}) == BackendOptions{{"isa", chosen}});
  CHECK(r.resolve_options("x86-int8", {{"isa", "auto"}}) == BackendOptions{{"isa", chosen}});
  CHECK(r.resolve_options("x86-int8", {{"isa", "vnni"}}) == BackendOptions{{"isa", "vnni"}});
  // Backends without a target option resolve to what was given.
  CHECK(r.resolve_options("arm", {}).empty());

  const auto avx2 = r.instantiate("x86-int8", {{"isa", "avx2"}});
  const auto vnni = r.instantiate("x86-int8", {{"isa", "vnni"}});
  CHECK(conv_weight_quant_max(*avx2) == 63);
  CHECK(conv_weight_quant_max(*vnni) == 127);
  CHECK(rule_hash(*avx2) != rule_hash(*vnni));
  CHECK(conv_weight_quant_max(*x86->backend) == (vnni_here ? 127 : 63));
  CHECK_THROWS_WITH(r.instantiate("x86-int8", {{"isa", "sse"}}),
                    "backend 'x86-int8': option 'isa' = 'sse' is not one of: auto, vnni, avx2");
}

TEST_CASE("qsdk plugins describe x86-int8 -o isa=avx2 and -o isa=vnni differ in weight range") {
  const auto avx2 = test::run_command(kQsdk + " plugins describe x86-int8 -o isa=avx2");
  const auto vnni = test::run_command(kQsdk + " plugins describe x86-int8 -o isa=vnni");
  REQUIRE(avx2.exit_code == 0);
  REQUIRE(vnni.exit_code == 0);
  CHECK(avx2.out.find("# made with options: isa=avx2") == 0);
  CHECK(avx2.out.find("quant_max: 63") != std::string::npos);
  CHECK(vnni.out.find("quant_max: 63") == std::string::npos);
  CHECK(vnni.out.find("quant_max: 127") != std::string::npos);
  // Activations are 8-bit under both.
  CHECK(avx2.out.find("quant_max: 255") != std::string::npos);
}

TEST_CASE("describe YAML parses back into the same rules, for every bundled backend") {
  PluginRegistry r;
  r.load_directory(kBundled);
  for (const auto& p : r.plugins()) {
    CAPTURE(p.backend->name);
    const std::string yaml = backend_to_yaml(*p.backend);
    const Backend back = backend_from_yaml(yaml, "describe");
    CHECK(compare_backends(*p.backend, back).empty());
  }
  // And the comparison notices a change.
  Backend changed = backend_from_yaml(backend_to_yaml(*r.find("arm")->backend), "describe");
  changed.rules[0].annotations[0].spec.quant_max = 127;
  auto diffs = compare_backends(*r.find("arm")->backend, changed);
  REQUIRE(diffs.size() == 1);
  INFO(diffs[0]);
  CHECK(diffs[0].find("~ rule '" + changed.rules[0].name + "' in(0,0): observed uint8 [0, 255] affine") == 0);
  CHECK(diffs[0].find("-> observed uint8 [0, 127] affine") != std::string::npos);
}

TEST_CASE("rule diffs name added and removed rules, and the rule hash follows the rules only") {
  PluginRegistry r;
  r.load_directory(kBundled);
  const Backend& arm = *r.find("arm")->backend;
  Backend changed = backend_from_yaml(backend_to_yaml(arm), "describe");
  CHECK(rule_hash(changed) == rule_hash(arm));
  CHECK(r.find("arm")->rule_hash == rule_hash(arm));
  changed.version = "9.9.9";  // identity is not part of the hash
  CHECK(rule_hash(changed) == rule_hash(arm));
  const std::string removed = changed.rules.back().name;
  changed.rules.pop_back();
  changed.rules.push_back(Rule("silu").match({"aten::silu"}).input(spec::uint8_affine()).output(spec::uint8_affine()));
  CHECK(rule_hash(changed) != rule_hash(arm));
  const auto diffs = compare_backends(arm, changed);
  CHECK(std::find(diffs.begin(), diffs.end(), "~ version: '" + std::string(qsdk::kVersion) + "' -> '9.9.9'") !=
        diffs.end());
  CHECK(std::find(diffs.begin(), diffs.end(), "+ rule 'silu' [aten::silu]") != diffs.end());
  CHECK(std::count_if(diffs.begin(), diffs.end(),
                      [&](const std::string& d) { return d.rfind("- rule '" + removed + "'", 0) == 0; }) == 1);
}

TEST_CASE("conditions round-trip through describe's YAML, and code constraints come back by name, marked as code") {
  Backend b;
  b.name = "round-trip";
  b.version = "1";
  b.homepage = "https://example.com/npu";
  Rule conv("conv2d");
  conv.match({"aten::conv2d"})
      .input(spec::uint8_affine())
      .output(spec::uint8_affine())
      .when(cond::arg("groups").eq(1))
      .when(cond::arg("stride").in({1, 2}))
      .when(cond::input_dim(0, -1).between(1, 4096).or_unknown())
      .when(cond::input_dtype(0).in({"float32", "float16"}))
      .when(cond::input_is_constant(1).eq(true))
      .when(cond::arg("padding_mode").eq("zeros"))
      .require("vendor check", [](const MatchView&) { return true; });
  b.rules = {conv};
  const std::string yaml = backend_to_yaml(b);
  CHECK(yaml.find("code_constraints:  # code: opaque to the host, covered by name only; not portable") !=
        std::string::npos);
  const Backend back = backend_from_yaml(yaml, "describe");
  REQUIRE(back.rules.size() == 1);
  CHECK(back.rules[0].conditions == b.rules[0].conditions);
  CHECK(back.homepage == b.homepage);
  REQUIRE(back.rules[0].constraints.size() == 1);
  CHECK(back.rules[0].constraints[0].name == "vendor check");
  CHECK(backend_to_yaml(back) == yaml);
  CHECK(rule_hash(back) == rule_hash(b));

  // Any change to a condition changes the hash and is named by the diff.
  Backend changed = back;
  changed.rules[0].conditions[0] = cond::arg("groups").eq(2);
  CHECK(rule_hash(changed) != rule_hash(b));
  CHECK(compare_backends(back, changed) ==
        std::vector<std::string>{"~ rule 'conv2d' conditions: [node(0).groups == 1, node(0).stride in {1, 2}, "
                                 "in(0,0).dim[-1] in [1, 4096] (unknown passes), in(0,0).dtype in {float32, float16}, "
                                 "in(0,1).constant == 1, node(0).padding_mode == zeros] -> [node(0).groups == 2, "
                                 "node(0).stride in {1, 2}, in(0,0).dim[-1] in [1, 4096] (unknown passes), "
                                 "in(0,0).dtype in {float32, float16}, in(0,1).constant == 1, node(0).padding_mode == "
                                 "zeros]"});
  // A code constraint is covered by its name only: a new body would not show.
  changed = back;
  changed.rules[0].constraints[0].name = "vendor check v2";
  CHECK(rule_hash(changed) != rule_hash(b));
  CHECK(
      compare_backends(back, changed) ==
      std::vector<std::string>{"~ rule 'conv2d' code constraints (by name only): [vendor check] -> [vendor check v2]"});
}

TEST_CASE("a changed condition shows in plugins diff, the rule hash and qsdk verify") {
  const fs::path v1 = kBroken / "condition_change_1", v2 = kBroken / "condition_change_2";
  const std::string so1 = test::shell_quote((v1 / "libcondition_change_1.so").string());
  const std::string so2 = test::shell_quote((v2 / "libcondition_change_2.so").string());
  const auto diff = test::run_command(kQsdk + " plugins diff " + so1 + " " + so2);
  CHECK(diff.exit_code == 1);
  CHECK(diff.out.find("~ rule 'conv2d' conditions: [node(0).groups == 1] -> [node(0).groups in {1, 2}]") !=
        std::string::npos);
  PluginRegistry r1, r2;
  r1.load_directory(v1);
  r2.load_directory(v2);
  REQUIRE(r1.errors().empty());
  REQUIRE(r2.errors().empty());
  CHECK(r1.plugins()[0].rule_hash != r2.plugins()[0].rule_hash);

  // A model made with version 1, checked against version 2.
  const fs::path out = fs::temp_directory_path() / ("qsdk_condition_verify_" + std::to_string(getpid()));
  fs::remove_all(out);
  const auto made = test::run_command(kQsdk + " --plugin-dir " + test::shell_quote(v1.string()) +
                                      " convert zoo:conv_bn_relu -b npu-conditions --data random --batches 1 " +
                                      "--output " + test::shell_quote(out.string()));
  REQUIRE(made.exit_code == 0);
  const std::string dir = test::shell_quote((out / "npu-conditions").string());
  const auto same = test::run_command(kQsdk + " --plugin-dir " + test::shell_quote(v1.string()) + " verify " + dir);
  CHECK(same.exit_code == 0);
  CHECK(same.out.find("npu-conditions: rules unchanged") != std::string::npos);
  const auto other = test::run_command(kQsdk + " --plugin-dir " + test::shell_quote(v2.string()) + " verify " + dir);
  CHECK(other.exit_code == 1);
  CHECK(other.out.find("npu-conditions: RULES CHANGED since the model was made") != std::string::npos);
  CHECK(other.out.find("conditions: [node(0).groups == 1] -> [node(0).groups in {1, 2}]") != std::string::npos);
  fs::remove_all(out);
}

TEST_CASE("bad describe YAML names file, line and column") {
  CHECK_THROWS_WITH(backend_from_yaml("name: x\nversion: 1\nlowering: [\n", "rules.yaml"),
                    doctest::Contains("rules.yaml:4:1: YAML syntax error"));
  CHECK_THROWS_WITH(backend_from_yaml("name: x\nversion: '1'\nlowering: gpu\nrules: []\n", "rules.yaml"),
                    "rules.yaml:3:11: unknown lowering 'gpu'");
}

TEST_CASE("qsdk plugins list: prints backends, reports each broken plugin, exits 2") {
  auto ok = test::run_command(kQsdk + " plugins list");
  CHECK(ok.exit_code == 0);
  for (const char* name : {"x86-int8", "arm", "per-channel"}) CHECK(ok.out.find(name) != std::string::npos);
  CHECK(ok.out.find("onednn") != std::string::npos);

  auto bad =
      test::run_command(kQsdk + " --plugin-dir " + test::shell_quote((kBroken / "throwing_factory").string()) +
                        " --plugin-dir " + test::shell_quote((kBroken / "abi_mismatch").string()) + " plugins list");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err ==
        "qsdk: error: plugin " + broken_file("throwing_factory").string() +
            ": the plugin's create_backend failed: license server unreachable\n"
            "qsdk: error: plugin " +
            broken_file("abi_mismatch").string() +
            ": ABI version mismatch: plugin was built for qsdk ABI 999, this host supports 2; rebuild the plugin "
            "against this SDK\n");
  for (const char* name : {"x86-int8", "arm", "per-channel"}) CHECK(bad.out.find(name) != std::string::npos);
}

TEST_CASE("QSDK_PLUGIN_PATH is searched before the bundled directory") {
  auto r = test::run_command("QSDK_PLUGIN_PATH=" + test::shell_quote((kBroken / "duplicate_name").string()) + " " +
                             kQsdk + " plugins list");
  CHECK(r.exit_code == 2);
  // The environment's x86-int8 wins; the bundled one is the duplicate.
  CHECK(r.err.find((kBundled / "libqsdk_x86_int8.so").string() + ": backend name 'x86-int8' is already provided by " +
                   broken_file("duplicate_name").string()) != std::string::npos);
}

TEST_CASE("qsdk plugins describe prints YAML that yaml-cpp reads") {
  auto r = test::run_command(kQsdk + " plugins describe x86-int8");
  REQUIRE(r.exit_code == 0);
  YAML::Node doc = YAML::Load(r.out);
  CHECK(doc["name"].as<std::string>() == "x86-int8");
  CHECK(doc["lowering"].as<std::string>() == "onednn");
  CHECK(doc["rules"].size() > 5);
}

namespace {

constexpr fs::perms kMode755 = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec;

// A fresh directory with the given mode under the system temp directory
// (itself world-writable but sticky, which the policy accepts above a
// plugin's own directory).
fs::path fresh_dir(const std::string& name, fs::perms mode = kMode755) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir, mode);
  return dir;
}

fs::path copy_of_arm(const fs::path& dir, const std::string& name = "libqsdk_arm_copy.so") {
  fs::copy_file(kBundled / "libqsdk_arm.so", dir / name);
  fs::permissions(dir / name,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  return dir / name;
}

std::string only_cause(const PluginRegistry& r) {
  REQUIRE(r.errors().size() == 1);
  return r.errors()[0].cause;
}

}  // namespace

TEST_CASE("loading policy: libraries or directories writable by others are refused unless allowed") {
  const fs::path dir =
      fresh_dir("qsdk_unsafe_plugins", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  const fs::path lib = copy_of_arm(dir);
  fs::permissions(lib, fs::perms::owner_all | fs::perms::others_write | fs::perms::others_read);

  PluginRegistry strict;
  CHECK_FALSE(strict.load_file(lib));
  CHECK(only_cause(strict) == "refused: the file " + lib.string() +
                                  " is writable by everyone (mode 0706); chmod go-w " + lib.string() +
                                  ", or pass --allow-unsafe-plugins");

  fs::permissions(lib, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_all);
  PluginRegistry strict_dir;
  CHECK_FALSE(strict_dir.load_file(lib));
  CHECK(only_cause(strict_dir) == "refused: its directory " + dir.string() +
                                      " is writable by its group (mode 0770); chmod go-w " + dir.string() +
                                      ", or pass --allow-unsafe-plugins");

  PluginRegistry allowed;
  allowed.set_allow_unsafe(true);
  CHECK(allowed.load_file(lib));
  const auto r =
      qsdk::test::run_command(qsdk::test::shell_quote(QSDK_TEST_EXE) + " --allow-unsafe-plugins --plugin-dir " +
                              qsdk::test::shell_quote(dir.string()) + " plugins list");
  // Loaded, not refused: it then clashes with the bundled arm by name.
  CHECK(r.err.find("backend name 'arm' is already provided by") != std::string::npos);
  CHECK(r.err.find("refused") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("loading policy: a symlink is judged by its target, and its target's directory") {
  const fs::path unsafe = fresh_dir("qsdk_world_writable_plugins", fs::perms::all);
  const fs::path target = copy_of_arm(unsafe);
  const fs::path safe = fresh_dir("qsdk_symlinked_plugins");
  fs::create_symlink(target, safe / "libqsdk_arm_link.so");

  PluginRegistry r;
  CHECK_FALSE(r.load_file(safe / "libqsdk_arm_link.so"));
  CHECK(only_cause(r) == "refused: it resolves to " + target.string() + ", and its directory " + unsafe.string() +
                             " is writable by its group and everyone (mode 0777); chmod go-w " + unsafe.string() +
                             ", or pass --allow-unsafe-plugins");
  CHECK(r.errors()[0].file == safe / "libqsdk_arm_link.so");
  fs::remove_all(unsafe);
  fs::remove_all(safe);
}

TEST_CASE("loading policy: a sticky world-writable directory is refused as the plugin's own, accepted above it") {
  const fs::path sticky = fresh_dir("qsdk_sticky_plugins", fs::perms::all | fs::perms::sticky_bit);
  const fs::path in_sticky = copy_of_arm(sticky);
  PluginRegistry own;
  CHECK_FALSE(own.load_file(in_sticky));
  CHECK(only_cause(own).find("refused: its directory " + sticky.string() +
                             " is writable by its group and everyone (mode 1777)") == 0);

  // A safe directory of one's own inside it (as under /tmp) is fine: the
  // sticky bit stops others from renaming or removing it.
  fs::create_directory(sticky / "mine");
  fs::permissions(sticky / "mine", kMode755);
  const fs::path safe_lib = copy_of_arm(sticky / "mine");
  PluginRegistry nested;
  CHECK(nested.load_file(safe_lib));
  CHECK(nested.errors().empty());
  CHECK(nested.names() == std::vector<std::string>{"arm"});
  fs::remove_all(sticky);
}

TEST_CASE("loading policy: a library or directory owned by another user is refused") {
  if (geteuid() != 0) {
    MESSAGE("skipped: needs root to give a file to another user (chown)");
    return;
  }
  const passwd* nobody = getpwnam("nobody");
  REQUIRE_MESSAGE(nobody != nullptr, "no user 'nobody' on this system");
  const fs::path dir = fresh_dir("qsdk_foreign_plugins");
  const fs::path lib = copy_of_arm(dir);
  REQUIRE(chown(lib.c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
  PluginRegistry file_owner;
  CHECK_FALSE(file_owner.load_file(lib));
  const std::string uid = std::to_string(nobody->pw_uid);
  CHECK(only_cause(file_owner) == "refused: the file " + lib.string() + " is owned by nobody (uid " + uid +
                                      "), who could replace the code, not by root or the invoking user root (uid "
                                      "0); chown it to root or yourself, or pass --allow-unsafe-plugins");

  REQUIRE(chown(lib.c_str(), 0, 0) == 0);
  REQUIRE(chown(dir.c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
  PluginRegistry dir_owner;
  CHECK_FALSE(dir_owner.load_file(lib));
  CHECK(only_cause(dir_owner).find("refused: its directory " + dir.string() + " is owned by nobody (uid " + uid +
                                   ")") == 0);

  REQUIRE(chown(dir.c_str(), 0, 0) == 0);
  PluginRegistry owned_by_root;
  CHECK(owned_by_root.load_file(lib));
  fs::remove_all(dir);
}

TEST_CASE("a library for another architecture, or one dlopen refuses, is reported truthfully") {
  const fs::path dir = fresh_dir("qsdk_foreign_arch_plugins");
  const fs::path lib = copy_of_arm(dir);
  {
    // e_machine (bytes 18-19, little-endian): aarch64 (183) on x86-64 hosts, x86-64 (62) elsewhere.
    std::fstream f(lib, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(18);
#if defined(__x86_64__)
    const char machine[2] = {char(183), 0};
#else
    const char machine[2] = {char(62), 0};
#endif
    f.write(machine, 2);
  }
  PluginRegistry r;
  CHECK_FALSE(r.load_file(lib));
#if defined(__x86_64__)
  CHECK(only_cause(r) == "wrong architecture: built for aarch64, this host is x86-64");
#else
  CHECK(only_cause(r).find("wrong architecture: built for x86-64") == 0);
#endif

  // A valid ELF header on a cut-off file: dlopen's own reason, not "No such file".
  fs::copy_file(kBundled / "libqsdk_arm.so", dir / "full.so");
  {
    std::ifstream full(dir / "full.so", std::ios::binary);
    char header[64];
    full.read(header, 64);
    std::ofstream cut(lib, std::ios::binary | std::ios::trunc);
    cut.write(header, 64);
  }
  PluginRegistry cut;
  CHECK_FALSE(cut.load_file(lib));
  const std::string cause = only_cause(cut);
  CHECK(cause.find("cannot load shared library: ") == 0);
  CHECK(cause.find(lib.string()) != std::string::npos);  // dlerror names the file
  CHECK(cause.find("No such file") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("plugins are never loaded from the current directory implicitly") {
  const fs::path dir = fs::temp_directory_path() / "qsdk_cwd_plugins";
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                           fs::perms::others_exec);
  fs::copy_file(QSDK_TEST_BROKEN_PLUGIN_DIR "/throwing_factory/libthrowing_factory.so", dir / "libplanted.so");
  // An empty QSDK_PLUGIN_PATH entry would mean "." in PATH's convention.
  const auto r = qsdk::test::run_command("cd " + qsdk::test::shell_quote(dir.string()) + " && QSDK_PLUGIN_PATH=':' " +
                                         qsdk::test::shell_quote(QSDK_TEST_EXE) + " plugins list");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("planted") == std::string::npos);
  CHECK(r.err.find("planted") == std::string::npos);
  fs::remove_all(dir);
}

namespace {

const fs::path kFaulty = QSDK_TEST_FAULTY_PLUGIN_DIR;

fs::path faulty_file(const std::string& fault) { return kFaulty / fault / ("libfaulty_" + fault + ".so"); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("qsdk plugins list: a library whose constructor aborts, hangs or exits is one error line, probed once") {
  const fs::path cache = fresh_dir("qsdk_probe_cache");
  // The bundled plugins are qsdk's own and never probed, so a busy machine
  // cannot make them miss the short limit below.
  const std::string with_cache = "XDG_CACHE_HOME=" + test::shell_quote(cache.string());
  // Long enough for a probe child to start and abort, short for a test.
  const std::string command =
      with_cache + " QSDK_PLUGIN_PROBE_TIMEOUT=5 QSDK_PLUGIN_PATH=" +
      test::shell_quote((kFaulty / "constructor_abort").string() + ":" + (kFaulty / "constructor_hang").string() + ":" +
                        (kFaulty / "constructor_exit").string()) +
      " " + kQsdk + " plugins list";
  const std::vector<std::string> expected_errors = {
      "qsdk: error: plugin " + faulty_file("constructor_abort").string() +
          ": loading it crashed a probe process (killed by signal 6 (Aborted)): a constructor, the ABI check or the "
          "factory fails; not loaded",
      "qsdk: error: plugin " + faulty_file("constructor_hang").string() +
          ": loading it did not finish within 5 s in a probe process (a constructor or the factory hangs; "
          "QSDK_PLUGIN_PROBE_TIMEOUT sets the limit); not loaded",
      "qsdk: error: plugin " + faulty_file("constructor_exit").string() +
          ": loading it ended a probe process (exit code 0): a constructor, the ABI check or the factory fails; "
          "not loaded"};
  // The first run probes each library; the second answers from the cache,
  // with the same result (a timeout is probed again: it is not cached).
  for (const char* round : {"probed", "cached"}) {
    CAPTURE(round);
    const auto r = test::run_command(command);
    CHECK(r.exit_code == 2);  // as for any bad plugin
    CHECK(lines_of(r.err) == expected_errors);
    for (const char* name : {"x86-int8", "arm", "per-channel"}) CHECK(r.out.find(name) != std::string::npos);
    CHECK(r.out.find("faulty") == std::string::npos);
  }
  // One verdict for each crashing library; none for the hang (not cached),
  // none for the bundled ones (not probed).
  CHECK(std::distance(fs::directory_iterator(cache / "qsdk" / "plugin-probes"), fs::directory_iterator()) == 2);

  // Other commands go on with the healthy plugins (a warning, not an error).
  const auto annotate = test::run_command(command.substr(0, command.size() - std::string(" plugins list").size()) +
                                          " annotate zoo:conv_bn_relu -b arm");
  CHECK(annotate.exit_code == 0);
  CHECK(annotate.err.find("qsdk: warning: plugin " + faulty_file("constructor_abort").string()) != std::string::npos);
  fs::remove_all(cache);
}

TEST_CASE("an unwritable cache directory means probing without a cache, QSDK_PLUGIN_PROBE_TIMEOUT is checked") {
  const auto r = test::run_command(
      "XDG_CACHE_HOME=/proc/qsdk-no-such-cache "
      "QSDK_PLUGIN_PATH=" +
      test::shell_quote((kFaulty / "constructor_abort").string()) + " " + kQsdk + " plugins list");
  CHECK(r.exit_code == 2);
  CHECK(lines_of(r.err).size() == 1);
  CHECK(r.err.find("killed by signal 6") != std::string::npos);
  CHECK(r.out.find("x86-int8") != std::string::npos);

  const auto bad = test::run_command("QSDK_PLUGIN_PROBE_TIMEOUT=1e10 " + kQsdk + " plugins list");
  CHECK(bad.exit_code == 2);
  CHECK(bad.err ==
        "qsdk: error: QSDK_PLUGIN_PROBE_TIMEOUT: '1e10' is not a number of seconds in [0, 3600] (0 turns probing "
        "off)\n");
}

TEST_CASE("a plugin declaring more rules than a backend may have is refused before its rules are hashed") {
  const auto r = test::run_command("QSDK_PLUGIN_PATH=" + test::shell_quote((kFaulty / "too_many_rules").string()) +
                                   " " + kQsdk + " plugins list");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("backend 'faulty-too-many-rules' declares 5000 rules, more than the 4096 a backend may have") !=
        std::string::npos);
  CHECK(r.out.find("arm") != std::string::npos);  // the others load
}

TEST_CASE("an engine's failure crosses the C boundary as its message, and the plugin stays loaded") {
  PluginRegistry r;
  r.load_directory(kBroken / "throwing_engine");
  REQUIRE(r.errors().empty());
  const auto backend = r.instantiate("broken", {});
  REQUIRE(backend->engine);
  EngineModel model;
  model.outputs = {"y"};
  CHECK_THROWS_WITH(backend->engine(model, {}), "NPU firmware timeout");
  // Called again: the status was released, nothing leaked into the next call.
  CHECK_THROWS_WITH(backend->engine(model, {}), "NPU firmware timeout");
}

TEST_CASE("the declared arithmetic is printed, read back, compared and hashed") {
  PluginRegistry r;
  r.load_directory(kBundled);
  const Backend x86 = *r.instantiate("x86-int8", {});
  const std::string yaml = backend_to_yaml(x86);
  CHECK(yaml.find("arithmetic: {rounding: half_to_even, multiplier: float32, accumulator_bits: 32") !=
        std::string::npos);
  Backend changed = backend_from_yaml(yaml, "x86.yaml");
  CHECK(changed.arithmetic == x86.arithmetic);
  changed.arithmetic.multiplier = Multiplier::Gemmlowp;
  changed.arithmetic.accumulator_bits = 24;
  const auto diff = compare_backends(x86, changed);
  CHECK(std::find(diff.begin(), diff.end(), "~ arithmetic multiplier: float32 -> gemmlowp") != diff.end());
  CHECK(std::find(diff.begin(), diff.end(), "~ arithmetic accumulator_bits: 32 -> 24") != diff.end());
  CHECK(rule_hash(changed) != rule_hash(x86));
  // An engine runs models; it does not change what they become.
  Backend with_engine = x86;
  with_engine.engine = [](const EngineModel&, const std::vector<EngineTensor>&) { return EngineResult{}; };
  CHECK(rule_hash(with_engine) == rule_hash(x86));
  CHECK_THROWS_WITH_AS(
      backend_from_yaml("name: b\nversion: '1'\nlowering: reference\narithmetic: {rounding: up}\nrules: []\n",
                        "b.yaml"),
      doctest::Contains("unknown rounding 'up'"), InputError);
}
