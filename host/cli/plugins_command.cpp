// qsdk plugins list | describe NAME | diff A B
#include <iomanip>
#include <iostream>

#include "cli/cli_support.h"
#include "common/error.h"
#include "plugins/backend_yaml.h"
#include "plugins/compatibility.h"
#include "plugins/plugin_registry.h"
#include "target/cpu_target.h"

namespace qsdk::cli {
namespace {

int exit_code(const PluginRegistry& registry) { return registry.errors().empty() ? kExitOk : kExitBadInput; }

int list_plugins(const GlobalOptions& global) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/true);
  constexpr std::size_t kColumns = 8;
  const char* headers[kColumns] = {"NAME", "VERSION", "VENDOR", "LOWERING", "RULES", "ABI", "RULE HASH", "FILE"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : registry.plugins())
    rows.push_back({p.backend->name, p.backend->version, p.backend->vendor, to_string(p.backend->lowering),
                    std::to_string(p.backend->rules.size()),
                    std::to_string(p.abi_version) + "." + std::to_string(p.abi_minor), p.rule_hash.substr(0, 12),
                    p.file.string()});
  std::vector<std::size_t> width(kColumns);
  for (std::size_t c = 0; c < kColumns; ++c) {
    width[c] = std::string(headers[c]).size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto print_row = [&](auto get) {
    for (std::size_t c = 0; c < kColumns; ++c)
      std::cout << std::left << std::setw(c + 1 < kColumns ? int(width[c] + 2) : 0) << get(c);
    std::cout << "\n";
  };
  print_row([&](std::size_t c) { return std::string(headers[c]); });
  for (const auto& r : rows) print_row([&](std::size_t c) { return r[c]; });
  if (rows.empty()) std::cout << "(no plugins found)\n";
  return exit_code(registry);
}

int describe_plugin(const GlobalOptions& global, const std::string& name, const std::vector<std::string>& raw_options) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/true);
  const auto options = registry.resolve_options(name, parse_backend_options(raw_options));
  const auto backend = registry.instantiate(name, options);
  // A comment, so the output still reads back as describe YAML (plugins diff).
  if (!options.empty()) {
    std::cout << "# made with options:";
    for (const auto& [key, value] : options) std::cout << " " << key << "=" << value;
    if (options.count(kTargetOptionName))
      std::cout << " (this CPU: int8 " << to_string(cpu_target().int8_isa) << ", onednn ISA " << cpu_target().onednn_isa
                << ")";
    std::cout << "\n";
  }
  std::cout << backend_to_yaml(*backend);
  return exit_code(registry);
}

int diff_plugins(const GlobalOptions& global, const std::string& a, const std::string& b) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/false);
  std::shared_ptr<PluginRegistry> keep_a, keep_b;
  const auto first = resolve_backend(registry, a, keep_a);
  const auto second = resolve_backend(registry, b, keep_b);
  const auto diffs = compare_backends(*first, *second);
  for (const auto& d : diffs) std::cout << d << "\n";
  std::cout << (diffs.empty() ? "same rules" : std::to_string(diffs.size()) + " differences") << " (rule hash "
            << rule_hash(*first).substr(0, 12) << " vs " << rule_hash(*second).substr(0, 12) << ")\n";
  return diffs.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_plugins_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto* plugins = app.add_subcommand("plugins", "List backend plugins, print one's rules, or compare two rule sets");
  plugins->require_subcommand(1);

  auto* list = plugins->add_subcommand(
      "list",
      "Print name, version, vendor, lowering target, rule count, ABI revision the plugin was built against, rule "
      "hash and file of every loadable backend. "
      "Exits 2 if any plugin failed to load (each failure is printed on stderr).");
  list->callback([&] { result = list_plugins(global); });

  auto* describe = plugins->add_subcommand("describe", "Print a backend's whole rule set as YAML");
  struct DescribeArgs {
    std::string name;
    std::vector<std::string> options;
  };
  auto args = std::make_shared<DescribeArgs>();  // outlives parsing: owned by the callback
  describe->add_option("name", args->name, "Backend name, as in `plugins list`")->required();
  describe->add_option("-o,--option", args->options, "Backend option KEY=VALUE (e.g. weight_bits=4); repeatable");
  describe->callback([&global, &result, args] { result = describe_plugin(global, args->name, args->options); });

  auto* diff = plugins->add_subcommand(
      "diff",
      "Rule-by-rule differences between two backends: each a loaded backend name, a plugin library (.so) or a "
      "rules YAML file from `plugins describe` (to compare two versions of one plugin). Exit 0 same, 1 different.");
  auto pair = std::make_shared<std::pair<std::string, std::string>>();
  diff->add_option("a", pair->first, "First backend: NAME, FILE.so or FILE.yaml")->required();
  diff->add_option("b", pair->second, "Second backend: NAME, FILE.so or FILE.yaml")->required();
  diff->callback([&global, &result, pair] { result = diff_plugins(global, pair->first, pair->second); });
}

}  // namespace qsdk::cli
