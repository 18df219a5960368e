/* my-npu in plain C: the same backend as ../vendor-plugin/my_npu.cpp, with
 * no C++ at all, written straight against the C ABI (qsdk/abi.h). The host
 * loads it exactly like a C++ plugin; the tests check that both builds have
 * the same rule hash and pass the same conformance specs.
 *
 * Everything here is static data: the host reads the tables during
 * create_backend and the plugin never frees them.
 */
#include <qsdk/abi.h>
#include <stdlib.h>
#include <string.h>

/* uint8 affine activations, [0, 255], min/max observer. */
#define ACTIVATION                                                                                          \
  {                                                                                                         \
    .struct_size = sizeof(qsdk_quant_spec), .kind = QSDK_SPEC_OBSERVED, .dtype = QSDK_DTYPE_UINT8,          \
    .quant_min = 0, .quant_max = 255, .scheme = QSDK_AFFINE, .granularity = QSDK_PER_TENSOR, .axis = -1,    \
    .observer = QSDK_OBSERVER_MINMAX, .eps = 1.1920928955078125e-07                                          \
  }
/* int8 symmetric weights per output channel (axis 0), [-127, 127]. */
#define WEIGHT                                                                                              \
  {                                                                                                         \
    .struct_size = sizeof(qsdk_quant_spec), .kind = QSDK_SPEC_OBSERVED, .dtype = QSDK_DTYPE_INT8,           \
    .quant_min = -127, .quant_max = 127, .scheme = QSDK_SYMMETRIC, .granularity = QSDK_PER_CHANNEL,          \
    .axis = 0, .observer = QSDK_OBSERVER_MINMAX, .eps = 1.1920928955078125e-07                               \
  }
/* int32 bias, scale = input scale x weight scale. */
static const qsdk_edge kBiasSources[] = {{0, 0}, {0, 1}};
#define BIAS                                                                                                \
  {                                                                                                         \
    .struct_size = sizeof(qsdk_quant_spec), .kind = QSDK_SPEC_DERIVED, .dtype = QSDK_DTYPE_INT32,           \
    .quant_min = -2147483647 - 1, .quant_max = 2147483647, .scheme = QSDK_SYMMETRIC, .axis = -1,            \
    .eps = 1.1920928955078125e-07, .derived_from = kBiasSources, .derived_from_count = 2                     \
  }
#define ANNOTATION(node_, input_, spec_) {.struct_size = sizeof(qsdk_annotation), .edge = {node_, input_}, .spec = spec_}

/* Input, weight and bias of the first op; the output of op `last`. */
#define WEIGHTED_OP_ANNOTATIONS(last)                                                                          \
  {                                                                                                            \
    ANNOTATION(0, 0, ACTIVATION), ANNOTATION(0, 1, WEIGHT), ANNOTATION(0, 2, BIAS),                            \
        ANNOTATION(last, QSDK_EDGE_OUTPUT, ACTIVATION)                                                         \
  }
static const qsdk_annotation kOutputAt0[] = WEIGHTED_OP_ANNOTATIONS(0);
static const qsdk_annotation kOutputAt1[] = WEIGHTED_OP_ANNOTATIONS(1);
static const qsdk_annotation kOutputAt2[] = WEIGHTED_OP_ANNOTATIONS(2);

/* Depthwise convolutions (groups > 1) are not supported by this NPU. */
static const double kOne[] = {1};
static const qsdk_condition kDense[] = {{.struct_size = sizeof(qsdk_condition),
                                         .subject = QSDK_CONDITION_ARG,
                                         .node = 0,
                                         .arg = QSDK_STR("groups"),
                                         .op = QSDK_CONDITION_EQ,
                                         .values = kOne,
                                         .value_count = 1}};

static const qsdk_string kConvBnRelu[] = {QSDK_STR("aten::conv2d"), QSDK_STR("aten::batch_norm"),
                                          QSDK_STR("aten::relu")};
