// libFuzzer target: conformance spec text (host/conformance/spec.cpp). The
// spec "file" is <scratch>/spec/fuzz.yaml and the models directory
// <scratch>/models, which holds empty files named as the bundled specs name
// their models, so model file checks are cheap stat() calls. Specs that
// parse also have their per-backend expectations merged.
#include <fstream>

#include "common/error.h"
#include "conformance/spec.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const qsdk::conformance::LoadContext context = [] {
    qsdk::conformance::LoadContext c;
    c.known_backends = {"x86-int8", "arm", "per-channel"};
    c.models_dir = qsdk_fuzz::scratch_dir() / "models";
    std::filesystem::create_directories(c.models_dir);
    std::filesystem::create_directories(qsdk_fuzz::scratch_dir() / "spec");
    for (const char* m : {"add_mul", "conv2d", "conv_maxpool", "conv_sigmoid", "conv_softmax", "mobilenet_v2",
                          "mobilenet_v3_small", "resnet18", "resnet50", "transformer_encoder"})
      std::ofstream(c.models_dir / (std::string(m) + ".pt")).put('\n');
    c.check_model_files = true;
    return c;
  }();
  const std::string text = qsdk_fuzz::as_text(data, size);
  try {
    const auto spec =
        qsdk::conformance::parse_spec(text, qsdk_fuzz::scratch_dir() / "spec" / "fuzz.yaml", context, "fuzz");
    for (const auto& backend : context.known_backends) {
      if (spec.applies_to(backend)) (void)spec.expectations_for(backend).has_structure();
    }
  } catch (const qsdk::InputError&) {
  }
  return 0;
}
