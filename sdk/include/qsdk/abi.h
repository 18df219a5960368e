/* The binary contract between the qsdk host and a backend plugin: plain C.
 *
 * Any compiler and any C++ standard library can meet it (a plugin in C, one
 * built with clang and libc++, one with a static libstdc++ all load). The
 * C++ builder vendors normally write against (qsdk/plugin.h, Rule,
 * QuantSpec, ...) is a header-only layer that produces these tables.
 *
 * One entry point, exported with C linkage:
 *
 *   const qsdk_plugin_api* qsdk_plugin_entry(void);
 *
 * It returns a static table whose first fields say which ABI the plugin was
 * built for. The host calls it first and calls nothing else unless
 * abi_version is QSDK_ABI_VERSION. The library's own constructors (static
 * initializers) still run at dlopen, before any check: the qsdk CLI loads
 * each new library in a probe child process first. Keep them trivial.
 *
 * Rules of the boundary:
 *  - Strings are pointer + length (qsdk_string), not NUL-terminated, owned by
 *    the side that made them. What a plugin returns lives until the plugin's
 *    release function for it is called; what the host passes in lives for
 *    the duration of the call.
 *  - Errors are returned as a qsdk_status* (NULL: success), made by the
 *    plugin, read with status_message and freed with release_status. No
 *    exception ever crosses the boundary.
 *  - Every struct that may grow starts with struct_size, set by the side
 *    that fills it to sizeof() of the struct it was compiled with. Arrays of
 *    such structs are strided by their first element's struct_size.
 *
 * Versioning (CONTRIBUTING.md, "ABI versioning"):
 *  - QSDK_ABI_VERSION (major) changes only when an existing field, function
 *    signature, enum value or meaning changes. A host refuses every other
 *    major version, naming it.
 *  - QSDK_ABI_MINOR counts additive revisions: a field appended to the end
 *    of a struct, a function appended to a table, a new enum value. A host
 *    reads only the part of a struct that struct_size says the plugin filled
 *    (older plugins: missing fields take their documented default) and
 *    ignores a tail it does not know (newer plugins). A plugin may target an
 *    older host by defining QSDK_ABI_BUILD_MINOR before including this
 *    header; it then compiles against that revision's layout.
 *  - Revision history: 2.0 first C boundary; 2.1 qsdk_backend_decl.homepage;
 *    2.2 declared integer arithmetic (qsdk_backend_decl.arithmetic) and the
 *    optional engine under test (qsdk_backend_decl.has_engine,
 *    qsdk_plugin_api.run_engine / release_engine_result); 2.3 wider widths a
 *    rule offers for mixed precision (qsdk_rule_decl.widths).
 *  - An enum value newer than the host knows is refused at load with the
 *    plugin's revision in the message.
 */
#ifndef QSDK_ABI_H
#define QSDK_ABI_H

#include <stddef.h>
#include <stdint.h>

#define QSDK_ABI_VERSION 2u
#define QSDK_ABI_MINOR 3u
#ifndef QSDK_ABI_BUILD_MINOR
#define QSDK_ABI_BUILD_MINOR QSDK_ABI_MINOR
#endif

#define QSDK_ENTRY_SYMBOL "qsdk_plugin_entry"
#if defined(__GNUC__) || defined(__clang__)
#define QSDK_EXPORT __attribute__((visibility("default")))
#else
#define QSDK_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A string the owner keeps alive; `size` bytes at `data`, no terminator needed. */
typedef struct qsdk_string {
  const char* data;
  size_t size;
} qsdk_string;
/* A qsdk_string for a string literal. */
#define QSDK_STR(literal) \
  { (literal), sizeof(literal) - 1 }

/* --- enums (values fixed within a major version) ---------------------------- */

