// The integer-exact reference on small hand-written graphs whose results are
// computed by hand: ties at the requantization, saturation, negative zero
// points, per-channel shifts, fused relu, average pooling and real-valued ops.
#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/irparser.h>

#include <memory>
#include <vector>

#include "engine/integer_reference.h"
#include "graph/graph.h"
#include "support/torch_doctest.h"  // first: see there

using namespace qsdk;

namespace {

std::vector<std::int64_t> values(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous().reshape({-1});
  return {c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel()};
}

Graph parse(const std::string& ir) {
  auto g = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(ir, g.get());
  return Graph(g, "test graph");
}

// The integers of the graph's last quantize node.
std::vector<std::int64_t> last_quantized(const Graph& g, const Arithmetic& a, const std::vector<at::Tensor>& in) {
  const IntegerReference r = run_integer_reference(g, a, in);
  REQUIRE(!r.quantized.empty());
  return values(r.quantized.rbegin()->second.values);
}

// x (uint8, scale 1, zero point zx) -> linear with weight w (int8, per
// tensor, scale 1) -> [relu] -> quantize (scale so, zero point zo, dtype).
std::string linear_graph(int zx, double so, int zo, int dtype, bool relu) {
  return R"IR(
graph(%x : Tensor, %w : Tensor):
  %s : float = prim::Constant[value=1.]()
  %zx : int = prim::Constant[value=)IR" +
         std::to_string(zx) + R"IR(]()
  %u8 : int = prim::Constant[value=13]()
  %xq : Tensor = aten::quantize_per_tensor(%x, %s, %zx, %u8)
  %xd : Tensor = aten::dequantize(%xq)
  %wd : Tensor = aten::dequantize(%w)
  %none : NoneType = prim::Constant()
)IR" +
         (relu ? "  %y0 : Tensor = aten::linear(%xd, %wd, %none)\n  %y : Tensor = aten::relu(%y0)\n"
               : "  %y : Tensor = aten::linear(%xd, %wd, %none)\n") +
         R"IR(  %so : float = prim::Constant[value=)IR" + std::to_string(so) + R"IR(]()
  %zo : int = prim::Constant[value=)IR" +
         std::to_string(zo) + R"IR(]()
  %dt : int = prim::Constant[value=)IR" +
         std::to_string(dtype) + R"IR(]()
  %yq : Tensor = aten::quantize_per_tensor(%y, %so, %zo, %dt)
  %out : Tensor = aten::dequantize(%yq)
  return (%out)
)IR";
}

constexpr int kQUInt8 = 13, kQInt8 = 12;

at::Tensor int8_weight(std::vector<float> w, std::vector<std::int64_t> shape) {
  return at::quantize_per_tensor(at::tensor(w).reshape(shape), 1.0, 0, at::kQInt8);
}

Arithmetic rounding(Rounding r, Multiplier m = Multiplier::Float64) {
  Arithmetic a;
  a.rounding = r;
  a.multiplier = m;
  return a;
}

}  // namespace

TEST_CASE("a linear layer's ties at the output scale follow the declared rounding") {
  // x = q - 10 with q = 15, 5, 17: accumulators 5, -5, 7; output scale 2:
  // 2.5, -2.5, 3.5 steps, plus zero point 100.
  const Graph g = parse(linear_graph(10, 2.0, 100, kQUInt8, false));
  const std::vector<at::Tensor> in{at::tensor({5.f, -5.f, 7.f}).reshape({3, 1}), int8_weight({1.f}, {1, 1})};
  CHECK(last_quantized(g, rounding(Rounding::HalfToEven), in) == std::vector<std::int64_t>{102, 98, 104});
  CHECK(last_quantized(g, rounding(Rounding::HalfAwayFromZero), in) == std::vector<std::int64_t>{103, 97, 104});
  CHECK(last_quantized(g, rounding(Rounding::HalfUp), in) == std::vector<std::int64_t>{103, 98, 104});
  // gemmlowp rounds the tie of M = 0.5 up in its high multiply.
  CHECK(last_quantized(g, rounding(Rounding::HalfToEven, Multiplier::Gemmlowp), in) ==
        std::vector<std::int64_t>{103, 98, 104});
}

