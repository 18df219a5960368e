// A progress bar for long loops (calibration batches). On a terminal, one
// line redrawn in place:
//   calibrate [########------------] 3/8  12.3 batch/s  ETA 0:01
// at most ~10 times a second. Elsewhere (CI logs, pipes) plain lines at 0%,
// 25%, 50%, 75% and the end, and never '\r', so logs stay readable.
#pragma once

#include <chrono>
#include <cstddef>
#include <iostream>
#include <string>

namespace qsdk {

class Progress {
 public:
  // Auto: a terminal when `out` is std::cerr (std::cout) and stderr (stdout)
  // is a TTY; tests force one mode.
  enum class Mode { Auto, Terminal, Plain };

  Progress(std::string label, std::size_t total, std::ostream& out = std::cerr, Mode mode = Mode::Auto);
  ~Progress();  // ends an unfinished terminal line, so an error message starts on its own line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void step(std::size_t n = 1);
  // Text shown after the counts from now on ("loss 0.231"): on the redrawn
  // line, and on the plain lines still to come. Empty (the default) shows
  // nothing.
  void set_suffix(std::string suffix) { suffix_ = std::move(suffix); }
  // Final line; says "stopped" when fewer than `total` steps were made.
  void finish();

  bool terminal() const { return terminal_; }

 private:
  using Clock = std::chrono::steady_clock;
  double elapsed() const;
  std::string counts() const;
  std::string rate() const;
  void draw();
  void plain_line(const std::string& suffix);
  void plain_end();

  std::string label_;
  std::string suffix_;
  std::size_t total_;
  std::ostream& out_;
  bool terminal_;
  std::size_t done_ = 0;
  std::size_t quarter_ = 0;  // plain mode: quarters printed so far
  std::size_t last_width_ = 0;
  bool finished_ = false;
  Clock::time_point start_;
  Clock::time_point last_draw_;
};

}  // namespace qsdk
