#include "plugins/plugin_abi.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "qsdk/engine_abi.h"

namespace qsdk {
namespace {

// A plugin table the host will not read; the message names the place.
struct AbiProblem : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Far beyond any real backend (the registry's rule limit is 4096), small
// enough that a garbage count fails here instead of exhausting memory.
constexpr std::size_t kMaxStringBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxEntries = std::size_t{1} << 20;

// ABI 2.0 sizes: what every plugin fills at least. A field added in a later
// revision is read only when struct_size covers it.
constexpr std::size_t kBackendDecl20 = offsetof(qsdk_backend_decl, homepage);
constexpr std::size_t kRuleDecl20 = offsetof(qsdk_rule_decl, widths);

// Does the plugin's struct reach this field (added in a later revision)?
#define QSDK_COVERS(object, type, field) ((object).struct_size >= offsetof(type, field) + sizeof((object).field))

class TableReader {
 public:
  explicit TableReader(std::string revision) : revision_(std::move(revision)) {}

  std::string text(qsdk_string s, const std::string& what) const {
    if (s.size == 0) return {};
    if (!s.data) throw AbiProblem(what + ": a string of " + std::to_string(s.size) + " bytes at a null pointer");
    if (s.size > kMaxStringBytes)
      throw AbiProblem(what + ": a string of " + std::to_string(s.size) + " bytes, more than the 1 MiB allowed");
    return std::string(s.data, s.size);
  }

  // A plain array (strings, edges, numbers).
  template <typename T>
  const T* plain(const T* data, std::size_t count, const std::string& what) const {
    if (count == 0) return nullptr;
    if (!data) throw AbiProblem(what + ": " + std::to_string(count) + " entries at a null pointer");
    if (count > kMaxEntries) throw AbiProblem(what + ": " + std::to_string(count) + " entries, more than allowed");
    return data;
  }

  // An array of sized structs, strided by the plugin's struct_size (a newer
  // plugin's entries are larger; the host reads the part it knows).
  template <typename T>
  std::vector<const T*> sized(const T* data, std::size_t count, std::size_t min_size, const std::string& what,
                              const std::string& type) const {
    std::vector<const T*> out;
    if (!plain(data, count, what)) return out;
    const std::uint32_t stride = data->struct_size;
    check_size(stride, min_size, what, type);
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      const T* e = reinterpret_cast<const T*>(reinterpret_cast<const char*>(data) + i * stride);
      if (e->struct_size != stride)
        throw AbiProblem(what + " " + std::to_string(i) + ": struct_size " + std::to_string(e->struct_size) +
                         " differs from the first entry's " + std::to_string(stride));
      out.push_back(e);
    }
    return out;
  }

  void check_size(std::uint32_t size, std::size_t min_size, const std::string& what, const std::string& type) const {
    if (size < min_size)
      throw AbiProblem(what + ": struct_size " + std::to_string(size) + " is smaller than " + type + " of ABI 2.0 (" +
                       std::to_string(min_size) + " bytes); set it to sizeof(" + type + ")");
  }

  template <typename E>
  E enumerated(std::int32_t value, std::int32_t last, const std::string& what) const {
    if (value < 0 || value > last)
      throw AbiProblem(what + ": unknown value " + std::to_string(value) + " (the plugin is built for ABI " +
                       revision_ + ", this host knows " + std::to_string(kAbiVersion) + "." +
                       std::to_string(kAbiMinor) + ")");
    return static_cast<E>(value);
  }

  QuantSpec spec(const qsdk_quant_spec& c, const std::string& what) const {
    check_size(c.struct_size, sizeof(qsdk_quant_spec), what, "qsdk_quant_spec");
    QuantSpec q;
    q.kind = enumerated<SpecKind>(c.kind, QSDK_SPEC_DYNAMIC, what + " kind");
    q.dtype = enumerated<DType>(c.dtype, QSDK_DTYPE_INT32, what + " dtype");
    q.quant_min = c.quant_min;
    q.quant_max = c.quant_max;
    q.scheme = enumerated<Scheme>(c.scheme, QSDK_SYMMETRIC, what + " scheme");
    q.granularity = enumerated<Granularity>(c.granularity, QSDK_PER_CHANNEL, what + " granularity");
    q.axis = c.axis;
    q.observer = enumerated<ObserverKind>(c.observer, QSDK_OBSERVER_MSE, what + " observer");
    q.reduce_range = c.reduce_range != 0;
    q.eps = c.eps;
    q.scale = c.scale;
    q.zero_point = c.zero_point;
    q.shared_with = {c.shared_with.node, c.shared_with.input};
    if (const auto* e = plain(c.derived_from, c.derived_from_count, what + " derived_from"))
      for (std::size_t i = 0; i < c.derived_from_count; ++i) q.derived_from.push_back({e[i].node, e[i].input});
    return q;
  }

  Arithmetic arithmetic(const qsdk_arithmetic_decl& c, const std::string& what) const {
    check_size(c.struct_size, sizeof(qsdk_arithmetic_decl), what, "qsdk_arithmetic_decl");
    Arithmetic a;
    a.rounding = enumerated<Rounding>(c.rounding, QSDK_ROUND_HALF_UP, what + " rounding");
    a.multiplier = enumerated<Multiplier>(c.multiplier, QSDK_MULTIPLIER_GEMMLOWP, what + " multiplier");
    if (c.accumulator_bits < 16 || c.accumulator_bits > 64)
      throw AbiProblem(what + " accumulator_bits: " + std::to_string(c.accumulator_bits) + ", expected 16 to 64");
    a.accumulator_bits = c.accumulator_bits;
    a.accumulator_overflow = enumerated<Overflow>(c.accumulator_overflow, QSDK_OVERFLOW_WRAP, what + " overflow");
    a.pooling_rounding = enumerated<Rounding>(c.pooling_rounding, QSDK_ROUND_HALF_UP, what + " pooling_rounding");
    a.elementwise_rounding =
        enumerated<Rounding>(c.elementwise_rounding, QSDK_ROUND_HALF_UP, what + " elementwise_rounding");
    return a;
  }

  Condition condition(const qsdk_condition& c, const std::string& what) const {
    Condition k;
    k.subject = enumerated<ConditionSubject>(c.subject, QSDK_CONDITION_INPUT_IS_CONSTANT, what + " subject");
    k.node = c.node;
    k.arg = text(c.arg, what + " arg");
    k.input = c.input;
    k.dim = c.dim;
    k.op = enumerated<ConditionOp>(c.op, QSDK_CONDITION_RANGE, what + " op");
    if (const double* v = plain(c.values, c.value_count, what + " values")) k.values.assign(v, v + c.value_count);
    if (const qsdk_string* n = plain(c.names, c.name_count, what + " names"))
      for (std::size_t i = 0; i < c.name_count; ++i) k.names.push_back(text(n[i], what + " name"));
    k.unknown_passes = c.unknown_passes != 0;
    return k;
  }

  std::vector<std::string> strings(const qsdk_string* data, std::size_t count, const std::string& what) const {
    std::vector<std::string> out;
    if (const qsdk_string* s = plain(data, count, what))
      for (std::size_t i = 0; i < count; ++i) out.push_back(text(s[i], what));
    return out;
  }

 private:
  std::string revision_;
};

std::string status_text(const qsdk_plugin_api& api, qsdk_status* status) {
  qsdk_string message = api.status_message(status);
  std::string out = message.data ? std::string(message.data, std::min(message.size, std::size_t{4096})) : "";
  api.release_status(status);
  return out.empty() ? "(no message)" : out;
}

// --- the host's MatchView as the C match view ----------------------------------

const MatchView& match_of(const qsdk_match_view* v) { return *static_cast<const MatchView*>(v->host_context); }

template <typename F, typename R>
R guarded(R fallback, F f) noexcept {
  try {
    return f();
  } catch (...) {
    return fallback;
  }
}

std::int32_t copy_list(const std::optional<std::vector<std::int64_t>>& list, std::int64_t* out, std::size_t capacity,
                       std::size_t* count) {
  if (!list) return 0;
  *count = list->size();
  for (std::size_t i = 0; i < list->size() && i < capacity; ++i) out[i] = (*list)[i];
  return 1;
}

qsdk_match_view host_match_view(const MatchView& match) {
  qsdk_match_view v{};
  v.struct_size = sizeof v;
  v.host_context = &match;
  v.size = [](const qsdk_match_view* self) noexcept { return match_of(self).size(); };
  v.kind = [](const qsdk_match_view* self, std::size_t node) noexcept {
    return guarded(qsdk_string{nullptr, 0}, [&] {
      const auto k = match_of(self).node(node).kind();
      return qsdk_string{k.data(), k.size()};
    });
  };
  v.module_path = [](const qsdk_match_view* self, std::size_t node) noexcept {
    return guarded(qsdk_string{nullptr, 0}, [&] {
      const auto p = match_of(self).node(node).module_path();
      return qsdk_string{p.data(), p.size()};
    });
  };
  v.num_inputs = [](const qsdk_match_view* self, std::size_t node) noexcept {
    return guarded(std::size_t{0}, [&] { return match_of(self).node(node).num_inputs(); });
  };
  v.input_shape = [](const qsdk_match_view* self, std::size_t node, std::size_t input, std::int64_t* dims,
                     std::size_t capacity, std::size_t* rank) noexcept {
    return guarded(std::int32_t{0},
                   [&] { return copy_list(match_of(self).node(node).input_shape(input), dims, capacity, rank); });
  };
  v.output_shape = [](const qsdk_match_view* self, std::size_t node, std::int64_t* dims, std::size_t capacity,
                      std::size_t* rank) noexcept {
    return guarded(std::int32_t{0},
                   [&] { return copy_list(match_of(self).node(node).output_shape(), dims, capacity, rank); });
  };
  v.int_arg = [](const qsdk_match_view* self, std::size_t node, std::size_t input, std::int64_t* value) noexcept {
    return guarded(std::int32_t{0}, [&] {
      const auto a = match_of(self).node(node).int_arg(input);
      if (a) *value = *a;
      return std::int32_t{a ? 1 : 0};
    });
  };
  v.float_arg = [](const qsdk_match_view* self, std::size_t node, std::size_t input, double* value) noexcept {
    return guarded(std::int32_t{0}, [&] {
      const auto a = match_of(self).node(node).float_arg(input);
      if (a) *value = *a;
      return std::int32_t{a ? 1 : 0};
    });
  };
  v.int_list_arg = [](const qsdk_match_view* self, std::size_t node, std::size_t input, std::int64_t* values,
                      std::size_t capacity, std::size_t* count) noexcept {
    return guarded(std::int32_t{0},
                   [&] { return copy_list(match_of(self).node(node).int_list_arg(input), values, capacity, count); });
  };
  return v;
}

// A plugin's code constraint as the host's Constraint: the check runs in the
// plugin through the C match view; an error it reports is thrown here, in
// the host, where the annotator names the rule and node.
Constraint code_constraint(const qsdk_plugin_api& api, const qsdk_code_constraint& c, std::string name,
                           std::shared_ptr<const qsdk_backend_decl> tables) {
  auto check = c.check;
  void* user_data = c.user_data;
  const qsdk_plugin_api* plugin = &api;
  return {std::move(name), [check, user_data, plugin, tables](const MatchView& match) {
            const qsdk_match_view view = host_match_view(match);
            qsdk_status* error = nullptr;
            const std::int32_t result = check(user_data, &view, &error);
            if (result == 1 || result == 0) {
              if (error) plugin->release_status(error);
              return result == 1;
            }
            throw std::runtime_error(error ? status_text(*plugin, error)
                                           : "returned " + std::to_string(result) + " without an error status");
          }};
}

// The plugin's run_engine as the backend's Engine. It holds the plugin's
// tables (and so the library) for as long as the Engine lives.
Engine engine_through_c(const qsdk_plugin_api& api, const std::shared_ptr<const qsdk_backend_decl>& tables) {
  const qsdk_plugin_api* plugin = &api;
  return [plugin, tables](const EngineModel& model, const std::vector<EngineTensor>& inputs) {
    const engine_abi::CModel c_model(model);
    const engine_abi::CTensors c_inputs(inputs);
    const qsdk_engine_result* raw = nullptr;
    if (qsdk_status* status =
            plugin->run_engine(tables.get(), c_model.get(), c_inputs.tensors.data(), c_inputs.tensors.size(), &raw))
      throw std::runtime_error(status_text(*plugin, status));
    if (!raw) throw std::runtime_error("run_engine returned neither a result nor an error");
    const std::unique_ptr<const qsdk_engine_result, void (*)(const qsdk_engine_result*)> result(
        raw, plugin->release_engine_result);
    if (result->struct_size < sizeof(qsdk_engine_result))
      throw std::runtime_error("run_engine's result: struct_size " + std::to_string(result->struct_size) +
                               ", expected " + std::to_string(sizeof(qsdk_engine_result)));
    EngineResult out;
    out.outputs = engine_abi::tensors_from_c(result->outputs, result->output_count, "output");
    out.intermediates = engine_abi::tensors_from_c(result->intermediates, result->intermediate_count, "intermediate");
    return out;
  };
}

std::vector<EdgeAnnotation> read_annotations(const TableReader& rd, const qsdk_annotation* table, std::size_t count,
                                             const std::string& where) {
  std::vector<EdgeAnnotation> out;
  for (const auto* a : rd.sized(table, count, sizeof(qsdk_annotation), where + " annotation", "qsdk_annotation")) {
    const EdgeRef edge{a->edge.node, a->edge.input};
    out.push_back({edge, rd.spec(a->spec, where + " " + to_string(edge) + " spec")});
  }
  return out;
}

Backend read_backend(const qsdk_plugin_api& api, const qsdk_backend_decl& d,
                     const std::shared_ptr<const qsdk_backend_decl>& tables, const TableReader& rd) {
  rd.check_size(d.struct_size, kBackendDecl20, "backend", "qsdk_backend_decl");
  Backend b;
  b.name = rd.text(d.name, "backend name");
  b.version = rd.text(d.version, "backend version");
  b.vendor = rd.text(d.vendor, "backend vendor");
  b.description = rd.text(d.description, "backend description");
  if (QSDK_COVERS(d, qsdk_backend_decl, homepage)) b.homepage = rd.text(d.homepage, "backend homepage");
  b.lowering = rd.enumerated<Lowering>(d.lowering, QSDK_LOWERING_QNNPACK, "backend lowering");
  if (QSDK_COVERS(d, qsdk_backend_decl, arithmetic) && d.arithmetic)
    b.arithmetic = rd.arithmetic(*d.arithmetic, "backend arithmetic");
  if (QSDK_COVERS(d, qsdk_backend_decl, has_engine) && d.has_engine) {
    if (!QSDK_COVERS(api, qsdk_plugin_api, release_engine_result) || !api.run_engine || !api.release_engine_result)
      throw AbiProblem("the backend has an engine (has_engine) but the plugin exports no run_engine");
    b.engine = engine_through_c(api, tables);
  }
  for (const auto* o : rd.sized(d.options, d.option_count, sizeof(qsdk_option_decl), "option", "qsdk_option_decl")) {
    BackendOption option;
    option.name = rd.text(o->name, "option name");
    const std::string where = "option '" + option.name.substr(0, 80) + "'";
    option.description = rd.text(o->description, where + " description");
    option.default_value = rd.text(o->default_value, where + " default");
    option.allowed = rd.strings(o->allowed, o->allowed_count, where + " allowed");
    b.options.push_back(std::move(option));
  }
  std::size_t index = 0;
  for (const auto* r : rd.sized(d.rules, d.rule_count, kRuleDecl20, "rule", "qsdk_rule_decl")) {
    Rule rule(rd.text(r->name, "rule " + std::to_string(index)));
    const std::string where = "rule '" + rule.name.substr(0, 80) + "'";
    rule.pattern = rd.strings(r->pattern, r->pattern_count, where + " pattern");
    rule.priority = r->priority;
    rule.annotations = read_annotations(rd, r->annotations, r->annotation_count, where);
    if (QSDK_COVERS(*r, qsdk_rule_decl, width_count))
      for (const auto* w :
           rd.sized(r->widths, r->width_count, sizeof(qsdk_width_decl), where + " width", "qsdk_width_decl")) {
        RuleWidth width;
        width.name = rd.text(w->name, where + " width name");
        width.annotations = read_annotations(rd, w->annotations, w->annotation_count,
                                             where + " width '" + width.name.substr(0, 80) + "'");
        rule.widths.push_back(std::move(width));
      }
    for (const auto* c :
         rd.sized(r->conditions, r->condition_count, sizeof(qsdk_condition), where + " condition", "qsdk_condition"))
      rule.conditions.push_back(rd.condition(*c, where + " condition"));
    for (const auto* c : rd.sized(r->code_constraints, r->code_constraint_count, sizeof(qsdk_code_constraint),
                                  where + " code constraint", "qsdk_code_constraint")) {
      if (!c->check) throw AbiProblem(where + " code constraint: no check function");
      rule.constraints.push_back(code_constraint(api, *c, rd.text(c->name, where + " code constraint name"), tables));
    }
    b.rules.push_back(std::move(rule));
    ++index;
  }
  return b;
}

}  // namespace

std::string abi_revision_text(const qsdk_plugin_api& api) {
  return std::to_string(api.abi_version) + "." + std::to_string(api.abi_minor);
}

std::unique_ptr<Backend> import_backend(const qsdk_plugin_api& api, const BackendOptions& options,
                                        std::shared_ptr<const void> keep_alive, std::string& cause) {
  std::vector<qsdk_option_value> given;
  for (const auto& [name, value] : options) given.push_back({{name.data(), name.size()}, {value.data(), value.size()}});
  const qsdk_backend_decl* decl = nullptr;
  if (qsdk_status* status = api.create_backend(given.data(), given.size(), &decl)) {
    cause = "the plugin's create_backend failed: " + status_text(api, status);
    return nullptr;
  }
  if (!decl) {
    cause = "the plugin's create_backend returned no backend and no error";
    return nullptr;
  }
  // Released when the last code constraint or engine that may call into it
  // is gone (at once when there is none); the library stays mapped until then.
  const qsdk_plugin_api* plugin = &api;
  std::shared_ptr<const qsdk_backend_decl> tables(
      decl, [plugin, keep_alive](const qsdk_backend_decl* d) { plugin->release_backend(d); });
  try {
    return std::make_unique<Backend>(read_backend(api, *decl, tables, TableReader(abi_revision_text(api))));
  } catch (const AbiProblem& e) {
    cause = std::string("the plugin's tables are malformed: ") + e.what();
  }
  return nullptr;
}

}  // namespace qsdk
