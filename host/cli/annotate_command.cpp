// qsdk annotate MODEL --backend NAME [--backend NAME2] [--overrides FILE] [--json FILE] [--svg FILE]
#include <iostream>

#include "annotate/annotator.h"
#include "annotate/report.h"
#include "capture/capture.h"
#include "cli/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "inspect/inspect.h"
#include "plugins/plugin_registry.h"

namespace qsdk::cli {
namespace {

struct AnnotateArgs {
  std::string model;
  std::vector<std::string> input_shapes;
  std::vector<std::string> backends;
  std::vector<std::string> options;
  std::string overrides_file;
  std::string json_file;
  std::string svg_file;
  std::string dot_file;
};

int run_annotate(const GlobalOptions& global, const AnnotateArgs& args) {
  PluginRegistry registry;
  for (const auto& dir : plugin_search_path(global.plugin_dirs, {})) {
    if (dir == bundled_plugin_dir() && !std::filesystem::exists(dir)) continue;
    registry.load_directory(dir);
  }
  for (const auto& e : registry.errors()) std::cerr << "qsdk: warning: plugin " << e.message() << "\n";

  BackendOptions backend_options;
  for (const auto& kv : args.options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--option " + kv, "expected KEY=VALUE");
    backend_options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // Options go to the first backend; a composition's later backends use their defaults.
  std::vector<std::shared_ptr<const Backend>> backends;
  for (std::size_t i = 0; i < args.backends.size(); ++i)
    backends.push_back(registry.instantiate(args.backends[i], i == 0 ? backend_options : BackendOptions{}));

  AnnotateOptions options;
  if (!args.overrides_file.empty()) options.overrides = load_overrides_file(args.overrides_file);

  CaptureOptions capture_options;
  for (const auto& s : args.input_shapes) capture_options.input_shapes.push_back(parse_shape(s));
  const auto captured = capture_model(args.model, capture_options);

  std::optional<Annotation> annotation;
  for (const auto& b : backends)
    annotation = annotate(*captured.graph, *b, options, annotation ? &*annotation : nullptr);

  if (!args.json_file.empty()) write_file_atomically(args.json_file, annotation_json(*captured.graph, *annotation));
  if (!args.dot_file.empty()) write_dot(annotation_dot(*captured.graph, *annotation), args.dot_file);
  if (!args.svg_file.empty()) write_svg(annotation_dot(*captured.graph, *annotation), args.svg_file);
  std::cout << annotation_table(*captured.graph, *annotation);
  return kExitOk;
}

}  // namespace

void add_annotate_command(CLI::App& app, GlobalOptions& global, int& result) {
  auto args = std::make_shared<AnnotateArgs>();
  auto* cmd = app.add_subcommand(
      "annotate",
      "Capture a model and annotate it with backend rules: for every op, the rule that matched or why none did. "
      "Several --backend flags compose: each later backend annotates only what earlier ones left.");
  cmd->add_option("model", args->model, "zoo:<name> or a TorchScript file (.pt)")->required();
  cmd->add_option("-b,--backend", args->backends, "Backend name (repeatable, composed in order)")->required();
  cmd->add_option("--input-shape", args->input_shapes, "Shape of one model input, e.g. 1,3,224,224 (files)")
      ->type_name("SHAPE");
  cmd->add_option("-o,--option", args->options, "Option KEY=VALUE for the first backend; repeatable");
  cmd->add_option("--overrides", args->overrides_file,
                  "YAML file with an overrides list (or a config with an `overrides:` key)")
      ->type_name("FILE");
  cmd->add_option("--json", args->json_file, "Write the annotation report as JSON")->type_name("FILE");
  cmd->add_option("--svg", args->svg_file, "Draw the graph coloured by quantized / float (needs graphviz)")
      ->type_name("FILE");
  cmd->add_option("--dot", args->dot_file, "Write that drawing as Graphviz DOT")->type_name("FILE");
  cmd->callback([&global, &result, args] { result = run_annotate(global, *args); });
}

}  // namespace qsdk::cli
