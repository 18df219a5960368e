// What `qsdk inspect` shows a person: an op histogram, the node list with
// ids, module paths and shapes, and the graph as Graphviz DOT or SVG.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>

namespace torch::jit {
struct Node;
}

namespace qsdk {

class Graph;

// Op kind -> number of nodes, for every op node.
std::map<std::string, int> op_histogram(const Graph& graph);

// The histogram and the node table, as printed by `qsdk inspect`.
std::string describe_graph(const Graph& graph);

// DOT source: one box per op node ("%id op" and its module path), graph
// inputs and outputs as ellipses, edges labelled with tensor shapes.
// `style`, when given, returns a node's fill colour and an extra label line
// (the annotate report colours quantized and float ops this way).
struct DotStyle {
  std::string fill;
  std::string note;
};
std::string graph_to_dot(const Graph& graph, const std::function<DotStyle(const torch::jit::Node*)>& style = nullptr);

// Writes `dot` to `path` atomically.
void write_dot(const std::string& dot, const std::filesystem::path& path);
// Renders `dot` with Graphviz's `dot -Tsvg` to `path`, atomically. Throws
// InputError when Graphviz is missing or fails.
void write_svg(const std::string& dot, const std::filesystem::path& path);

}  // namespace qsdk