TEST_CASE("requantized values saturate at the output range, and a fused relu clamps at the zero point") {
  // Accumulators 200 and -200 at output scale 0.5: 400 and -400 steps.
  const Graph g = parse(linear_graph(0, 0.5, 20, kQUInt8, false));
  const std::vector<at::Tensor> in{at::tensor({200.f, 0.f}).reshape({2, 1}), int8_weight({1.f}, {1, 1})};
  CHECK(last_quantized(g, Arithmetic{}, in) == std::vector<std::int64_t>{255, 20});
  const Graph relu = parse(linear_graph(0, 1.0, 20, kQUInt8, true));
  const std::vector<at::Tensor> negative{at::tensor({3.f}).reshape({1, 1}), int8_weight({-2.f}, {1, 1})};
  CHECK(last_quantized(relu, Arithmetic{}, negative) == std::vector<std::int64_t>{20});  // -6 -> relu -> zero point
}

TEST_CASE("int8 outputs with a negative zero point") {
  // Accumulators 3 and -3 (weight -1 on x = 3, -3) at scale 1, zero point -5.
  const Graph g = parse(linear_graph(0, 1.0, -5, kQInt8, false));
  const std::vector<at::Tensor> in{at::tensor({3.f, 0.f, 200.f}).reshape({3, 1}), int8_weight({-1.f}, {1, 1})};
  CHECK(last_quantized(g, Arithmetic{}, in) == std::vector<std::int64_t>{-8, -5, -128});
}

TEST_CASE("per-channel weights: each output channel its own multiplier and fixed-point shift") {
  // Two output channels, weight scales 1 and 0.25, output scale 2: M = 0.5
  // and 0.125. Weights 12 and 48 steps; x = 1.
  const Graph g = parse(linear_graph(0, 2.0, 0, kQUInt8, false));
  const at::Tensor w =
      at::quantize_per_channel(at::tensor({12.f, 12.f}).reshape({2, 1}), at::tensor({1.0, 0.25}, at::kDouble),
                               at::zeros({2}, at::kLong), 0, at::kQInt8);
  const std::vector<at::Tensor> in{at::tensor({1.f}).reshape({1, 1}), w};
  // Channel 0: int weight 12, acc 12, x 0.5 = 6. Channel 1: int weight 48, acc 48, x 0.125 = 6.
  for (Multiplier m : {Multiplier::Float32, Multiplier::Int32Shift, Multiplier::Gemmlowp})
    CHECK(last_quantized(g, rounding(Rounding::HalfToEven, m), in) == std::vector<std::int64_t>{6, 6});
  // x = 5: accumulators 60 and 240, both 30 after their own shifts.
  const std::vector<at::Tensor> five{at::tensor({5.f}).reshape({1, 1}), w};
  CHECK(last_quantized(g, rounding(Rounding::HalfToEven, Multiplier::Gemmlowp), five) ==
        std::vector<std::int64_t>{30, 30});
}

TEST_CASE("average pooling divides the integer sum and rounds as declared") {
  const Graph g = parse(R"IR(
graph(%x : Tensor):
  %s : float = prim::Constant[value=1.]()
  %z : int = prim::Constant[value=0]()
  %u8 : int = prim::Constant[value=13]()
  %xq : Tensor = aten::quantize_per_tensor(%x, %s, %z, %u8)
  %xd : Tensor = aten::dequantize(%xq)
  %k : int[] = prim::Constant[value=[1, 2]]()
  %p : int[] = prim::Constant[value=[0, 0]]()
  %f : bool = prim::Constant[value=0]()
  %t : bool = prim::Constant[value=1]()
  %none : NoneType = prim::Constant()
  %y : Tensor = aten::avg_pool2d(%xd, %k, %k, %p, %f, %t, %none)
  %yq : Tensor = aten::quantize_per_tensor(%y, %s, %z, %u8)
  %out : Tensor = aten::dequantize(%yq)
  return (%out)
)IR");
  // Pairs (1, 2) -> 1.5, (2, 3) -> 2.5, (4, 4) -> 4.
  const std::vector<at::Tensor> in{at::tensor({1.f, 2.f, 2.f, 3.f, 4.f, 4.f}).reshape({1, 1, 1, 6})};
  Arithmetic even, away;
  away.pooling_rounding = Rounding::HalfAwayFromZero;
  CHECK(last_quantized(g, even, in) == std::vector<std::int64_t>{2, 2, 4});
  CHECK(last_quantized(g, away, in) == std::vector<std::int64_t>{2, 3, 4});
}

