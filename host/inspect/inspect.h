// What `qsdk inspect` shows a person: an op histogram, the node list with
// ids, module paths and shapes, and the graph as Graphviz DOT or SVG.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace qsdk {

class Graph;

// Op kind -> number of nodes, for every op node.
std::map<std::string, int> op_histogram(const Graph& graph);

// The histogram and the node table, as printed by `qsdk inspect`.
std::string describe_graph(const Graph& graph);

// DOT source: one box per op node ("%id op" and its module path), graph
// inputs and outputs as ellipses, edges labelled with tensor shapes.
std::string graph_to_dot(const Graph& graph);

// Writes `dot` to `path` atomically.
void write_dot(const std::string& dot, const std::filesystem::path& path);
// Renders `dot` with Graphviz's `dot -Tsvg` to `path`, atomically. Throws
// InputError when Graphviz is missing or fails.
void write_svg(const std::string& dot, const std::filesystem::path& path);

}  // namespace qsdk
