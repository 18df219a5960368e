// Subcommands of the qsdk executable. Each registers itself on the CLI11
// app and returns the exit code through `result`.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace qsdk::cli {

// Options every subcommand shares.
struct GlobalOptions {
  std::vector<std::filesystem::path> plugin_dirs;  // --plugin-dir, repeatable
  bool verbose = false;
  bool allow_unsafe_plugins = false;  // --allow-unsafe-plugins
};

// Each returns a callback the app runs when that subcommand was chosen.
void add_plugins_command(CLI::App& app, GlobalOptions& global, int& result);
void add_inspect_command(CLI::App& app, GlobalOptions& global, int& result);
void add_annotate_command(CLI::App& app, GlobalOptions& global, int& result);
void add_calibrate_command(CLI::App& app, GlobalOptions& global, int& result);
void add_convert_command(CLI::App& app, GlobalOptions& global, int& result);
void add_run_command(CLI::App& app, GlobalOptions& global, int& result);
void add_verify_command(CLI::App& app, GlobalOptions& global, int& result);
void add_conformance_command(CLI::App& app, GlobalOptions& global, int& result);
void add_sensitivity_command(CLI::App& app, GlobalOptions& global, int& result);

}  // namespace qsdk::cli
