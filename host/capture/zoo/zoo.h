// The built-in model zoo: small C++ torch::nn models, named `zoo:<name>` on
// the command line. This header is torch-free (names, descriptions, input
// shapes); zoo_models.h builds the modules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/model_inputs.h"

namespace qsdk::zoo {

struct ZooInfo {
  std::string name;               // "resnet18" (users type "zoo:resnet18")
  std::string description;        // one line, for `qsdk inspect --list-zoo` and docs
  std::vector<InputSpec> inputs;  // default example inputs
};

// Every zoo model, in a stable order.
const std::vector<ZooInfo>& zoo_models();

// nullptr when there is no zoo model of that name.
const ZooInfo* find_zoo_model(const std::string& name);

}  // namespace qsdk::zoo
