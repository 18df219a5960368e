// qsdk_bench_rule_validation [--rules N]... [--repeat R]
//
// Load-time cost of rule validation (issue 17 item 3): validate_backend with
// LibTorch's op registry on N distinct valid rules and on N copies of one
// rule (every copy a problem), plus the rule hash every load computes.
// Medians of R runs; prints one JSON object. Not part of bench/run.sh (no
// PyTorch counterpart to compare with): the figure is absolute, the goal is
// 100,000 rules well under a second.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench_timing.h"
#include "plugins/backend_yaml.h"
#include "plugins/rule_validation.h"

using qsdk::bench::median;
using qsdk::bench::seconds_of;

namespace {

qsdk::Rule conv_rule(const std::string& name, int priority) {
  using namespace qsdk;
  Rule r(name);
  r.match({"aten::conv2d", "aten::relu"})
      .input(spec::uint8_affine())
      .weight(spec::int8_symmetric_per_channel(0))
      .bias(spec::derived_bias())
      .output(spec::uint8_affine())
      .with_priority(priority);
  return r;
}

qsdk::Backend backend_with(std::size_t rules, bool distinct) {
  qsdk::Backend b;
  b.name = "bench";
  b.version = "1";
  for (std::size_t i = 0; i < rules; ++i)
    b.rules.push_back(distinct ? conv_rule("conv_" + std::to_string(i), static_cast<int>(i)) : conv_rule("conv", 0));
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  int repeat = 3;
  CLI::App app{"Rule validation time by rule count; prints JSON."};
  app.add_option("--rules", sizes, "Rule counts (default 1000 10000 100000)");
  app.add_option("--repeat", repeat, "Runs per size")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (sizes.empty()) sizes = {1000, 10000, 100000};

  nlohmann::json out{{"tool", "qsdk_bench_rule_validation"}, {"results", nlohmann::json::array()}};
  for (const std::size_t n : sizes)
    for (const bool distinct : {true, false}) {
      const qsdk::Backend b = backend_with(n, distinct);
      std::vector<double> validate, hash;
      std::size_t problems = 0, message_bytes = 0;
      for (int r = 0; r < repeat; ++r) {
        validate.push_back(seconds_of([&] {
          const auto p = qsdk::validate_backend(b);
          problems = p.size();
          message_bytes = 0;
          for (const auto& s : p) message_bytes += s.size();
        }));
        if (distinct) hash.push_back(seconds_of([&] { (void)qsdk::rule_hash(b); }));
      }
      nlohmann::json row{{"rules", n},
                         {"kind", distinct ? "distinct" : "identical"},
                         {"validate_seconds", median(validate)},
                         {"problems_listed", problems},
                         {"message_bytes", message_bytes}};
      if (distinct) row["rule_hash_seconds"] = median(hash);
      out["results"].push_back(row);
    }
  std::cout << out.dump(2) << "\n";
  return 0;
}
