// What `qsdk inspect` shows a person: an op histogram, the node list with
// ids, module paths and shapes (pictures: graph/graph_drawing.h).
#pragma once

#include <map>
#include <string>

namespace qsdk {

class Graph;

// Op kind -> number of nodes, for every op node.
std::map<std::string, int> op_histogram(const Graph& graph);

// The histogram and the node table, as printed by `qsdk inspect`.
std::string describe_graph(const Graph& graph);

}  // namespace qsdk
