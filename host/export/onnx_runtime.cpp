#include "export/onnx_runtime.h"

#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/child_process.h"
#include "common/error.h"
#include "data/data_source.h"

namespace qsdk {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr auto kOrtTimeout = std::chrono::minutes(10);

fs::path find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

at::ScalarType dtype_of(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "int8") return at::kChar;
  if (name == "uint8") return at::kByte;
  if (name == "int32") return at::kInt;
  if (name == "int64") return at::kLong;
  throw std::runtime_error("ort_run: unexpected output type " + name);
}

}  // namespace

ScratchDir::ScratchDir(const fs::path& parent) {
  const fs::path base = parent.empty() ? fs::temp_directory_path() : parent;
  std::string pattern = (base / "qsdk-ort-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw InputError(base.string(), "cannot create a scratch directory for ONNX Runtime");
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::optional<OrtInstall> find_onnx_runtime(std::string* why) {
  auto missing = [&](const std::string& cause) -> std::optional<OrtInstall> {
    if (why) *why = cause;
    return std::nullopt;
  };
  OrtInstall ort;
  ort.node = find_on_path("node");
  if (ort.node.empty()) return missing("node is not installed (scripts/setup.sh installs it)");
  const char* dir = std::getenv("QSDK_ORT_DIR");
  ort.packages = dir && *dir ? fs::path(dir) : qsdk_data_dir() / "onnxruntime-1.30.0" / "node_modules";
  std::error_code ec;
  if (!fs::is_directory(ort.packages / "onnxruntime-node", ec))
    return missing("ONNX Runtime (npm onnxruntime-node 1.30.0) is not in " + ort.packages.string() +
                   ": run scripts/setup.sh, or set QSDK_ORT_DIR");
  // Installed: <prefix>/share/qsdk/tools; in the build tree the same layout.
  ort.runner = self_executable().parent_path().parent_path() / "share" / "qsdk" / "tools" / "ort_run.js";
  if (const char* r = std::getenv("QSDK_ORT_RUNNER"); r && *r) ort.runner = r;
  if (!fs::is_regular_file(ort.runner, ec))
    return missing("the ONNX Runtime runner " + ort.runner.string() + " is missing");
  return ort;
}

OrtRunResult run_onnx_runtime(const fs::path& model, const std::vector<std::string>& input_names,
                              const std::vector<at::Tensor>& inputs, const OrtRunOptions& options,
                              const fs::path& work_dir) {
  std::string why;
  const auto ort = find_onnx_runtime(&why);
  if (!ort) throw InputError(model.string(), why);
  if (input_names.size() != inputs.size())
    throw std::logic_error("run_onnx_runtime: " + std::to_string(inputs.size()) + " inputs for " +
                           std::to_string(input_names.size()) + " names");
  const ScratchDir scratch_dir(work_dir);
  struct {
    fs::path path;
  } scratch{scratch_dir.path()};
  json request{{"model", fs::absolute(model).string()},
               {"optimization", options.optimize ? "all" : "disabled"},
               {"threads", options.threads},
               {"outputs_dir", scratch.path.string()},
               {"repeat", options.repeat},
               {"inputs", json::array()}};
  if (!options.fetch.empty()) request["fetch"] = options.fetch;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    // Token ids and masks keep their integer type (bool travels as one byte).
    const auto dtype = inputs[i].scalar_type();
    const bool integral = dtype == at::kLong || dtype == at::kInt || dtype == at::kBool;
    const at::Tensor t = (integral ? inputs[i] : inputs[i].to(at::kFloat)).contiguous();
    const std::string type = dtype == at::kLong   ? "int64"
                             : dtype == at::kInt  ? "int32"
                             : dtype == at::kBool ? "bool"
                                                  : "float32";
    const fs::path file = scratch.path / ("input" + std::to_string(i) + ".bin");
    std::ofstream(file, std::ios::binary).write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.nbytes()));
    request["inputs"].push_back(
        {{"name", input_names[i]}, {"dims", t.sizes().vec()}, {"type", type}, {"file", file.string()}});
  }
  const fs::path request_file = scratch.path / "request.json";
  std::ofstream(request_file) << request.dump();

  ChildJob job;
  job.argv = {ort->node.string(), ort->runner.string(), request_file.string()};
  job.stdout_file = scratch.path / "stdout.json";
  job.stderr_file = scratch.path / "stderr.txt";
  job.timeout = kOrtTimeout;
  job.env = {{"QSDK_ORT_DIR", ort->packages.string()}};
  const ChildResult run = run_child(job);
  if (!run.ok()) {
    std::string message = tail_of_file(job.stderr_file, 1000);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw InputError(model.string(), "ONNX Runtime failed (" + run.describe() + ")" +
                                         (message.empty() ? std::string() : ": " + message));
  }
  std::ifstream in(job.stdout_file);
  const json response = json::parse(in);
  OrtRunResult result;
  for (const auto& o : response.at("outputs")) {
    const auto dims = o.at("dims").get<std::vector<std::int64_t>>();
    at::Tensor t = at::empty(dims, at::TensorOptions().dtype(dtype_of(o.at("type").get<std::string>())));
    std::ifstream data(o.at("file").get<std::string>(), std::ios::binary);
    data.read(static_cast<char*>(t.data_ptr()), std::streamsize(t.nbytes()));
    if (data.gcount() != std::streamsize(t.nbytes()))
      throw std::runtime_error("ort_run: output " + o.at("name").get<std::string>() + " is truncated");
    result.names.push_back(o.at("name").get<std::string>());
    result.outputs.push_back(std::move(t));
  }
  if (response.contains("latency_ms")) result.latency_ms = response["latency_ms"].get<std::vector<double>>();
  return result;
}

}  // namespace qsdk
