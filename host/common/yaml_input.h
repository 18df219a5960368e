// Reading user YAML (configs, specs, overrides) with errors users can act
// on: every message names file:line:column, unknown keys get a "did you
// mean", wrong types say what was expected. yaml-cpp does the parsing.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"

namespace qsdk::yaml {

// "file.yaml:12:5" (1-based), or just `source` when the node has no mark.
std::string where(const std::string& source, const YAML::Node& node);

// Loads a YAML file. InputError for a missing/unreadable file, a syntax
// error (at its line:column), duplicate keys in a mapping, or non-UTF-8 text.
YAML::Node load_file(const std::filesystem::path& path);
// Same for text already read (`source` names it in messages).
YAML::Node load_text(const std::string& text, const std::string& source);

// Levenshtein distance, for suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);
// The closest of `known` to `word` when it is close enough to be a typo, else "".
std::string closest(const std::string& word, const std::vector<std::string>& known);

[[noreturn]] void unknown_key(const std::string& source, const YAML::Node& key, const std::vector<std::string>& known);
// Throws unknown_key for the first key of `map` not in `known`; InputError
// when `map` is not a mapping (`what` names it: "the config", "a spec").
void check_keys(const std::string& source, const YAML::Node& map, const std::vector<std::string>& known,
                const std::string& what);

template <typename T>
T scalar(const std::string& source, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) throw InputError(where(source, n), what + " must be a scalar");
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    throw InputError(where(source, n), what + " has the wrong type: '" + n.Scalar() + "'");
  }
}

// A path given at `n`, resolved against `base_dir` (unless absolute or
// `base_dir` is empty) and made absolute, so it means the same wherever the
// document is written again (qsdk run --isolate hands the merged config to
// its children as a file).
std::filesystem::path absolute_path(const std::string& source, const YAML::Node& n, const std::string& what,
                                    const std::filesystem::path& base_dir);

// A string or a list of strings.
std::vector<std::string> string_list(const std::string& source, const YAML::Node& n, const std::string& what);

}  // namespace qsdk::yaml
