#include "prepare/qparams_report.h"

#include <iomanip>
#include <sstream>

#include "graph/graph.h"
#include "prepare/prepare.h"

namespace qsdk {
namespace {

std::string number(double v) {
  std::ostringstream o;
  o << std::setprecision(6) << v;
  return o.str();
}

// "0.0123" per-tensor; "[0.001 .. 0.034] x64" per-channel.
std::string summary(const std::vector<double>& v) {
  if (v.size() == 1) return number(v[0]);
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return "[" + number(*lo) + " .. " + number(*hi) + "] x" + std::to_string(v.size());
}

}  // namespace

std::string qparams_table(const PreparedModel& p) {
  std::ostringstream out;
  out << std::left << std::setw(6) << "SLOT" << std::setw(12) << "KIND" << std::setw(8) << "DTYPE" << std::setw(18)
      << "RANGE" << std::setw(34) << "SCALE" << std::setw(14) << "ZERO POINT"
      << "EDGES\n";
  for (const auto& s : p.slots()) {
    std::string scale = "-", zp = "-";
    if (s.observer && s.observer->has_data()) {
      const QParams q = s.observer->qparams();
      scale = summary(q.scale);
      std::vector<double> zps(q.zero_point.begin(), q.zero_point.end());
      zp = summary(zps);
    } else if (s.kind == SlotKind::Dynamic) {
      scale = zp = "(run time)";
    } else {
      scale = zp = "(no data)";
    }
    out << std::setw(6) << s.id << std::setw(12) << to_string(s.kind) << std::setw(8) << to_string(s.spec.dtype)
        << std::setw(18) << ("[" + std::to_string(s.spec.quant_min) + ", " + std::to_string(s.spec.quant_max) + "]")
        << std::setw(34) << scale << std::setw(14) << zp << s.label << "\n";
  }
  out << "\n"
      << p.slots().size() << " observer slots, " << p.observe_nodes() << " observe nodes, " << p.derived().size()
      << " derived (bias) specs\n";
  return out.str();
}

}  // namespace qsdk
