// libFuzzer target: `qsdk run` config text (host/config/run_config.cpp, with
// the overrides parser and the YAML helpers it uses). A config that parses
// must print (--print-config) and parse again to the same printout.
#include <cstdlib>

#include "common/error.h"
#include "config/run_config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = qsdk_fuzz::as_text(data, size);
  qsdk::RunConfig config;
  try {
    config = qsdk::parse_run_config(text, "fuzz.yaml", qsdk_fuzz::scratch_dir());
  } catch (const qsdk::InputError&) {
    return 0;
  }
  const std::string printed = qsdk::to_yaml(config);
  // The printout names resolved paths; it resolves against the same base.
  const qsdk::RunConfig again = qsdk::parse_run_config(printed, "printed.yaml", qsdk_fuzz::scratch_dir());
  if (qsdk::to_yaml(again) != printed) std::abort();
  return 0;
}
