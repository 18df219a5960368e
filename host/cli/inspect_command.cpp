// qsdk inspect MODEL [--input-shape S]... [--dot FILE] [--svg FILE]
#include <iostream>

#include "capture/capture.h"
#include "capture/zoo/zoo.h"
#include "cli/cli_support.h"
#include "cli/commands.h"
#include "graph/graph_drawing.h"
#include "inspect/inspect.h"

namespace qsdk::cli {
namespace {

struct InspectArgs {
  std::string model;
  std::vector<std::string> input_shapes;
  std::string dot_file;
  std::string svg_file;
  bool list_zoo = false;
};

int run_inspect(const InspectArgs& args) {
  if (args.list_zoo || args.model.empty()) {
    for (const auto& z : zoo::zoo_models()) std::cout << "zoo:" << z.name << "  " << z.description << "\n";
    return 0;
  }
  CaptureOptions options;
  options.inputs = parse_inputs(args.input_shapes);
  const auto captured = capture_model(args.model, options);
  // Render files first: a failure there must not leave a half-printed report.
  const bool want_pictures = !args.dot_file.empty() || !args.svg_file.empty();
  const std::string dot = want_pictures ? graph_to_dot(*captured.graph) : std::string();
  if (!args.dot_file.empty()) write_dot(dot, args.dot_file);
  if (!args.svg_file.empty()) write_svg(dot, args.svg_file);
  std::cout << describe_graph(*captured.graph);
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, GlobalOptions& /*global*/, int& result) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd =
      app.add_subcommand("inspect",
                         "Capture a model and show its canonical graph: op histogram, nodes with ids, module paths "
                         "and shapes; optionally a Graphviz picture. Without MODEL, lists the zoo.");
  cmd->add_option("model", args->model, "zoo:<name> or a TorchScript file (.pt)");
  add_input_option(*cmd, args->input_shapes);
  cmd->add_option("--dot", args->dot_file, "Write the graph as Graphviz DOT to FILE")->type_name("FILE");
  cmd->add_option("--svg", args->svg_file, "Render the graph to an SVG picture at FILE (needs graphviz)")
      ->type_name("FILE");
  cmd->add_flag("--list-zoo", args->list_zoo, "List the built-in zoo models and exit");
  cmd->callback([args, &result] { result = run_inspect(*args); });
}

}  // namespace qsdk::cli
