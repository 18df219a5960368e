#include "inspect/inspect.h"

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
  for (const Value* v : g.inputs()) out << " " << value_shape_text(v);
  out << "\noutputs:";
  for (const Value* v : g.outputs()) out << " " << value_shape_text(v);
  out << "\nnodes: " << graph.nodes().size() << "\n\nop histogram:\n";
  const auto counts = op_histogram(graph);
  std::vector<std::pair<std::string, int>> hist(counts.begin(), counts.end());
  std::stable_sort(hist.begin(), hist.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [op, count] : hist) out << "  " << std::setw(6) << count << "  " << op << "\n";

  out << "\n"
      << std::left << std::setw(6) << "ID" << std::setw(28) << "OP" << std::setw(28) << "MODULE"
      << "INPUTS -> OUTPUT\n";
  for (const Node* n : graph.nodes()) {
    if (is_plumbing_node(n)) continue;
    std::string shapes;
    for (const Value* v : n->inputs())
      if (v->type()->cast<c10::TensorType>()) shapes += (shapes.empty() ? "" : " ") + value_shape_text(v);
    shapes += " ->";
    for (const Value* v : n->outputs()) shapes += " " + value_shape_text(v);
    const std::string& path = graph.module_path(n);
    out << std::setw(6) << ("%" + std::to_string(graph.id(n))) << std::setw(28) << n->kind().toQualString()
        << std::setw(28) << (path.empty() ? "-" : path) << shapes << "\n";
  }
  return out.str();
}

}  // namespace qsdk
