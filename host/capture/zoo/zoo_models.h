// Builders for the zoo's torch::nn models, and the scope helper that gives
// traced nodes their module path.
#pragma once

#include <torch/nn.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capture/zoo/zoo.h"

namespace qsdk::zoo {

using ZooForward = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

struct ZooModel {
  std::shared_ptr<torch::nn::Module> module;  // eval mode, parameters without grad
  ZooForward forward;                         // runs `module` on example inputs
};

// Builds zoo model `name` deterministically from `seed`: weights from
// torch's default init, BatchNorm running statistics set to non-trivial
// values (so folding has something to fold). Throws InputError for an
// unknown name.
ZooModel build_zoo_model(const std::string& name, std::uint64_t seed = 0);

// While alive, nodes the C++ tracer records get `name` appended to their
// scope; capture turns scopes into module paths ("layer1.0.conv1"). A no-op
// when not tracing.
class TraceScope {
 public:
  explicit TraceScope(const std::string& name);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  bool pushed_ = false;
};

// Calls `fn` inside TraceScope(name): `scoped("conv1", [&] { return conv1(x); })`.
template <typename Fn>
auto scoped(const std::string& name, Fn&& fn) {
  TraceScope scope(name);
  return fn();
}

}  // namespace qsdk::zoo
