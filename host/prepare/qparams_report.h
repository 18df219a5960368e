// The observers' results as a table (qsdk calibrate prints it) and as JSON.
#pragma once

#include <string>

namespace qsdk {

class PreparedModel;

std::string qparams_table(const PreparedModel& prepared);
std::string qparams_json(const PreparedModel& prepared);

}  // namespace qsdk
