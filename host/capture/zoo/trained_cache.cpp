// The cache of the zoo's trained models: a torch::serialize archive of the
// module's state plus the recipe text it was trained by.
#include <torch/torch.h>

#include <iostream>

#include "capture/zoo/zoo_internal.h"
#include "common/atomic_file.h"

namespace qsdk::zoo::detail {
namespace {

bool load_trained_state(torch::nn::Module& module, const std::filesystem::path& path, const std::string& recipe,
                        const std::string& model) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return false;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    c10::IValue saved;
    if (!archive.try_read("qsdk_recipe", saved) || !saved.isString() || saved.toStringRef() != recipe) return false;
    module.load(archive);
    return true;
  } catch (const c10::Error&) {
    std::cerr << "zoo:" << model << ": ignoring unreadable cache " << path.string() << "; retraining\n";
    return false;
  }
}

void save_trained_state(const torch::nn::Module& module, const std::filesystem::path& path, const std::string& recipe) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  archive.write("qsdk_recipe", c10::IValue(recipe));
  write_file_atomically(path, [&](std::ostream& out) { archive.save_to(out); });
}

}  // namespace

void load_or_train(torch::nn::Module& module, const std::filesystem::path& path, const std::string& recipe,
                   const std::string& name, const std::string& what, const std::function<void()>& train) {
  if (!load_trained_state(module, path, recipe, name)) {
    std::cerr << "zoo:" << name << ": training on " << what << " once (" << recipe << "); cached at " << path.string()
              << "\n";
    train();
    save_trained_state(module, path, recipe);
  }
  for (auto& param : module.parameters()) param.set_requires_grad(false);
  module.eval();
}

}  // namespace qsdk::zoo::detail
