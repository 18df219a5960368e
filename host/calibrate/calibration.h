// Calibration: every batch of a data source through a prepared model, so
// its observers see the data. Returns what the run used, for manifests.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace qsdk {

class DataSource;
class PreparedModel;

struct CalibrationRun {
  std::string fingerprint;              // SHA-1 over every input batch, in order
  std::vector<at::Tensor> first_batch;  // for measuring SQNR on data like the calibration data
};

// Feeds every batch of `source` to `prepared`, with a progress bar on
// stderr when `progress`.
CalibrationRun calibrate(PreparedModel& prepared, const DataSource& source, bool progress = true);

}  // namespace qsdk
