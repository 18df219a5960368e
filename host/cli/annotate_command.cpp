// qsdk annotate MODEL --backend NAME [--backend NAME2] [--overrides FILE] [--json FILE] [--svg FILE]
#include <iostream>

#include "annotate/report.h"
#include "cli/cli_support.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "graph/graph_drawing.h"

namespace qsdk::cli {
namespace {

struct AnnotateArgs {
  ModelArgs model;
  std::string json_file;
  std::string svg_file;
  std::string dot_file;
};

int run_annotate(const GlobalOptions& global, const AnnotateArgs& args) {
  const auto m = capture_and_annotate(global, args.model);
  const Graph& g = *m.captured.graph;
  if (!args.json_file.empty()) write_file_atomically(args.json_file, annotation_json(g, m.annotation));
  if (!args.dot_file.empty()) write_dot(annotation_dot(g, m.annotation), args.dot_file);
  if (!args.svg_file.empty()) write_svg(annotation_dot(g, m.annotation), args.svg_file);
  std::cout << annotation_table(g, m.annotation);
  return kExitOk;
}

}  // namespace

void add_annotate_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto args = std::make_shared<AnnotateArgs>();
  auto* cmd = app.add_subcommand(
      "annotate",
      "Capture a model and annotate it with backend rules: for every op, the rule that matched or why none did. "
      "Several --backend flags compose: each later backend annotates only what earlier ones left.");
  args->model.add_to(*cmd);
  cmd->add_option("--json", args->json_file, "Write the annotation report as JSON")->type_name("FILE");
  cmd->add_option("--svg", args->svg_file, "Draw the graph coloured by quantized / float (needs graphviz)")
      ->type_name("FILE");
  cmd->add_option("--dot", args->dot_file, "Write that drawing as Graphviz DOT")->type_name("FILE");
  cmd->callback([&global, &result, args] { result = run_annotate(global, *args); });
}

}  // namespace qsdk::cli