enum { QSDK_LOWERING_REFERENCE = 0, QSDK_LOWERING_ONEDNN = 1, QSDK_LOWERING_QNNPACK = 2 };
enum { QSDK_DTYPE_UINT8 = 0, QSDK_DTYPE_INT8 = 1, QSDK_DTYPE_INT16 = 2, QSDK_DTYPE_INT32 = 3 };
enum { QSDK_PER_TENSOR = 0, QSDK_PER_CHANNEL = 1 };
enum { QSDK_AFFINE = 0, QSDK_SYMMETRIC = 1 };
enum {
  QSDK_OBSERVER_MINMAX = 0,
  QSDK_OBSERVER_MOVING_AVERAGE_MINMAX = 1,
  QSDK_OBSERVER_HISTOGRAM_PERCENTILE = 2,
  QSDK_OBSERVER_HISTOGRAM_ENTROPY = 3,
  QSDK_OBSERVER_MSE = 4
};
enum {
  QSDK_SPEC_FLOAT = 0,
  QSDK_SPEC_OBSERVED = 1,
  QSDK_SPEC_FIXED = 2,
  QSDK_SPEC_SHARED = 3,
  QSDK_SPEC_DERIVED = 4,
  QSDK_SPEC_DYNAMIC = 5
};
/* What a condition looks at (qsdk_condition.subject). */
enum {
  QSDK_CONDITION_ARG = 0,              /* an argument, by its schema name */
  QSDK_CONDITION_INPUT_RANK = 1,       /* number of dims of input `input` */
  QSDK_CONDITION_INPUT_DIM = 2,        /* size of dim `dim` of input `input` (negative: from the end) */
  QSDK_CONDITION_INPUT_DTYPE = 3,      /* element type of input `input`: "float32", "int64", ... */
  QSDK_CONDITION_INPUT_IS_CONSTANT = 4 /* 1 when input `input` is a constant (weights after freezing) */
};
/* How it compares (qsdk_condition.op). */
enum {
  QSDK_CONDITION_EQ = 0,   /* equal to the one value (a list argument: to the whole list) */
  QSDK_CONDITION_NE = 1,   /* not equal */
  QSDK_CONDITION_IN = 2,   /* one of the values (a list argument: every element is) */
  QSDK_CONDITION_RANGE = 3 /* within [values[0], values[1]] (a list argument: every element is) */
};

/* Integer arithmetic of the hardware (qsdk_arithmetic_decl, since 2.2). */
enum {                                     /* how a value exactly halfway between two integers is rounded */
       QSDK_ROUND_HALF_TO_EVEN = 0,        /* 2.5 -> 2, -2.5 -> -2 (IEEE default, nearbyint) */
       QSDK_ROUND_HALF_AWAY_FROM_ZERO = 1, /* 2.5 -> 3, -2.5 -> -3 (std::round, gemmlowp) */
       QSDK_ROUND_HALF_UP = 2              /* 2.5 -> 3, -2.5 -> -2 (floor(x + 0.5), TOSA) */
};
enum {                                  /* how accumulator x (input scale x weight scale / output scale) is computed */
       QSDK_MULTIPLIER_FLOAT32 = 0,     /* float(acc) * float32 multiplier, then rounded */
       QSDK_MULTIPLIER_FLOAT64 = 1,     /* acc * double multiplier, then rounded */
       QSDK_MULTIPLIER_INT32_SHIFT = 2, /* int32 multiplier M0 in [2^30, 2^31) and a right shift: the exact
                                           product acc * M0 rounded once (TOSA's single rounding) */
       QSDK_MULTIPLIER_GEMMLOWP = 3     /* the same M0 and shift as gemmlowp / TFLite compute it: a rounding
                                           doubling high multiply (its nudge rounds ties up), then a rounding
                                           right shift (ties away from zero); `rounding` is not used */
};
enum { QSDK_OVERFLOW_SATURATE = 0, QSDK_OVERFLOW_WRAP = 1 };

/* --- what a plugin declares ----------------------------------------------- */

/* One edge of a matched pattern: operand `input` of pattern node `node`, or
 * its result when input is QSDK_EDGE_OUTPUT. */
#define QSDK_EDGE_OUTPUT (-1)
typedef struct qsdk_edge {
  int32_t node;
  int32_t input;
} qsdk_edge;

