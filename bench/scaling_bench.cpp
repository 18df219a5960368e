// qsdk_bench_scaling [--nodes N]... [--kind chain|residual]... [--backend B]... [--repeat R]
//
// How qsdk's pipeline cost grows with graph size (bench/run.sh, issue 12
// item 3). Builds synthetic graphs directly as torch::jit::Graph (no file,
// no capture): a chain of linear -> relu, or residual blocks
// linear -> relu -> linear -> add(block input) -> relu, on [1, 16] tensors
// with their own 16x16 weights, every value typed as capture would type it.
// Times annotate, prepare, convert and lower (calibration on one batch in
// between, untimed) and reports seconds per op node at each size; medians of
// R runs (one run at 10,000 nodes and above). Prints one JSON object.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "annotate/annotator.h"
#include "bench_timing.h"
#include "convert/convert.h"
#include "convert/lowering.h"
#include "graph/graph.h"
#include "plugins/plugin_registry.h"
#include "prepare/prepare.h"

using qsdk::bench::median;
using qsdk::bench::seconds_of;

namespace {

constexpr std::int64_t kWidth = 16;

// A graph of about `target` op nodes.
std::shared_ptr<torch::jit::Graph> synthetic(const std::string& kind, std::int64_t target) {
  using namespace torch::jit;
  torch::manual_seed(0);
  auto g = std::make_shared<Graph>();
  const auto type = c10::TensorType::create(torch::zeros({1, kWidth}))->withRequiresGrad(false);
  Value* x = g->addInput("x");
  x->setType(type);
  auto op = [&](c10::Symbol kind_symbol, std::vector<NamedValue> args) {
    Value* v = g->insert(kind_symbol, std::move(args));
    v->setType(type);
    return v;
  };
  // Weights scaled so activations keep a finite range through 100,000
  // nodes: about unit gain along a chain; residual branches nearly zero
  // (growth about 1 + 1e-4 per block), since x + f(x) compounds.
  auto linear = [&](Value* in, double gain = 1.0) {
    Value* w = g->insertConstant(torch::randn({kWidth, kWidth}) * (gain / std::sqrt(double(kWidth))));
    Value* b = g->insertConstant(torch::randn({kWidth}) * (0.01 * gain));
    return op(aten::linear, {in, w, b});
  };
  std::int64_t nodes = 0;
  Value* cur = x;
  while (nodes < target) {
    if (kind == "chain") {
      cur = op(aten::relu, {linear(cur)});
      nodes += 2;
    } else {
      Value* h = op(aten::relu, {linear(cur)});
      h = linear(h, 1e-4);
      cur = op(aten::relu, {op(aten::add, {h, cur})});
      nodes += 5;
    }
  }
  g->registerOutput(cur);
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes{1000, 10000, 100000};
  std::vector<std::string> kinds{"chain", "residual"};
  std::vector<std::string> backends{"x86-int8"};
  int repeat = 3;
  int threads = 2;
  CLI::App app{"Pipeline time per node on synthetic graphs; prints JSON."};
  app.add_option("--nodes", sizes, "Graph sizes (op nodes)")->capture_default_str();
  app.add_option("--kind", kinds, "chain, residual")->capture_default_str();
  app.add_option("--backend", backends, "Backends")->capture_default_str();
  app.add_option("--repeat", repeat, "Runs per size below 10,000 nodes")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "Torch intra-op threads")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    at::set_num_threads(threads);
    torch::NoGradGuard no_grad;
    qsdk::PluginRegistry registry;
    registry.load_directory(qsdk::bundled_plugin_dir());
    nlohmann::json result{{"tool", "qsdk"}, {"threads", at::get_num_threads()}, {"width", kWidth}};
    const std::vector<at::Tensor> input{torch::randn({1, kWidth})};
    for (const auto& name : backends) {
      const auto backend = registry.instantiate(name, {});
      for (const auto& kind : kinds) {
        for (const auto size : sizes) {
          const int runs = size >= 10000 ? 1 : repeat;
          std::map<std::string, std::vector<double>> stages;
          std::vector<double> total;
          std::size_t nodes = 0;
          for (int run = 0; run < runs; ++run) {
            std::cerr << "bench: scaling " << name << " " << kind << " " << size << " run " << run + 1 << "/" << runs
                      << "\n";
            qsdk::Graph graph(synthetic(kind, size), "synthetic:" + kind);
            nodes = graph.nodes().size();
            qsdk::Annotation annotation;
            double sum = 0;
            auto timed = [&](const std::string& stage, const std::function<void()>& work) {
              const double s = seconds_of(work);
              stages[stage].push_back(s);
              sum += s;
            };
            timed("annotate", [&] { annotation = qsdk::annotate(graph, *backend); });
            std::unique_ptr<qsdk::PreparedModel> prepared;
            timed("prepare", [&] { prepared = std::make_unique<qsdk::PreparedModel>(graph, annotation); });
            prepared->calibrate(input);
            timed("convert", [&] { qsdk::convert_to_reference(*prepared); });
            timed("lower", [&] { qsdk::lower(graph, backend->lowering); });
            total.push_back(sum);
          }
          nlohmann::json r{{"kind", kind},
                           {"backend", name},
                           {"target_nodes", size},
                           {"nodes", nodes},
                           {"runs", runs},
                           {"total_s", median(total)},
                           {"per_node_s", median(total) / double(nodes)}};
          for (const auto& [stage, times] : stages) {
            r["stages_s"][stage] = median(times);
            r["stages_per_node_s"][stage] = median(times) / double(nodes);
          }
          result["results"].push_back(r);
          std::cerr << "bench: scaling " << kind << " " << nodes << " nodes: " << median(total) << " s, "
                    << 1e6 * median(total) / double(nodes) << " us/node\n";
        }
      }
    }
    std::cout << result.dump(2) << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qsdk_bench_scaling: error: " << e.what() << "\n";
    return 2;
  }
}
