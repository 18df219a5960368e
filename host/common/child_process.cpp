#include "common/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/interrupt.h"

namespace qsdk {
namespace {

using Clock = std::chrono::steady_clock;

struct Running {
  std::size_t index;
  pid_t pid;
  Clock::time_point start;
  std::optional<Clock::time_point> deadline;
  bool timed_out = false;
};

int open_output(const std::filesystem::path& p) {
  if (p.empty()) return open("/dev/null", O_WRONLY | O_CLOEXEC);
  return open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

// fork + exec; the child gets its own process group so a timeout kills
// everything it started.
pid_t spawn(const ChildJob& job, std::string& error) {
  if (job.argv.empty()) {
    error = "empty command";
    return -1;
  }
  const int out = open_output(job.stdout_file);
  const int err = open_output(job.stderr_file);
  if (out < 0 || err < 0) {
    error = "cannot open output file: " + std::string(std::strerror(errno));
    if (out >= 0) close(out);
    if (err >= 0) close(err);
    return -1;
  }
  std::vector<char*> argv;
  for (const auto& a : job.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // A pipe closed on exec tells the parent whether exec worked.
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    error = "pipe failed: " + std::string(std::strerror(errno));
    close(out);
    close(err);
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    // Check the parent after asking: it may have died before the prctl.
    if (job.die_with_parent && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)) _exit(127);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    for (const auto& [k, v] : job.env) setenv(k.c_str(), v.c_str(), 1);
    if (job.memory_limit_bytes) {
      const rlimit limit{*job.memory_limit_bytes, *job.memory_limit_bytes};
      setrlimit(RLIMIT_AS, &limit);
    }
    execv(argv[0], argv.data());
    const int e = errno;
    (void)!write(status_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(out);
  close(err);
  close(status_pipe[1]);
  if (pid < 0) {
    error = "fork failed: " + std::string(std::strerror(errno));
    close(status_pipe[0]);
    return -1;
  }
  int exec_errno = 0;
  const auto n = read(status_pipe[0], &exec_errno, sizeof exec_errno);
  close(status_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    waitpid(pid, nullptr, 0);
    error = "cannot run " + job.argv[0] + ": " + std::strerror(exec_errno);
    return -1;
  }
  // Our own group too: a Ctrl-C (which reaches only the foreground group)
  // must not leave the child running.
  setpgid(pid, pid);
  return pid;
}

void fill(ChildResult& r, int status) {
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
}

}  // namespace

std::string ChildResult::describe() const {
  if (!started) return "not started: " + error;
  if (timed_out) return "timed out after " + std::to_string(static_cast<long>(seconds + 0.5)) + " s (killed)";
  if (signal != 0) {
    const char* name = strsignal(signal);
    return "killed by signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : std::string());
  }
  return "exit code " + std::to_string(exit_code);
}

ChildResult run_child(const ChildJob& job) { return run_children({job}, 1).front(); }

std::vector<ChildResult> run_children(const std::vector<ChildJob>& jobs, int parallel,
                                      const std::function<void(std::size_t, const ChildResult&)>& on_done) {
  std::vector<ChildResult> results(jobs.size());
  std::map<pid_t, Running> running;
  std::map<pid_t, int> interrupt_slots;  // so a Ctrl-C of ours kills them too
  std::size_t next = 0;
  if (parallel < 1) parallel = 1;
  auto finish = [&](std::size_t index) {
    if (on_done) on_done(index, results[index]);
  };
  while (next < jobs.size() || !running.empty()) {
    while (next < jobs.size() && static_cast<int>(running.size()) < parallel) {
      const std::size_t i = next++;
      std::string error;
      const auto start = Clock::now();
      const pid_t pid = spawn(jobs[i], error);
      if (pid < 0) {
        results[i].started = false;
        results[i].error = error;
        finish(i);
        continue;
      }
      results[i].started = true;
      interrupt_slots[pid] = interrupt::register_child_group(pid);
      Running r{i, pid, start, std::nullopt};
      if (jobs[i].timeout) r.deadline = start + *jobs[i].timeout;
      running.emplace(pid, r);
    }
    if (running.empty()) continue;
    // Each of our own children by pid: never reap a process someone else started.
    bool reaped = false;
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      const pid_t done = waitpid(it->first, &status, WNOHANG);
      if (done == 0 || (done < 0 && errno == EINTR)) {
        ++it;
        continue;
      }
      ChildResult& res = results[it->second.index];
      if (done < 0) {
        res.error = "lost child process";
        res.signal = SIGKILL;
      } else {
        fill(res, status);
      }
      interrupt::unregister_child_group(interrupt_slots[it->first]);
      interrupt_slots.erase(it->first);
      res.timed_out = it->second.timed_out;
      res.seconds = std::chrono::duration<double>(Clock::now() - it->second.start).count();
      const std::size_t index = it->second.index;
      it = running.erase(it);
      finish(index);
      reaped = true;
    }
    if (reaped) continue;
    const auto now = Clock::now();
    for (auto& [pid, r] : running)
      if (r.deadline && now >= *r.deadline && !r.timed_out) {
        r.timed_out = true;
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
      }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return results;
}

std::filesystem::path self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : p;
}

std::string tail_of_file(const std::filesystem::path& file, std::size_t max_bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  return s;
}

}  // namespace qsdk
