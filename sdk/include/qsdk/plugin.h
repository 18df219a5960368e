// The one macro a C++ plugin needs. In exactly one source file of the plugin:
//
//   std::unique_ptr<qsdk::Backend> make_backend(const qsdk::BackendOptions& options);
//   QSDK_PLUGIN(make_backend)
//
// It defines the C entry point qsdk_plugin_entry (qsdk/abi.h) and, header
// only, turns the Backend the factory returns into the ABI's C tables: no
// C++ object, allocation or exception crosses into the host, so the plugin
// may use any compiler and C++ standard library. Build with qsdk_add_plugin
// (CMake): only qsdk_plugin_entry leaves the library.
#pragma once

#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "qsdk/abi.h"
#include "qsdk/backend.h"
#include "qsdk/engine_abi.h"
#include "qsdk/version.h"

// This plugin's error object: a message. Only the plugin makes and frees it.
struct qsdk_status {
  std::string message;
};

// QSDK_PLUGIN_ABI_VERSION may be predefined to build a deliberately
// mismatched plugin (the host's tests do); vendors never set it.
#ifndef QSDK_PLUGIN_ABI_VERSION
#define QSDK_PLUGIN_ABI_VERSION QSDK_ABI_VERSION
#endif

namespace qsdk::plugin_detail {

inline qsdk_string view(const std::string& s) { return {s.data(), s.size()}; }
inline std::string text(qsdk_string s) { return s.data ? std::string(s.data, s.size) : std::string(); }

// Returned when even the error cannot be allocated; never freed.
inline qsdk_status* out_of_memory_status() noexcept {
  static qsdk_status status{};
  return &status;
}

inline qsdk_status* make_status(const char* message) noexcept {
  try {
    return new qsdk_status{message};
  } catch (...) {
    return out_of_memory_status();
  }
}

// --- the host's match view, seen as the C++ MatchView ------------------------

class CNodeView final : public NodeView {
 public:
  CNodeView(const qsdk_match_view* view, std::size_t node)
      : view_(view), node_(node), kind_(text(view->kind(view, node))), path_(text(view->module_path(view, node))) {}
  std::string_view kind() const override { return kind_; }
  std::string_view module_path() const override { return path_; }
  std::size_t num_inputs() const override { return view_->num_inputs(view_, node_); }
  std::optional<std::vector<std::int64_t>> input_shape(std::size_t i) const override {
    return shape([&](std::int64_t* dims, std::size_t cap, std::size_t* rank) {
      return view_->input_shape(view_, node_, i, dims, cap, rank);
    });
  }
  std::optional<std::vector<std::int64_t>> output_shape() const override {
    return shape([&](std::int64_t* dims, std::size_t cap, std::size_t* rank) {
      return view_->output_shape(view_, node_, dims, cap, rank);
    });
  }
  std::optional<std::int64_t> int_arg(std::size_t i) const override {
    std::int64_t v = 0;
    if (view_->int_arg(view_, node_, i, &v) == 1) return v;
    return std::nullopt;
  }
  std::optional<double> float_arg(std::size_t i) const override {
    double v = 0;
    if (view_->float_arg(view_, node_, i, &v) == 1) return v;
    return std::nullopt;
  }
  std::optional<std::vector<std::int64_t>> int_list_arg(std::size_t i) const override {
    return shape([&](std::int64_t* values, std::size_t cap, std::size_t* count) {
      return view_->int_list_arg(view_, node_, i, values, cap, count);
    });
  }

 private:
  // Asks with a small buffer, then again with the size the host reported.
  template <typename Ask>
  static std::optional<std::vector<std::int64_t>> shape(Ask ask) {
    std::vector<std::int64_t> dims(8);
    std::size_t n = 0;
    if (ask(dims.data(), dims.size(), &n) != 1) return std::nullopt;
    if (n > dims.size()) {
      dims.resize(n);
      if (ask(dims.data(), dims.size(), &n) != 1 || n > dims.size()) return std::nullopt;
    }
    dims.resize(n);
    return dims;
  }
  const qsdk_match_view* view_;
  std::size_t node_;
  std::string kind_, path_;
};

class CMatchView final : public MatchView {
 public:
  explicit CMatchView(const qsdk_match_view* view) {
    const std::size_t n = view->size(view);
    nodes_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) nodes_.emplace_back(view, i);
  }
  std::size_t size() const override { return nodes_.size(); }
  const NodeView& node(std::size_t i) const override { return nodes_.at(i); }

 private:
  std::vector<CNodeView> nodes_;
};

inline std::int32_t run_code_constraint(void* user_data, const qsdk_match_view* match, qsdk_status** error) noexcept {
  try {
    const auto* constraint = static_cast<const Constraint*>(user_data);
    CMatchView view(match);
    return constraint->check(view) ? 1 : 0;
  } catch (const std::exception& e) {
    *error = make_status(e.what());
  } catch (...) {
    *error = make_status("a non-standard exception");
  }
  return -1;
}

// --- Backend -> C tables -----------------------------------------------------

