// libFuzzer target: backend YAML (what `qsdk plugins describe` prints; host/
// plugins/backend_yaml.cpp) -> rule validation (host/plugins/
// rule_validation.cpp, with LibTorch's op registry). A backend that parses
// must validate without throwing, print and read back to the same printout
// and rule hash, and (when valid) compare equal to itself and its copy.
#include <cstdlib>

#include "common/error.h"
#include "fuzz_common.h"
#include "plugins/backend_yaml.h"
#include "plugins/rule_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = qsdk_fuzz::as_text(data, size);
  qsdk::Backend backend;
  try {
    backend = qsdk::backend_from_yaml(text, "fuzz.yaml");
  } catch (const qsdk::InputError&) {
    return 0;
  }
  const auto problems = qsdk::validate_backend(backend);
  for (const auto& rule : backend.rules)
    for (const auto& a : rule.annotations) (void)qsdk::spec_problems(a.spec);
  const std::string printed = qsdk::backend_to_yaml(backend);
  const qsdk::Backend again = qsdk::backend_from_yaml(printed, "printed.yaml");
  if (qsdk::backend_to_yaml(again) != printed) std::abort();
  if (qsdk::rule_hash(backend) != qsdk::rule_hash(again)) std::abort();
  // compare_backends matches rules by name: meaningful for valid backends
  // only (duplicate rule names are a validation problem).
  if (problems.empty() && !qsdk::compare_backends(backend, again).empty()) std::abort();
  if (problems.empty() && !qsdk::compare_backends(backend, backend).empty()) std::abort();
  return 0;
}
