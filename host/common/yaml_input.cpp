#include "common/yaml_input.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "common/atomic_file.h"

namespace qsdk::yaml {
namespace {

// Position of the first control character YAML does not allow in a
// document (all of C0 but tab, LF and CR; DEL), or npos. yaml-cpp reads them
// into scalars, and a NUL in a key then prints as text that is not UTF-8.
std::size_t control_char_at(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return i;
  }
  return std::string::npos;
}

// Nodes a document may expand to. Aliases let a few hundred bytes name
// billions of nodes ("a billion laughs"), which every reader would then
// walk; real configs, specs and backend descriptions have a few thousand.
constexpr std::size_t kMaxNodes = 1000000;

// yaml-cpp keeps the last of duplicate keys silently; a config with two
// `backends:` is almost certainly a mistake, so refuse it. Also bounds the
// document's depth and its size with aliases expanded.
void reject_duplicate_keys(const std::string& source, const YAML::Node& n, int depth, std::size_t& nodes) {
  if (depth > 64) throw InputError(where(source, n), "nesting deeper than 64 levels");
  if (++nodes > kMaxNodes)
    throw InputError(where(source, n), "more than " + std::to_string(kMaxNodes) +
                                           " nodes with aliases expanded (aliases nested too deep)");
  if (n.IsScalar()) {
    // Escapes ("\0", "\x01") put control characters into scalars too.
    if (const auto bad = control_char_at(n.Scalar()); bad != std::string::npos)
      throw InputError(where(source, n), "control character " +
                                             std::to_string(static_cast<unsigned char>(n.Scalar()[bad])) +
                                             " in a value is not allowed");
  } else if (n.IsMap()) {
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (kv.first.IsScalar() && !seen.insert(kv.first.Scalar()).second)
        throw InputError(where(source, kv.first), "duplicate key '" + kv.first.Scalar() + "'");
      reject_duplicate_keys(source, kv.first, depth + 1, nodes);
      reject_duplicate_keys(source, kv.second, depth + 1, nodes);
    }
  } else if (n.IsSequence()) {
    for (const auto& item : n) reject_duplicate_keys(source, item, depth + 1, nodes);
  }
}

// Position of the first byte that is not valid UTF-8, or npos.
std::size_t invalid_utf8_at(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return i;
    i += len;
  }
  return std::string::npos;
}

}  // namespace

std::string where(const std::string& source, const YAML::Node& node) {
  const auto m = node.Mark();
  if (m.is_null()) return source;
  return source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

YAML::Node load_text(const std::string& text, const std::string& source) {
  if (const auto bad = invalid_utf8_at(text); bad != std::string::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    throw InputError(source + ":" + std::to_string(line), "not UTF-8 text (byte " + std::to_string(bad) + ")");
  }
  if (const auto bad = control_char_at(text); bad != std::string::npos) {
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    throw InputError(source + ":" + std::to_string(line),
                     "control character " + std::to_string(static_cast<unsigned char>(text[bad])) + " (byte " +
                         std::to_string(bad) + ") is not allowed in YAML");
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1),
                     "YAML syntax error: " + e.msg);
  }
  std::size_t nodes = 0;
  reject_duplicate_keys(source, root, 0, nodes);
  return root;
}

YAML::Node load_file(const std::filesystem::path& path) {
  return load_text(read_file(path, "YAML file"), path.string());
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(3, word.size() / 3);  // suggest only close names
  for (const auto& cand : known)
    if (auto d = edit_distance(word, cand); d < best_d) best_d = d, best = cand;
  return best;
}

void unknown_key(const std::string& source, const YAML::Node& key, const std::vector<std::string>& known) {
  const std::string k = key.Scalar();
  const std::string best = closest(k, known);
  std::string list;
  for (const auto& cand : known) list += (list.empty() ? "" : ", ") + cand;
  throw InputError(where(source, key), "unknown key '" + k + "'" +
                                           (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                                           "; expected one of: " + list);
}

void check_keys(const std::string& source, const YAML::Node& map, const std::vector<std::string>& known,
                const std::string& what) {
  if (!map.IsMap()) throw InputError(where(source, map), what + " must be a mapping");
  for (const auto& kv : map)
    if (std::find(known.begin(), known.end(), kv.first.Scalar()) == known.end()) unknown_key(source, kv.first, known);
}

std::vector<std::string> string_list(const std::string& source, const YAML::Node& n, const std::string& what) {
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence()) throw InputError(where(source, n), what + " must be a string or a list of strings");
  std::vector<std::string> out;
  for (const auto& item : n) out.push_back(scalar<std::string>(source, item, what));
  return out;
}

std::filesystem::path absolute_path(const std::string& source, const YAML::Node& n, const std::string& what,
                                    const std::filesystem::path& base_dir) {
  const std::filesystem::path p = scalar<std::string>(source, n, what);
  return std::filesystem::absolute(p.is_absolute() || base_dir.empty() ? p : base_dir / p).lexically_normal();
}

}  // namespace qsdk::yaml