/* What one edge gets (qsdk/spec.h explains each field). */
typedef struct qsdk_quant_spec {
  uint32_t struct_size;
  int32_t kind; /* QSDK_SPEC_* */
  int32_t dtype;
  int64_t quant_min;
  int64_t quant_max;
  int32_t scheme;
  int32_t granularity;
  int32_t axis;
  int32_t observer;
  int32_t reduce_range; /* 0 or 1 */
  double eps;
  double scale;
  int64_t zero_point;
  qsdk_edge shared_with;
  const qsdk_edge* derived_from;
  size_t derived_from_count;
} qsdk_quant_spec;

typedef struct qsdk_annotation {
  uint32_t struct_size;
  qsdk_edge edge;
  qsdk_quant_spec spec;
} qsdk_annotation;

/* A condition on a match, evaluated by the host: data, so it is printed,
 * compared and hashed like the rest of a rule. Numbers compare numeric
 * facts (booleans are 0 and 1); names compare dtypes and string arguments. */
typedef struct qsdk_condition {
  uint32_t struct_size;
  int32_t subject; /* QSDK_CONDITION_ARG ... */
  int32_t node;    /* index in the rule's pattern */
  qsdk_string arg; /* ARG: the argument's name in the op's schema ("groups") */
  int32_t input;   /* INPUT_*: operand index */
  int32_t dim;     /* INPUT_DIM */
  int32_t op;      /* QSDK_CONDITION_EQ ... */
  const double* values;
  size_t value_count;
  const qsdk_string* names;
  size_t name_count;
  int32_t unknown_passes; /* 1: a fact the host cannot know (a non-constant argument) passes; 0: it fails */
} qsdk_condition;

/* The host's read-only view of one match, handed to code constraints. Host
 * owned; valid during the call. Functions return 1 when the fact is known,
 * 0 when not. Check struct_size before calling a function newer than 2.0. */
typedef struct qsdk_match_view qsdk_match_view;
struct qsdk_match_view {
  uint32_t struct_size;
  const void* host_context;
  size_t (*size)(const qsdk_match_view* view);
  qsdk_string (*kind)(const qsdk_match_view* view, size_t node);
  qsdk_string (*module_path)(const qsdk_match_view* view, size_t node);
  size_t (*num_inputs)(const qsdk_match_view* view, size_t node);
  /* rank in *rank; up to `capacity` dims written to `dims` */
  int32_t (*input_shape)(const qsdk_match_view* view, size_t node, size_t input, int64_t* dims, size_t capacity,
                         size_t* rank);
  int32_t (*output_shape)(const qsdk_match_view* view, size_t node, int64_t* dims, size_t capacity, size_t* rank);
  int32_t (*int_arg)(const qsdk_match_view* view, size_t node, size_t input, int64_t* value);
  int32_t (*float_arg)(const qsdk_match_view* view, size_t node, size_t input, double* value);
  int32_t (*int_list_arg)(const qsdk_match_view* view, size_t node, size_t input, int64_t* values, size_t capacity,
                          size_t* count);
};

typedef struct qsdk_status qsdk_status; /* opaque, the plugin's */

/* A condition written as code: opaque to the host, so rules that use one are
 * marked "code" in every report and are not fully portable. Returns 1 when
 * the match passes, 0 when not; on error returns -1 and sets *error. */
typedef struct qsdk_code_constraint {
  uint32_t struct_size;
  qsdk_string name;
  int32_t (*check)(void* user_data, const qsdk_match_view* match, qsdk_status** error);
  void* user_data;
} qsdk_code_constraint;

/* A wider width a rule offers (since 2.3): the same edges with other specs. */
typedef struct qsdk_width_decl {
  uint32_t struct_size;
  qsdk_string name;
  const qsdk_annotation* annotations;
  size_t annotation_count;
} qsdk_width_decl;

typedef struct qsdk_rule_decl {
  uint32_t struct_size;
  qsdk_string name;
  const qsdk_string* pattern; /* op chain: each op's first input is the previous op's output */
  size_t pattern_count;
  int32_t priority;
  const qsdk_annotation* annotations;
  size_t annotation_count;
  const qsdk_condition* conditions;
  size_t condition_count;
  const qsdk_code_constraint* code_constraints;
  size_t code_constraint_count;
#if QSDK_ABI_BUILD_MINOR >= 3
  const qsdk_width_decl* widths; /* since 2.3: wider alternatives, narrowest first; none when older */
  size_t width_count;
#endif
} qsdk_rule_decl;

