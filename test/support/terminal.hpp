// Test helper: run the built `bitnet` binary with a pseudo-terminal as its stdin, stdout and
// stderr (what a user at a terminal sees: progress lines, carriage returns). Links -lutil.
#pragma once

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/run.hpp"

namespace bitnet::test {

// Everything the binary printed, until it exits.
inline std::string run_on_a_terminal(const std::vector<std::string>& args) {
  std::string bin = bitnet_bin();
  std::vector<std::string> copy = args;
  std::vector<char*> argv{bin.data()};
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) throw std::runtime_error("forkpty failed");
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child has exited and closed its side
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(master);
  ::waitpid(pid, nullptr, 0);
  return out;
}

}  // namespace bitnet::test
