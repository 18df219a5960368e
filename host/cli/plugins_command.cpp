// qsdk plugins list | describe NAME
#include <iomanip>
#include <iostream>

#include "cli/cli_support.h"
#include "common/error.h"
#include "plugins/backend_yaml.h"
#include "plugins/plugin_registry.h"

namespace qsdk::cli {
namespace {

int exit_code(const PluginRegistry& registry) { return registry.errors().empty() ? kExitOk : kExitBadInput; }

int list_plugins(const GlobalOptions& global) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/true);
  const char* headers[] = {"NAME", "VERSION", "VENDOR", "LOWERING", "RULES", "FILE"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : registry.plugins())
    rows.push_back({p.backend->name, p.backend->version, p.backend->vendor, to_string(p.backend->lowering),
                    std::to_string(p.backend->rules.size()), p.file.string()});
  std::vector<std::size_t> width(6);
  for (std::size_t c = 0; c < 6; ++c) {
    width[c] = std::string(headers[c]).size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto print_row = [&](auto get) {
    for (std::size_t c = 0; c < 6; ++c)
      std::cout << std::left << std::setw(c + 1 < 6 ? int(width[c] + 2) : 0) << get(c);
    std::cout << "\n";
  };
  print_row([&](std::size_t c) { return std::string(headers[c]); });
  for (const auto& r : rows) print_row([&](std::size_t c) { return r[c]; });
  if (rows.empty()) std::cout << "(no plugins found)\n";
  return exit_code(registry);
}

int describe_plugin(const GlobalOptions& global, const std::string& name, const std::vector<std::string>& raw_options) {
  const auto registry = load_plugins(global, /*failures_are_errors=*/true);
  const auto backend = registry.instantiate(name, parse_backend_options(raw_options));
  std::cout << backend_to_yaml(*backend);
  return exit_code(registry);
}

}  // namespace

void add_plugins_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto* plugins = app.add_subcommand("plugins", "List backend plugins or print one's rules");
  plugins->require_subcommand(1);

  auto* list = plugins->add_subcommand(
      "list",
      "Print name, version, vendor, lowering target, rule count and file of every loadable backend. "
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
}

}  // namespace qsdk::cli
