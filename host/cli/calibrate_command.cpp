// qsdk calibrate MODEL -b BACKEND [--data SRC] [--batches N] [--batch-size B] [--seed S]
//                [--observer KIND] [--save-stats FILE] [--load-stats FILE] [--json FILE]
#include <iostream>

#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "pipeline/graph_records.h"
#include "pipeline/measurements_json.h"
#include "prepare/prepare.h"
#include "prepare/qparams_report.h"

namespace qsdk::cli {
namespace {

struct CalibrateArgs {
  ModelArgs model;
  CalibrationArgs calibration;
  std::string save_stats;
  std::string json_file;
};

int run_calibrate(const GlobalOptions& global, const CalibrateArgs& args) {
  auto m = capture_and_annotate(global, args.model);
  PreparedModel prepared(*m.captured.graph, m.annotation);
  calibrate_prepared(prepared, m.captured, args.calibration);
  if (!args.save_stats.empty()) write_file_atomically(args.save_stats, prepared.save_stats());
  if (!args.json_file.empty())
    write_file_atomically(args.json_file, qparams_json(qparams_records(prepared)).dump(2) + "\n");
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
  args->calibration.add_to(*cmd);
  cmd->add_option("--save-stats", args->save_stats, "Save the observed statistics to FILE (JSON)")->type_name("FILE");
  cmd->add_option("--json", args->json_file, "Write the qparams as JSON")->type_name("FILE");
  cmd->callback([&global, &result, args] { result = run_calibrate(global, *args); });
}

}  // namespace qsdk::cli