inline qsdk_quant_spec c_spec(const QuantSpec& q, const std::vector<qsdk_edge>& derived) {
  qsdk_quant_spec c{};
  c.struct_size = sizeof c;
  c.kind = static_cast<std::int32_t>(q.kind);
  c.dtype = static_cast<std::int32_t>(q.dtype);
  c.quant_min = q.quant_min;
  c.quant_max = q.quant_max;
  c.scheme = static_cast<std::int32_t>(q.scheme);
  c.granularity = static_cast<std::int32_t>(q.granularity);
  c.axis = q.axis;
  c.observer = static_cast<std::int32_t>(q.observer);
  c.reduce_range = q.reduce_range ? 1 : 0;
  c.eps = q.eps;
  c.scale = q.scale;
  c.zero_point = q.zero_point;
  c.shared_with = {q.shared_with.node, q.shared_with.input};
  c.derived_from = derived.empty() ? nullptr : derived.data();
  c.derived_from_count = derived.size();
  return c;
}

// Standard layout, so the host's decl pointer converts back to it.
struct ExportedHeader {
  qsdk_backend_decl decl;
  struct ExportedBackend* owner;
};

// The factory's Backend and the C tables that point into it. Built once;
// no table is resized after a pointer into it is taken.
struct ExportedBackend {
  explicit ExportedBackend(std::unique_ptr<Backend> b) : backend(std::move(b)) {
    const Backend& be = *backend;
    for (const auto& o : be.options) {
      auto& allowed = strings.emplace_back();
      for (const auto& a : o.allowed) allowed.push_back(view(a));
      qsdk_option_decl c{};
      c.struct_size = sizeof c;
      c.name = view(o.name);
      c.description = view(o.description);
      c.default_value = view(o.default_value);
      c.allowed = allowed.empty() ? nullptr : allowed.data();
      c.allowed_count = allowed.size();
      options.push_back(c);
    }
    for (const auto& r : be.rules) {
      auto& pattern = strings.emplace_back();
      for (const auto& op : r.pattern) pattern.push_back(view(op));
      const auto& annotations = annotation_table(r.annotations);
      auto& conditions = condition_tables.emplace_back();
      for (const auto& k : r.conditions) {
        auto& names = strings.emplace_back();
        for (const auto& n : k.names) names.push_back(view(n));
        qsdk_condition c{};
        c.struct_size = sizeof c;
        c.subject = static_cast<std::int32_t>(k.subject);
        c.node = k.node;
        c.arg = view(k.arg);
        c.input = k.input;
        c.dim = k.dim;
        c.op = static_cast<std::int32_t>(k.op);
        c.values = k.values.empty() ? nullptr : k.values.data();
        c.value_count = k.values.size();
        c.names = names.empty() ? nullptr : names.data();
        c.name_count = names.size();
        c.unknown_passes = k.unknown_passes ? 1 : 0;
        conditions.push_back(c);
      }
      auto& code = code_tables.emplace_back();
      for (const auto& k : r.constraints) {
        qsdk_code_constraint c{};
        c.struct_size = sizeof c;
        c.name = view(k.name);
        c.check = &run_code_constraint;
        c.user_data = const_cast<Constraint*>(&k);
        code.push_back(c);
      }
      qsdk_rule_decl c{};
      c.struct_size = sizeof c;
      c.name = view(r.name);
      c.pattern = pattern.empty() ? nullptr : pattern.data();
      c.pattern_count = pattern.size();
      c.priority = r.priority;
      c.annotations = annotations.empty() ? nullptr : annotations.data();
      c.annotation_count = annotations.size();
      c.conditions = conditions.empty() ? nullptr : conditions.data();
      c.condition_count = conditions.size();
      c.code_constraints = code.empty() ? nullptr : code.data();
      c.code_constraint_count = code.size();
#if QSDK_ABI_BUILD_MINOR >= 3
      auto& widths = width_tables.emplace_back();
      for (const auto& w : r.widths) {
        const auto& table = annotation_table(w.annotations);
        qsdk_width_decl wd{};
        wd.struct_size = sizeof wd;
        wd.name = view(w.name);
        wd.annotations = table.empty() ? nullptr : table.data();
        wd.annotation_count = table.size();
        widths.push_back(wd);
      }
      c.widths = widths.empty() ? nullptr : widths.data();
      c.width_count = widths.size();
#endif
      rules.push_back(c);
    }
    qsdk_backend_decl& d = header.decl;
    d.struct_size = sizeof d;
    d.name = view(be.name);
    d.version = view(be.version);
    d.vendor = view(be.vendor);
    d.description = view(be.description);
#if QSDK_ABI_BUILD_MINOR >= 1
    d.homepage = view(be.homepage);
#endif
#if QSDK_ABI_BUILD_MINOR >= 2
    arithmetic = engine_abi::arithmetic_to_c(be.arithmetic);
    d.arithmetic = &arithmetic;
    d.has_engine = be.engine ? 1 : 0;
#endif
    d.lowering = static_cast<std::int32_t>(be.lowering);
    d.options = options.empty() ? nullptr : options.data();
    d.option_count = options.size();
    d.rules = rules.empty() ? nullptr : rules.data();
    d.rule_count = rules.size();
    header.owner = this;
  }

