// Placeholder until QAT lands (issue 9): the pipeline links against
// train_qat. Replace this file with the implementation.
#include "qat/qat.h"

#include "common/error.h"
#include "prepare/prepare.h"

namespace qsdk {

QatResult train_qat(Graph&, const Annotation&, const QatOptions&, const DataSource&, bool) {
  throw InputError("qat", "quantization-aware training is not available in this build yet");
}

}  // namespace qsdk
