#include "common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace qsdk {

namespace {

bool is_tty(const std::ostream& out) {
  if (&out == &std::cerr || &out == &std::clog) return isatty(fileno(stderr));
  if (&out == &std::cout) return isatty(fileno(stdout));
  return false;
}

std::string clock_str(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  std::ostringstream o;
  if (s >= 3600)
    o << s / 3600 << ':' << std::setw(2) << std::setfill('0') << (s / 60) % 60;
  else
    o << s / 60;
  o << ':' << std::setw(2) << std::setfill('0') << s % 60;
  return o.str();
}

constexpr int kBarWidth = 20;
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

}  // namespace

Progress::Progress(std::string label, std::size_t total, std::ostream& out, Mode mode)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      terminal_(mode == Mode::Terminal || (mode == Mode::Auto && is_tty(out))),
      start_(Clock::now()),
      last_draw_(start_) {
  if (terminal_) {
    draw();
  } else if (total_ > 0) {
    out_ << label_ << ": " << counts() << std::endl;
  }
}

Progress::~Progress() {
  if (terminal_ && !finished_) out_ << std::endl;
}

double Progress::elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

std::string Progress::counts() const {
  const auto pct = total_ ? std::min<std::size_t>(100, done_ * 100 / total_) : 100;
  return std::to_string(done_) + "/" + std::to_string(total_) + " (" + std::to_string(pct) + "%)";
}

std::string Progress::rate() const {
  const double t = elapsed();
  std::ostringstream o;
  if (done_ == 0 || t <= 0)
    o << "-- batch/s";
  else
    o << std::fixed << std::setprecision(1) << done_ / t << " batch/s";
  return o.str();
}

void Progress::draw() {
  const double frac = total_ ? std::min(1.0, double(done_) / double(total_)) : 1.0;
  const int filled = static_cast<int>(frac * kBarWidth);
  std::ostringstream line;
  line << label_ << " [" << std::string(filled, '#') << std::string(kBarWidth - filled, '-') << "] " << done_ << '/'
       << total_ << "  " << rate();
  const double t = elapsed();
  if (finished_) {
    line << "  in " << clock_str(t);
  } else if (done_ > 0 && done_ < total_ && t > 0) {
    line << "  ETA " << clock_str(t / done_ * (total_ - done_));
  } else if (done_ < total_) {
    line << "  ETA --:--";
  }
  if (!suffix_.empty()) line << "  " << suffix_;
  std::string s = line.str();
  // Blank out what is left of a longer previous line.
  const std::size_t width = s.size();
  if (width < last_width_) s += std::string(last_width_ - width, ' ');
  last_width_ = width;
  out_ << '\r' << s << std::flush;
  last_draw_ = Clock::now();
}

void Progress::plain_line(const std::string& suffix) {
  out_ << label_ << ": " << counts() << suffix << (suffix_.empty() ? "" : "  " + suffix_) << std::endl;
}

void Progress::plain_end() {
  std::ostringstream s;
  s << label_ << ": " << (done_ < total_ ? "stopped at " : "") << counts() << " in " << std::fixed
    << std::setprecision(1) << elapsed() << " s, " << rate();
  if (!suffix_.empty()) s << "  " << suffix_;
  out_ << s.str() << std::endl;
}

void Progress::step(std::size_t n) {
  if (finished_) return;
  done_ += n;
  if (terminal_) {
    if (done_ >= total_ || Clock::now() - last_draw_ >= kRedrawEvery) draw();
    return;
  }
  const std::size_t q = total_ ? std::min<std::size_t>(4, done_ * 4 / total_) : 4;
  if (q <= quarter_) return;
  quarter_ = q;
  if (q == 4)
    plain_end();
  else
    plain_line("  " + rate());
}

void Progress::finish() {
  if (finished_) return;
  if (terminal_) {
    finished_ = true;
    draw();
    out_ << std::endl;
    return;
  }
  if (quarter_ < 4) plain_end();
  finished_ = true;
}

}  // namespace qsdk
