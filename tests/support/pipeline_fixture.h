// The pipeline up to convert, for tests of convert and later stages:
// capture a zoo model, annotate with a bundled backend, prepare, calibrate
// on 3 random batches of 4 plus the example input, convert to reference Q/DQ.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "convert/convert.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"
#include "support/torch_doctest.h"

namespace qsdk::test {

// The bundled plugins, loaded once.
const PluginRegistry& bundled_plugins();

struct Converted {
  CapturedModel captured;
  std::vector<at::Tensor> float_out;  // the float graph's output on the example input
  std::unique_ptr<PreparedModel> prepared;
  ConversionSummary summary;
};

Converted convert_zoo(const std::string& model, const std::string& backend, const BackendOptions& options = {});

}  // namespace qsdk::test
