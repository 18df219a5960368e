// qsdk: the host executable. A thin CLI over the qsdk_host library.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <new>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/error_report.h"
#include "common/interrupt.h"
#include "common/threads.h"
#include "plugins/plugin_probe.h"
#include "qsdk/version.h"

int main(int argc, char** argv) {
  using namespace qsdk;
  // A plugin probe child (plugins/plugin_probe.h), not a user command.
  if (argc == 3 && std::string(argv[1]) == kProbePluginArgument) return run_plugin_probe_child(argv[2]);
  interrupt::install_handlers();
  CLI::App app{
      "qsdk: quantize models with backend plugins and check the results against conformance specs.\n"
      "Exit codes: 0 success, 1 a check failed, 2 bad input (config, model, plugin, data), 3 internal error "
      "(a bug: please report it)."};
  app.name("qsdk");
  app.require_subcommand(1);
  // Global options are accepted after the subcommand too
  // (`qsdk plugins list --plugin-dir D`), as people type them.
  app.fallthrough();
  app.set_version_flag("--version", std::string("qsdk ") + kVersion);

  cli::GlobalOptions global;
  app.add_option("--plugin-dir", global.plugin_dirs,
                 "Directory to load backend plugins from; repeatable, searched before QSDK_PLUGIN_PATH, a run "
                 "config's plugins.search_paths and the bundled plugins")
      ->type_name("DIR");
  app.add_flag("-v,--verbose", global.verbose, "Say more: plugin directories searched and files loaded");
  app.add_flag("--allow-unsafe-plugins", global.allow_unsafe_plugins,
               "Load plugins even when the library or its directory is writable by users other than its owner "
               "(refused by default: loading a library runs its code)");
  int threads = 0;
  app.add_option("--threads", threads,
                 "Threads for LibTorch kernels (default: OMP_NUM_THREADS if set, else every logical CPU)")
      ->type_name("N");
  std::uint64_t memory_budget_mb = 0;
  app.add_option("--memory-budget", memory_budget_mb,
                 "Largest model, example input or calibration batch qsdk accepts, in MB (default: half of this "
                 "machine's memory; env QSDK_MEMORY_BUDGET_MB)")
      ->type_name("MB")
      ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 40));
  app.parse_complete_callback([&threads, &memory_budget_mb] {
    configure_compute_threads(threads);
    if (memory_budget_mb) setenv("QSDK_MEMORY_BUDGET_MB", std::to_string(memory_budget_mb).c_str(), 1);
  });

  int result = kExitOk;
  cli::add_run_command(app, global, result);
  cli::add_sensitivity_command(app, global, result);
  cli::add_plugins_command(app, global, result);
  cli::add_inspect_command(app, global, result);
  cli::add_annotate_command(app, global, result);
  cli::add_calibrate_command(app, global, result);
  cli::add_convert_command(app, global, result);
  cli::add_verify_command(app, global, result);
  cli::add_conformance_command(app, global, result);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  } catch (const std::exception& e) {
    const char* debug = std::getenv("QSDK_DEBUG");
    return report_failure(e, std::cerr, debug && *debug);
  }
  return result;
}
