// The exported ONNX model decoded into the SDK's plain EngineModel
// (qsdk/engine.h): what a backend's engine receives besides the file itself,
// so an engine without an ONNX parser (a C model of the hardware) can run
// it. Torch-free.
#pragma once

#include <string>

#include "qsdk/engine.h"

namespace qsdk {

// Nodes in file order (topological, as exported), every initializer, the
// graph's inputs (initializers excluded) and outputs. `path` is recorded as
// the model's file. Throws InputError naming `where` when the bytes are not
// a model or hold a tensor type the SDK has no ElementType for.
EngineModel engine_model_from_onnx(const std::string& bytes, const std::string& path, const std::string& where);

}  // namespace qsdk