typedef struct qsdk_option_decl {
  uint32_t struct_size;
  qsdk_string name;
  qsdk_string description;
  qsdk_string default_value;
  const qsdk_string* allowed; /* none: any value */
  size_t allowed_count;
} qsdk_option_decl;

/* How the hardware computes a quantized op, for the host's integer-exact
 * reference (CONTRIBUTING.md, "Checking your engine"). Conv, linear and
 * matmul accumulate (q - zero point) products in an accumulator of
 * `accumulator_bits` bits, add the int32 bias, and requantize with
 * `multiplier` and `rounding`; average pooling divides the integer sum by
 * the count with `pooling_rounding`; element-wise ops (add, mul, ...) and
 * ops without an integer form (sigmoid, softmax, ...) are computed in real
 * arithmetic from the dequantized inputs and rounded with
 * `elementwise_rounding`. Every result saturates to the output's range. */
typedef struct qsdk_arithmetic_decl {
  uint32_t struct_size;
  int32_t rounding;             /* QSDK_ROUND_*: requantization of accumulators */
  int32_t multiplier;           /* QSDK_MULTIPLIER_* */
  int32_t accumulator_bits;     /* 16 .. 64; 32 by default */
  int32_t accumulator_overflow; /* QSDK_OVERFLOW_*: past accumulator_bits */
  int32_t pooling_rounding;     /* QSDK_ROUND_* */
  int32_t elementwise_rounding; /* QSDK_ROUND_* */
} qsdk_arithmetic_decl;

typedef struct qsdk_backend_decl {
  uint32_t struct_size;
  qsdk_string name; /* what users type in YAML */
  qsdk_string version;
  qsdk_string vendor;
  qsdk_string description;
  int32_t lowering; /* QSDK_LOWERING_* */
  const qsdk_option_decl* options;
  size_t option_count;
  const qsdk_rule_decl* rules;
  size_t rule_count;
#if QSDK_ABI_BUILD_MINOR >= 1
  qsdk_string homepage; /* since 2.1: where the vendor documents the backend; empty when older */
#endif
#if QSDK_ABI_BUILD_MINOR >= 2
  const qsdk_arithmetic_decl* arithmetic; /* since 2.2; NULL (or older): the defaults, half to even,
                                             float32 multiplier, 32-bit saturating accumulator */
  int32_t has_engine;                     /* since 2.2: 1 when the plugin's run_engine runs this backend's models */
#endif
} qsdk_backend_decl;

/* One user option, as given in the YAML config. Host owned. */
typedef struct qsdk_option_value {
  qsdk_string name;
  qsdk_string value;
} qsdk_option_value;

/* --- the engine under test (since 2.2) --------------------------------------- */

/* Element types of tensors crossing the boundary. */
enum {
  QSDK_ELEMENT_FLOAT32 = 0,
  QSDK_ELEMENT_UINT8 = 1,
  QSDK_ELEMENT_INT8 = 2,
  QSDK_ELEMENT_INT32 = 3,
  QSDK_ELEMENT_INT64 = 4
};
/* A dense row-major tensor; owned by the side that made it. */
typedef struct qsdk_tensor {
  uint32_t struct_size;
  qsdk_string name;
  int32_t element_type; /* QSDK_ELEMENT_* */
  const int64_t* shape;
  size_t rank;
  const void* data;
  size_t byte_size; /* element count x element size */
} qsdk_tensor;

