// Op-by-op agreement of a lowered model with its reference Q/DQ form: every
// lowered int8 kernel is run alone on the quantized inputs the reference
// model produced at the same place, and its output is compared with the
// reference's quantized output there, in quantization steps. Places are
// matched by (scale, zero point, shape); a place that several reference
// tensors share (one shared-qparams group observed at several values) cannot
// be matched and its kernels are counted as skipped, as are kernels taking
// a list of quantized tensors (cat).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "qsdk/backend.h"

namespace qsdk {

class Graph;

struct OpAgreement {
  int position = 0;  // index among the lowered graph's nodes
  std::string op;    // "quantized::conv2d_relu"
  double steps = 0;  // largest |lowered - reference| in output steps
  // Fraction of its outputs that differ at all: a kernel within one step
  // that rounds a tenth of its outputs the other way moves a deep model's
  // output further than one that differs in a few.
  double differing = 0;
};

struct AgreementReport {
  std::vector<OpAgreement> checked;  // graph order
  int skipped = 0;
  // First op whose difference exceeds `limit` steps, or nullptr.
  const OpAgreement* first_over(double limit) const;
};

AgreementReport op_by_op_agreement(const Graph& reference, const Graph& lowered, Lowering target,
                                   const std::vector<at::Tensor>& inputs);

}  // namespace qsdk
