// Pictures of a graph: Graphviz DOT source and SVG, shared by `qsdk
// inspect`, the annotation report and the conformance HTML report.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace torch::jit {
struct Node;
struct Value;
}  // namespace torch::jit

namespace qsdk {

class Graph;

// "[1,3,8,8]" for a tensor of known shape, else its type.
std::string value_shape_text(const torch::jit::Value* v);
// Constants and argument lists: not interesting as graph nodes.
bool is_plumbing_node(const torch::jit::Node* n);

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
// Renders `dot` with Graphviz's `dot -Tsvg`: the SVG text, or to `path`
// atomically. Throws InputError when Graphviz is missing or fails.
std::string render_svg(const std::string& dot);
void write_svg(const std::string& dot, const std::filesystem::path& path);

}  // namespace qsdk
