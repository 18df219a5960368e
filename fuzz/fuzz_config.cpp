// libFuzzer target: `qsdk run` config text (host/config/run_config.cpp, with
// the overrides parser and the YAML helpers it uses). A complete config that
// parses must print (--print-config), read back, and print the same again.
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
  // An empty file is every default, to be completed by flags (--model,
  // --backend); its printout has no model, so it is not read back.
  if (config.model.empty() || config.backends.empty()) return 0;
  // The printout must read back (a printed config is what --isolate children
  // get), and printing is stable from then on. (Not equal to the first
  // printout: a default output dir is relative to the working directory and
  // becomes explicit, relative to the config, once printed.)
  const auto reprint = [](const std::string& text) {
    return qsdk::to_yaml(qsdk::parse_run_config(text, "fuzz.yaml", qsdk_fuzz::scratch_dir()));
  };
  const std::string once = reprint(qsdk::to_yaml(config));
  if (reprint(once) != once) std::abort();
  return 0;
}
