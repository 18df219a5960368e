// qsdk calibrate MODEL -b BACKEND [--data SRC] [--batches N] [--batch-size B] [--seed S]
//                [--observer KIND] [--save-stats FILE] [--load-stats FILE] [--json FILE]
#include <fstream>
#include <iostream>
#include <sstream>

#include "calibrate/data_source.h"
#include "calibrate/progress.h"
#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "prepare/prepare.h"
#include "prepare/qparams_report.h"

namespace qsdk::cli {
namespace {

struct CalibrateArgs {
  ModelArgs model;
  CalibrationConfig data;
  std::string observer;
  std::string save_stats;
  std::string load_stats;
  std::string json_file;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_calibrate(const GlobalOptions& global, const CalibrateArgs& args) {
  auto m = capture_and_annotate(global, args.model);
  PreparedModel prepared(*m.captured.graph, m.annotation);
  if (!args.observer.empty()) {
    ObserverKind kind{};
    if (!parse(args.observer, kind)) throw InputError("--observer " + args.observer, "unknown observer kind");
    prepared.override_activation_observer(kind);
  }
  if (!args.load_stats.empty()) {
    prepared.load_stats(read_file(args.load_stats), args.load_stats);
  } else {
    std::vector<std::vector<std::int64_t>> shapes;
    for (const auto& t : m.captured.example_inputs) shapes.push_back(t.sizes().vec());
    const auto source = open_data_source(args.data, shapes);
    Progress progress("calibrating", source->num_batches());
    for (std::size_t i = 0; i < source->num_batches(); ++i) {
      prepared.calibrate(source->batch(i).inputs);
      progress.step();
    }
    progress.finish();
  }
  if (!args.save_stats.empty()) write_file_atomically(args.save_stats, prepared.save_stats());
  if (!args.json_file.empty()) write_file_atomically(args.json_file, qparams_json(prepared));
  std::cout << qparams_table(prepared);
  return kExitOk;
}

}  // namespace

void add_calibrate_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto args = std::make_shared<CalibrateArgs>();
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Capture, annotate and prepare a model (observers where the rules say), run calibration data through it, "
      "and print the qparams each observer computes.");
  args->model.add_to(*cmd);
  cmd->add_option("--data", args->data.source, "Calibration data: mnist, random, or a tensor file/directory")
      ->capture_default_str();
  cmd->add_option("--batches", args->data.batches, "Number of batches")->capture_default_str();
  cmd->add_option("--batch-size", args->data.batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--seed", args->data.seed, "Seed for data order and random data")->capture_default_str();
  cmd->add_option("--observer", args->observer,
                  "Replace the activation observers: minmax, moving_average_minmax, histogram_percentile, "
                  "histogram_entropy, mse");
  cmd->add_option("--save-stats", args->save_stats, "Save the observed statistics to FILE (JSON)")->type_name("FILE");
  cmd->add_option("--load-stats", args->load_stats, "Use statistics saved earlier instead of calibrating")
      ->type_name("FILE");
  cmd->add_option("--json", args->json_file, "Write the qparams as JSON")->type_name("FILE");
  cmd->callback([&global, &result, args] { result = run_calibrate(global, *args); });
}

}  // namespace qsdk::cli