static const qsdk_string kConvBn[] = {QSDK_STR("aten::conv2d"), QSDK_STR("aten::batch_norm")};
static const qsdk_string kConvRelu[] = {QSDK_STR("aten::conv2d"), QSDK_STR("aten::relu")};
static const qsdk_string kConv[] = {QSDK_STR("aten::conv2d")};
static const qsdk_string kLinear[] = {QSDK_STR("aten::linear")};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))
/* One rule per chain the NPU fuses (batch_norm is folded at convert). */
#define CONV_RULE(name_, pattern_, annotations_)                                                                 \
  {                                                                                                              \
    .struct_size = sizeof(qsdk_rule_decl), .name = QSDK_STR(name_), .pattern = pattern_,                         \
    .pattern_count = COUNT(pattern_), .priority = (int32_t)COUNT(pattern_), .annotations = annotations_,         \
    .annotation_count = 4, .conditions = kDense, .condition_count = 1                                            \
  }
static const qsdk_rule_decl kRules[] = {
    CONV_RULE("conv2d_batch_norm_relu", kConvBnRelu, kOutputAt2),
    CONV_RULE("conv2d_batch_norm", kConvBn, kOutputAt1),
    CONV_RULE("conv2d_relu", kConvRelu, kOutputAt1),
    CONV_RULE("conv2d", kConv, kOutputAt0),
    {.struct_size = sizeof(qsdk_rule_decl),
     .name = QSDK_STR("linear"),
     .pattern = kLinear,
     .pattern_count = 1,
     .annotations = kOutputAt0,
     .annotation_count = 4},
};

#if QSDK_ABI_BUILD_MINOR >= 2
/* The NPU's integer arithmetic (ABI 2.2), as the C++ template declares it.
 * This C build has no engine (has_engine 0): the host checks its rules, and
 * can check ONNX Runtime against its arithmetic, but not the NPU itself. */
static const qsdk_arithmetic_decl kArithmetic = {
    .struct_size = sizeof(qsdk_arithmetic_decl),
    .rounding = QSDK_ROUND_HALF_AWAY_FROM_ZERO,
    .multiplier = QSDK_MULTIPLIER_GEMMLOWP,
    .accumulator_bits = 32,
    .accumulator_overflow = QSDK_OVERFLOW_SATURATE,
    .pooling_rounding = QSDK_ROUND_HALF_AWAY_FROM_ZERO,
    .elementwise_rounding = QSDK_ROUND_HALF_TO_EVEN,
};
#endif

static const qsdk_backend_decl kBackend = {
    .struct_size = sizeof(qsdk_backend_decl),
    .name = QSDK_STR("my-npu"),
    .version = QSDK_STR("1.0.0"),
    .vendor = QSDK_STR("Example Silicon"),
    .description = QSDK_STR("Example NPU: int8 conv(+relu) and linear"),
    .lowering = QSDK_LOWERING_REFERENCE,
    .rules = kRules,
    .rule_count = COUNT(kRules),
#if QSDK_ABI_BUILD_MINOR >= 1
    /* Only in ABI 2.1 and later; a build for 2.0 has no such field. */
    .homepage = QSDK_STR("https://example.com/my-npu"),
#endif
#if QSDK_ABI_BUILD_MINOR >= 2
    .arithmetic = &kArithmetic,
    .has_engine = 0,
#endif
};

/* This plugin's error object. */
struct qsdk_status {
  char message[200];
};

static qsdk_status* make_status(const char* message) {
  qsdk_status* status = malloc(sizeof *status);
  if (status) {
    strncpy(status->message, message, sizeof status->message - 1);
    status->message[sizeof status->message - 1] = '\0';
  }
  return status;
}

static qsdk_status* create_backend(const qsdk_option_value* options, size_t option_count,
                                   const qsdk_backend_decl** backend) {
  (void)options;
  /* The host refuses options a backend does not declare; this one declares none. */
  if (option_count != 0) return make_status("my-npu takes no options");
  *backend = &kBackend;
  return NULL;
}

static void release_backend(const qsdk_backend_decl* backend) { (void)backend; /* static tables */ }

static qsdk_string status_message(const qsdk_status* status) {
  qsdk_string s = {status ? status->message : "out of memory", 0};
  s.size = strlen(s.data);
  return s;
}

static void release_status(qsdk_status* status) { free(status); }

static const qsdk_plugin_api kApi = {
    .struct_size = sizeof(qsdk_plugin_api),
    .abi_version = QSDK_ABI_VERSION,
    .abi_minor = QSDK_ABI_BUILD_MINOR,
    .create_backend = create_backend,
    .release_backend = release_backend,
    .status_message = status_message,
    .release_status = release_status,
};

QSDK_EXPORT const qsdk_plugin_api* qsdk_plugin_entry(void) { return &kApi; }
