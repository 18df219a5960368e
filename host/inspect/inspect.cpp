#include "inspect/inspect.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "graph/graph.h"
#include "graph/graph_drawing.h"

namespace qsdk {

using torch::jit::Node;
using torch::jit::Value;

std::map<std::string, int> op_histogram(const Graph& graph) {
  std::map<std::string, int> h;
  for (const Node* n : graph.nodes()) ++h[n->kind().toQualString()];
  return h;
}

std::string describe_graph(const Graph& graph) {
  std::ostringstream out;
  const auto& g = graph.ir();
  out << "model: " << graph.source() << "\n";
  out << "inputs:";
  // Name and dtype too: a token-id input must be told from a float one.
  for (const Value* v : g.inputs()) {
    if (!v->type()->cast<c10::TensorType>()) continue;  // the module's self, when unfrozen
    const auto tensor = v->type()->expect<c10::TensorType>();
    const auto dtype = tensor->scalarType();
    const std::string& name = v->debugName();  // traced inputs are numbered, scripted ones named
    const bool numbered = std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
    out << (numbered ? "" : " " + name) << " " << value_shape_text(v)
        << (dtype ? std::string(" ") + c10::toString(*dtype) : std::string());
  }
  out << "\noutputs:";
  for (const Value* v : g.outputs()) out << " " << value_shape_text(v);
  out << "\nnodes: " << graph.nodes().size() << "\n\nop histogram:\n";
  const auto counts = op_histogram(graph);
  std::vector<std::pair<std::string, int>> hist(counts.begin(), counts.end());
  std::stable_sort(hist.begin(), hist.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [op, count] : hist) out << "  " << std::setw(6) << count << "  " << op << "\n";

  // Columns as wide as their longest entry, so long module paths do not
  // run into the next column.
  std::size_t op_width = 2, module_width = 6;
  for (const Node* n : graph.nodes()) {
    if (is_plumbing_node(n)) continue;
    op_width = std::max(op_width, std::string(n->kind().toQualString()).size());
    module_width = std::max(module_width, graph.module_path(n).size());
  }
  const int op_w = int(op_width + 2), module_w = int(module_width + 2);
  out << "\n"
      << std::left << std::setw(6) << "ID" << std::setw(op_w) << "OP" << std::setw(module_w) << "MODULE"
      << "INPUTS -> OUTPUT\n";
  for (const Node* n : graph.nodes()) {
    if (is_plumbing_node(n)) continue;
    std::string shapes;
    for (const Value* v : n->inputs())
      if (v->type()->cast<c10::TensorType>()) shapes += (shapes.empty() ? "" : " ") + value_shape_text(v);
    shapes += " ->";
    for (const Value* v : n->outputs()) shapes += " " + value_shape_text(v);
    const std::string& path = graph.module_path(n);
    out << std::setw(6) << ("%" + std::to_string(graph.id(n))) << std::setw(op_w) << n->kind().toQualString()
        << std::setw(module_w) << (path.empty() ? "-" : path) << shapes << "\n";
  }
  return out.str();
}

}  // namespace qsdk
