// Runs a reference program without a shell: posix_spawn, request on stdin, stdout and stderr read
// together with poll under one deadline, and the whole process group killed at the deadline, so a
// hung or chatty reference can never hang crossval.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::diag {

struct ChildResult {
  int exit_code = -1;     // when it exited
  int signal = 0;         // when a signal ended it (SIGKILL after a timeout)
  bool timed_out = false;
  bool cancelled = false;         // ChildOptions::cancel was set: the child was killed
  bool output_truncated = false;  // stdout passed max_output; the rest was dropped
  std::string out;
  std::string err;        // the last max_err bytes of stderr
  double seconds = 0;
  // When it timed out: each of its threads as the kernel saw them just before the kill, one line
  // each, "tid (name) state S, waiting in WCHAN" (/proc; empty if it had already gone).
  std::string threads_at_timeout;
};

struct ChildOptions {
  std::chrono::milliseconds timeout{300000};
  size_t max_output = size_t{1} << 30;
  size_t max_err = 64 * 1024;
  // When set (Ctrl-C, --timeout), the child's process group is killed within a second.
  const std::atomic<bool>* cancel = nullptr;
  // At the timeout, send SIGQUIT first and keep reading stderr for up to quit_wait before the kill:
  // for a child that dumps its threads' stacks on SIGQUIT (bitnet does), so they reach `err`.
  bool quit_before_kill = false;
  std::chrono::milliseconds quit_wait{3000};
};

// "a  b c" -> {"a", "b", "c"}: the COMMAND of cmd:COMMAND, split on whitespace, no quoting.
std::vector<std::string> split_command(std::string_view command);

// Throws bitnet::Error(fixture) when argv[0] cannot be found or executed; everything that happens
// after a successful start (exit status, signal, timeout) is in the result.
ChildResult run_child(const std::vector<std::string>& argv, std::string_view input, const ChildOptions& opt = {});

}  // namespace bitnet::diag
