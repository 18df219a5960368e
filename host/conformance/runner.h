// `qsdk conformance`: every spec x backend pair, each in a child process of
// this executable (LibTorch's quantized engine is process-global), at most
// `jobs` at a time; results are collected by case, so a parallel run
// reports exactly what a serial one does.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "conformance/reports.h"
#include "conformance/spec.h"

namespace qsdk {
class PluginRegistry;
}

namespace qsdk::conformance {

struct RunOptions {
  std::vector<std::filesystem::path> spec_paths;  // files or directories
  std::vector<std::string> backends;              // empty: every loaded backend
  std::vector<std::string> filters;               // globs over spec names; empty: all
  int jobs = 0;                                   // 0: one per CPU
  int threads_per_case = 1;                       // LibTorch threads in each child
  std::optional<std::pair<int, int>> shard;       // (K, N), 1 <= K <= N
  std::filesystem::path output_dir = "conformance-report";
  std::filesystem::path models_dir;
  bool bless = false;
  bool graphs = true;                          // graph pictures in the HTML report
  std::vector<std::string> child_global_args;  // e.g. --plugin-dir DIR, passed before "conformance"
  double case_timeout_seconds = 0;             // kill a case's process after this long (0: never)
  int case_memory_mb = 0;                      // address-space limit of a case's process (0: none)
  // --verify-engine: every case checks the engine alone (spec.h, EngineExpect::only).
  std::optional<EngineExpect> verify_engine;
};

// "K/N" -> (K, N); InputError naming `where` otherwise.
std::pair<int, int> parse_shard(const std::string& text);

// Which of `count` cases (in spec x backend order) shard K/N runs: every
// index i with i % N == K - 1.
bool in_shard(std::size_t index, const std::pair<int, int>& shard);

// Runs the suite, prints progress, the matrix and failures to `out`, writes
// the reports (and blessed specs). Returns the exit code: 0 all passed or
// skipped, 1 a check failed or a case errored. InputError for bad specs or
// options (before anything runs). `result`, when given, receives the report.
int run_conformance(const PluginRegistry& plugins, const RunOptions& options, std::ostream& out,
                    RunReport* result = nullptr);

// The hidden per-case entry point the children run: measures one case and
// writes its measurement JSON to `output` atomically.
struct CaseOptions {
  std::filesystem::path spec_file;
  std::string spec_name;
  std::string backend;
  std::filesystem::path output;
  std::filesystem::path models_dir;
  bool graphs = true;
  std::optional<EngineExpect> verify_engine;
};
void run_one_case(const PluginRegistry& plugins, const CaseOptions& options);

// `qsdk conformance merge`: shards' results.json into one set of reports.
int merge_results(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& output_dir,
                  std::ostream& out);

}  // namespace qsdk::conformance
