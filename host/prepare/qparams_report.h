// The observers' results as a table (qsdk calibrate prints it). As JSON:
// pipeline/measurements_json.h, qparams_json(qparams_records(prepared)).
#pragma once

#include <string>

namespace qsdk {

class PreparedModel;

std::string qparams_table(const PreparedModel& prepared);

}  // namespace qsdk
