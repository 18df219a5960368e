#include <torch/csrc/jit/frontend/tracer.h>

#include "capture/zoo/zoo_models.h"

namespace qsdk::zoo {

TraceScope::TraceScope(const std::string& name) {
  if (!torch::jit::tracer::isTracing()) return;
  torch::jit::tracer::getTracingState()->graph->push_scope(name);
  pushed_ = true;
}

TraceScope::~TraceScope() {
  // Pop only what was pushed: tracing may have ended (or been abandoned after
  // an exception) while this scope was alive.
  if (!pushed_ || !torch::jit::tracer::isTracing()) return;
  torch::jit::tracer::getTracingState()->graph->pop_scope();
}

}  // namespace qsdk::zoo
