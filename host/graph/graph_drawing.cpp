#include "graph/graph_drawing.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "graph/graph.h"

namespace qsdk {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string value_shape_text(const Value* v) {
  if (auto shape = concrete_shape(v)) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape->size(); ++i) s += (i ? "," : "") + std::to_string((*shape)[i]);
    return s + "]";
  }
  if (v->type()->kind() == c10::TypeKind::ListType) return "list";
  return v->type()->str();
}

bool is_plumbing_node(const Node* n) {
  return n->kind() == c10::prim::Constant || n->kind() == c10::prim::ListConstruct ||
         n->kind() == c10::prim::TupleConstruct;
}

std::string graph_to_dot(const Graph& graph, const std::function<DotStyle(const torch::jit::Node*)>& style) {
  std::ostringstream dot;
  const auto& g = graph.ir();
  dot << "digraph qsdk {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", "
         "fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\"];\n";
  dot << "  label=\"" << dot_escape(graph.source()) << "\";\n";
  std::unordered_map<const Value*, std::string> producer;
  for (std::size_t i = 0; i < g.inputs().size(); ++i) {
    const std::string id = "in" + std::to_string(i);
    dot << "  " << id << " [shape=ellipse, fillcolor=\"#dff0d8\", label=\"input " << i << "\\n"
        << dot_escape(value_shape_text(g.inputs()[i])) << "\"];\n";
    producer[g.inputs()[i]] = id;
  }
  // An argument list (cat's tensors) is drawn as edges from its elements.
  auto sources_of = [&](const Value* v) {
    std::vector<const Value*> out;
    if (v->node()->kind() == c10::prim::ListConstruct)
      for (const Value* e : v->node()->inputs()) out.push_back(e);
    else
      out.push_back(v);
    return out;
  };
  for (const Node* n : graph.nodes()) {
    if (is_plumbing_node(n)) continue;
    const std::string id = "n" + std::to_string(graph.id(n));
    const std::string& path = graph.module_path(n);
    const DotStyle st = style ? style(n) : DotStyle{};
    dot << "  " << id << " [label=\"%" << graph.id(n) << " " << dot_escape(n->kind().toQualString())
        << (path.empty() ? "" : "\\n" + dot_escape(path)) << (st.note.empty() ? "" : "\\n" + dot_escape(st.note))
        << "\"" << (st.fill.empty() ? "" : ", fillcolor=\"" + st.fill + "\"") << "];\n";
    for (const Value* in : n->inputs())
      for (const Value* src : sources_of(in))
        if (auto it = producer.find(src); it != producer.end())
          dot << "  " << it->second << " -> " << id << " [label=\"" << dot_escape(value_shape_text(src)) << "\"];\n";
    for (const Value* v : n->outputs()) producer[v] = id;
  }
  for (std::size_t i = 0; i < g.outputs().size(); ++i) {
    const std::string id = "out" + std::to_string(i);
    dot << "  " << id << " [shape=ellipse, fillcolor=\"#fcf8e3\", label=\"output " << i << "\"];\n";
    for (const Value* src : sources_of(g.outputs()[i]))
      if (auto it = producer.find(src); it != producer.end())
        dot << "  " << it->second << " -> " << id << " [label=\"" << dot_escape(value_shape_text(src)) << "\"];\n";
  }
  dot << "}\n";
  return dot.str();
}

void write_dot(const std::string& dot, const std::filesystem::path& path) { write_file_atomically(path, dot); }

std::string render_svg(const std::string& dot) {
  namespace fs = std::filesystem;
  std::random_device rd;
  const fs::path tmp_dot = fs::temp_directory_path() / ("qsdk-" + std::to_string(rd()) + ".dot");
  const fs::path tmp_svg = fs::temp_directory_path() / ("qsdk-" + std::to_string(rd()) + ".svg");
  write_file_atomically(tmp_dot, dot);
  const std::string cmd = "dot -Tsvg '" + tmp_dot.string() + "' -o '" + tmp_svg.string() + "' 2>/dev/null";
  const int rc = std::system(cmd.c_str());
  std::error_code ec;
  fs::remove(tmp_dot, ec);
  if (rc != 0) {
    fs::remove(tmp_svg, ec);
    throw InputError("Graphviz", "`dot -Tsvg` failed (is the graphviz package installed?)");
  }
  std::ifstream in(tmp_svg, std::ios::binary);
  std::stringstream svg;
  svg << in.rdbuf();
  fs::remove(tmp_svg, ec);
  return svg.str();
}

void write_svg(const std::string& dot, const std::filesystem::path& path) {
  std::string svg;
  try {
    svg = render_svg(dot);
  } catch (const InputError& e) {
    throw InputError(path.string(), e.cause());
  }
  write_file_atomically(path, svg);
}

}  // namespace qsdk
