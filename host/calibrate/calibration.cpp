#include "calibrate/calibration.h"

#include <optional>

#include "common/fingerprint.h"
#include "common/progress.h"
#include "data/data_source.h"
#include "prepare/prepare.h"

namespace qsdk {

CalibrationRun calibrate(PreparedModel& prepared, const DataSource& source, bool progress) {
  std::optional<Progress> bar;
  if (progress) bar.emplace("calibrating", source.num_batches());
  CalibrationRun run;
  Fingerprint data;
  for (std::size_t i = 0; i < source.num_batches(); ++i) {
    auto batch = source.batch(i).inputs;
    for (const auto& t : batch) {
      const auto c = t.contiguous();
      data.add(c.data_ptr(), c.nbytes());
    }
    prepared.calibrate(batch);
    if (i == 0) run.first_batch = std::move(batch);
    if (bar) bar->step();
  }
  if (bar) bar->finish();
  run.fingerprint = data.hex();
  return run;
}

}  // namespace qsdk