enum {
  QSDK_ATTRIBUTE_INT = 0,
  QSDK_ATTRIBUTE_FLOAT = 1,
  QSDK_ATTRIBUTE_STRING = 2,
  QSDK_ATTRIBUTE_INTS = 3,
  QSDK_ATTRIBUTE_FLOATS = 4
};
/* One attribute of an ONNX node, decoded. */
typedef struct qsdk_onnx_attribute {
  uint32_t struct_size;
  qsdk_string name;
  int32_t type; /* QSDK_ATTRIBUTE_* */
  int64_t i;
  double f;
  qsdk_string s;
  const int64_t* ints;
  size_t int_count;
  const double* floats;
  size_t float_count;
} qsdk_onnx_attribute;

typedef struct qsdk_onnx_node {
  uint32_t struct_size;
  qsdk_string name;
  qsdk_string op_type;       /* "QuantizeLinear", "Conv", ... (default ONNX domain, opset 17) */
  const qsdk_string* inputs; /* tensor names; an empty name is an omitted optional input */
  size_t input_count;
  const qsdk_string* outputs;
  size_t output_count;
  const qsdk_onnx_attribute* attributes;
  size_t attribute_count;
} qsdk_onnx_node;

/* The quantized model, in the portable form qsdk exports (README.md, "ONNX
 * export"): the serialized ONNX QDQ model for engines with an ONNX
 * toolchain, the same file on disk, and the same graph decoded into plain C
 * for engines without an ONNX parser (a C model of the hardware). Host
 * owned; valid during the call. */
typedef struct qsdk_engine_model {
  uint32_t struct_size;
  const void* onnx_bytes;
  size_t onnx_size;
  qsdk_string onnx_path;
  const qsdk_onnx_node* nodes; /* in topological order */
  size_t node_count;
  const qsdk_tensor* initializers;
  size_t initializer_count;
  const qsdk_string* input_names;
  size_t input_count;
  const qsdk_string* output_names;
  size_t output_count;
} qsdk_engine_model;

/* What the engine computed; plugin owned until release_engine_result. */
typedef struct qsdk_engine_result {
  uint32_t struct_size;
  const qsdk_tensor* outputs; /* the model's outputs, in output_names order */
  size_t output_count;
  /* Optional: intermediate tensors by their ONNX names (the outputs of
   * QuantizeLinear nodes, as integers), so the host can name the first op
   * that diverges. */
  const qsdk_tensor* intermediates;
  size_t intermediate_count;
} qsdk_engine_result;

/* --- what a plugin exports -------------------------------------------------- */

typedef struct qsdk_plugin_api {
  uint32_t struct_size;
  uint32_t abi_version; /* QSDK_ABI_VERSION the plugin was built with: read first */
  uint32_t abi_minor;   /* QSDK_ABI_BUILD_MINOR */
  /* Makes the backend for these options (defaults when none). On success
   * *backend stays valid, with everything it points to, until
   * release_backend(*backend). */
  qsdk_status* (*create_backend)(const qsdk_option_value* options, size_t option_count,
                                 const qsdk_backend_decl** backend);
  void (*release_backend)(const qsdk_backend_decl* backend);
  qsdk_string (*status_message)(const qsdk_status* status);
  void (*release_status)(qsdk_status* status);
#if QSDK_ABI_BUILD_MINOR >= 2
  /* Since 2.2, optional (NULL: no engine): runs `model` on the vendor's
   * engine for a backend whose decl has has_engine set, on float32 `inputs`
   * in the model's input order. The host calls it in the conformance case's
   * child process (its timeout and memory limit apply). */
  qsdk_status* (*run_engine)(const qsdk_backend_decl* backend, const qsdk_engine_model* model,
                             const qsdk_tensor* inputs, size_t input_count, const qsdk_engine_result** result);
  void (*release_engine_result)(const qsdk_engine_result* result);
#endif
} qsdk_plugin_api;

typedef const qsdk_plugin_api* qsdk_plugin_entry_fn(void);

/* Every plugin defines this (QSDK_PLUGIN does it for C++ plugins). */
QSDK_EXPORT const qsdk_plugin_api* qsdk_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
namespace qsdk {
inline constexpr uint32_t kAbiVersion = QSDK_ABI_VERSION;
inline constexpr uint32_t kAbiMinor = QSDK_ABI_MINOR;
}  // namespace qsdk
#endif

#endif /* QSDK_ABI_H */
