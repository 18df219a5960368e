#include "support/pipeline_fixture.h"

#include "annotate/annotator.h"
#include "data/data_source.h"

namespace qsdk::test {

const PluginRegistry& bundled_plugins() {
  static PluginRegistry registry = [] {
    PluginRegistry r;
    r.load_directory(QSDK_TEST_BUNDLED_PLUGIN_DIR);
    return r;
  }();
  return registry;
}

Converted convert_zoo(const std::string& model, const std::string& backend, const BackendOptions& options) {
  Converted c;
  c.captured = capture_model("zoo:" + model);
  c.float_out = c.captured.graph->run(c.captured.example_inputs);
  const auto b = bundled_plugins().instantiate(backend, options);
  const auto annotation = annotate(*c.captured.graph, *b);
  c.prepared = std::make_unique<PreparedModel>(*c.captured.graph, annotation);
  CalibrationConfig config;
  config.batches = 3;
  config.batch_size = 4;
  auto source = open_data_source(config, c.captured.inputs);
  for (std::size_t i = 0; i < source->num_batches(); ++i) c.prepared->calibrate(source->batch(i).inputs);
  c.prepared->calibrate(c.captured.example_inputs);
  c.summary = convert_to_reference(*c.prepared);
  return c;
}

}  // namespace qsdk::test