TEST_CASE("an add is computed in real arithmetic and rounded with the element-wise rounding") {
  const Graph g = parse(R"IR(
graph(%a : Tensor, %b : Tensor):
  %s1 : float = prim::Constant[value=1.]()
  %s2 : float = prim::Constant[value=0.5]()
  %z : int = prim::Constant[value=0]()
  %u8 : int = prim::Constant[value=13]()
  %aq : Tensor = aten::quantize_per_tensor(%a, %s1, %z, %u8)
  %bq : Tensor = aten::quantize_per_tensor(%b, %s2, %z, %u8)
  %ad : Tensor = aten::dequantize(%aq)
  %bd : Tensor = aten::dequantize(%bq)
  %one : int = prim::Constant[value=1]()
  %y : Tensor = aten::add(%ad, %bd, %one)
  %so : float = prim::Constant[value=2.]()
  %yq : Tensor = aten::quantize_per_tensor(%y, %so, %z, %u8)
  %out : Tensor = aten::dequantize(%yq)
  return (%out)
)IR");
  // a = 2, b = 0.5 (q 1): 2.5 / 2 = 1.25 -> 1; a = 4, b = 1: 5 / 2 = 2.5 -> tie.
  const std::vector<at::Tensor> in{at::tensor({2.f, 4.f}), at::tensor({0.5f, 1.f})};
  Arithmetic away;
  away.elementwise_rounding = Rounding::HalfAwayFromZero;
  CHECK(last_quantized(g, Arithmetic{}, in) == std::vector<std::int64_t>{1, 2});
  CHECK(last_quantized(g, away, in) == std::vector<std::int64_t>{1, 3});
  const IntegerReference r = run_integer_reference(g, Arithmetic{}, in);
  CHECK(r.quantized.rbegin()->second.how == "real arithmetic");
  CHECK(r.quantized.rbegin()->second.sources.size() == 2);  // both inputs' quantize nodes
}

TEST_CASE("the reference says where it cannot go") {
  const Graph g = parse(R"IR(
graph(%x : Tensor, %c : bool):
  %y : Tensor = prim::If(%c)
    block0():
      -> (%x)
    block1():
      -> (%x)
  return (%y)
)IR");
  CHECK_THROWS_WITH(run_integer_reference(g, Arithmetic{}, {at::ones({1}), at::ones({1})}),
                    doctest::Contains("straight-line graphs"));
}

TEST_CASE("lists and tuples the interpreter builds itself: a cat of two quantized tensors") {
  const Graph g = parse(R"IR(
graph(%a : Tensor, %b : Tensor):
  %s : float = prim::Constant[value=0.5]()
  %z : int = prim::Constant[value=0]()
  %u8 : int = prim::Constant[value=13]()
  %aq : Tensor = aten::quantize_per_tensor(%a, %s, %z, %u8)
  %bq : Tensor = aten::quantize_per_tensor(%b, %s, %z, %u8)
  %ad : Tensor = aten::dequantize(%aq)
  %bd : Tensor = aten::dequantize(%bq)
  %l : Tensor[] = prim::ListConstruct(%ad, %bd)
  %d : int = prim::Constant[value=0]()
  %y : Tensor = aten::cat(%l, %d)
  %yq : Tensor = aten::quantize_per_tensor(%y, %s, %z, %u8)
  %t : (Tensor, Tensor) = prim::TupleConstruct(%yq, %ad)
  %o1 : Tensor, %o2 : Tensor = prim::TupleUnpack(%t)
  %out : Tensor = aten::dequantize(%o1)
  return (%out)
)IR");
  const std::vector<at::Tensor> in{at::tensor({1.f, 2.f}), at::tensor({3.f})};
  CHECK(last_quantized(g, Arithmetic{}, in) == std::vector<std::int64_t>{2, 4, 6});
}
