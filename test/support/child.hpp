// Test helper: the built `bitnet` binary as a live child process, for tests that act while it
// runs (send a signal after the first output, then read the rest). stdout and stderr are read
// together with poll; every wait has a deadline so a broken binary fails the test, never hangs it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/run.hpp"

namespace bitnet::test {

class Child {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Child(const std::vector<std::string>& args) {
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe failed");
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0) throw std::runtime_error("cannot open /dev/null");
    start_ = Clock::now();
    pid_ = spawn_bitnet(args, devnull, out_pipe[1], err_pipe[1], {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], devnull});
    close(devnull);
    close(out_pipe[1]);
    close(err_pipe[1]);
    fd_[0] = out_pipe[0];
    fd_[1] = err_pipe[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
    }
    for (int fd : fd_)
      if (fd >= 0) close(fd);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads until `needle` appears in stdout (which = 0) or stderr (1); false at EOF or after `limit`.
  bool wait_for(int which, const std::string& needle, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    const auto deadline = Clock::now() + limit;
    while ((which == 0 ? out : err).find(needle) == std::string::npos) {
      if (Clock::now() >= deadline || !pump(deadline)) return false;
    }
    return true;
  }

  void signal(int sig) const { ::kill(pid_, sig); }

  // Drains both outputs to EOF, then reaps; false when `limit` passed first (the child is killed).
  bool finish(std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    const auto deadline = Clock::now() + limit;
    while (fd_[0] >= 0 || fd_[1] >= 0)
      if (!pump(deadline)) break;
    if (fd_[0] >= 0 || fd_[1] >= 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      reaped_ = true;
      return false;
    }
    waitpid(pid_, &status_, 0);
    reaped_ = true;
    seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    return true;
  }

  bool exited() const { return WIFEXITED(status_); }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  int term_signal() const { return WIFSIGNALED(status_) ? WTERMSIG(status_) : 0; }

  std::string out, err;
  double seconds = 0;  // from start to exit, after finish()

 private:
  // One poll round; false when both outputs are closed or the deadline passed.
  bool pump(Clock::time_point deadline) {
    if (fd_[0] < 0 && fd_[1] < 0) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fds[2] = {{fd_[0], POLLIN, 0}, {fd_[1], POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left)) <= 0) return Clock::now() < deadline;
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = read(fds[k].fd, buf, sizeof buf);
      if (n > 0) {
        (k == 0 ? out : err).append(buf, static_cast<size_t>(n));
      } else {
        close(fd_[k]);
        fd_[k] = -1;
      }
    }
    return true;
  }

  pid_t pid_ = -1;
  int fd_[2] = {-1, -1};
  int status_ = 0;
  bool reaped_ = false;
  Clock::time_point start_;
};

}  // namespace bitnet::test