  // The C table of a rule's (or width's) annotations, kept in annotation_tables.
  const std::vector<qsdk_annotation>& annotation_table(const std::vector<EdgeAnnotation>& list) {
    auto& annotations = annotation_tables.emplace_back();
    for (const auto& a : list) {
      auto& derived = edges.emplace_back();
      for (const auto& e : a.spec.derived_from) derived.push_back({e.node, e.input});
      qsdk_annotation c{};
      c.struct_size = sizeof c;
      c.edge = {a.edge.node, a.edge.input};
      c.spec = c_spec(a.spec, derived);
      annotations.push_back(c);
    }
    return annotations;
  }

  std::unique_ptr<Backend> backend;
  // Deques: growing one keeps references to its elements valid, so a table
  // may be filled after a later one was added.
  std::deque<std::vector<qsdk_string>> strings;
  std::deque<std::vector<qsdk_edge>> edges;
  std::deque<std::vector<qsdk_annotation>> annotation_tables;
  std::deque<std::vector<qsdk_condition>> condition_tables;
  std::deque<std::vector<qsdk_code_constraint>> code_tables;
#if QSDK_ABI_BUILD_MINOR >= 3
  std::deque<std::vector<qsdk_width_decl>> width_tables;
#endif
  std::vector<qsdk_option_decl> options;
  std::vector<qsdk_rule_decl> rules;
#if QSDK_ABI_BUILD_MINOR >= 2
  qsdk_arithmetic_decl arithmetic{};
#endif
  ExportedHeader header{};
};

template <std::unique_ptr<Backend> (*Factory)(const BackendOptions&)>
qsdk_status* create_backend(const qsdk_option_value* given, std::size_t count, const qsdk_backend_decl** out) noexcept {
  try {
    BackendOptions options;
    for (std::size_t i = 0; i < count; ++i) options[text(given[i].name)] = text(given[i].value);
    std::unique_ptr<Backend> backend = Factory(options);
    if (!backend) return make_status("the factory returned no backend");
    auto exported = std::make_unique<ExportedBackend>(std::move(backend));
    *out = &exported.release()->header.decl;
    return nullptr;
  } catch (const std::exception& e) {
    return make_status(e.what());
  } catch (...) {
    return make_status("a non-standard exception");
  }
}

inline void release_backend(const qsdk_backend_decl* decl) noexcept {
  if (decl) delete reinterpret_cast<const ExportedHeader*>(decl)->owner;
}
inline qsdk_string status_message(const qsdk_status* status) noexcept {
  if (status == out_of_memory_status()) return QSDK_STR("out of memory");
  return view(status->message);
}
inline void release_status(qsdk_status* status) noexcept {
  if (status != out_of_memory_status()) delete status;
}

#if QSDK_ABI_BUILD_MINOR >= 2
// The backend's Engine, called through the C tables: the host's model and
// inputs read into C++, the result kept alive until release_engine_result.
inline qsdk_status* run_engine(const qsdk_backend_decl* decl, const qsdk_engine_model* model, const qsdk_tensor* inputs,
                               std::size_t input_count, const qsdk_engine_result** result) noexcept {
  try {
    if (!decl || !model || !result) return make_status("run_engine: a null argument");
    const Backend& backend = *reinterpret_cast<const ExportedHeader*>(decl)->owner->backend;
    if (!backend.engine) return make_status(("backend '" + backend.name + "' has no engine").c_str());
    const EngineModel m = engine_abi::model_from_c(*model);
    const std::vector<EngineTensor> in = engine_abi::tensors_from_c(inputs, input_count, "input");
    auto exported = std::make_unique<engine_abi::CResult>(backend.engine(m, in));
    *result = &exported.release()->header.c;
    return nullptr;
  } catch (const std::exception& e) {
    return make_status(e.what());
  } catch (...) {
    return make_status("a non-standard exception");
  }
}
inline void release_engine_result(const qsdk_engine_result* result) noexcept {
  if (result) delete reinterpret_cast<const engine_abi::CResult::Header*>(result)->owner;
}
#endif

template <std::unique_ptr<Backend> (*Factory)(const BackendOptions&)>
const qsdk_plugin_api* plugin_api() {
  static const qsdk_plugin_api api {
    sizeof(qsdk_plugin_api), QSDK_PLUGIN_ABI_VERSION, QSDK_ABI_BUILD_MINOR, &create_backend<Factory>, &release_backend,
        &status_message, &release_status
#if QSDK_ABI_BUILD_MINOR >= 2
        ,
        &run_engine, &release_engine_result
#endif
  };
  return &api;
}

}  // namespace qsdk::plugin_detail

#define QSDK_PLUGIN(factory)                                              \
  extern "C" QSDK_EXPORT const qsdk_plugin_api* qsdk_plugin_entry(void) { \
    return ::qsdk::plugin_detail::plugin_api<factory>();                  \
  }
