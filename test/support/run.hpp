// Test helper: run the built bitnet binary (BITNET_BIN) as a child process and capture its exit
// code, stdout and stderr. No shell is involved, so arguments need no quoting.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

extern char** environ;

namespace bitnet::test {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string bitnet_bin() {
  const char* bin = std::getenv("BITNET_BIN");
  return bin && *bin ? bin : BITNET_TEST_BIN;
}

// Runs `bitnet args...`; stdin is /dev/null unless stdin_text is given.
inline RunResult run_bitnet(const std::vector<std::string>& args, const std::string* stdin_text = nullptr) {
  auto dir = std::filesystem::temp_directory_path() /
             ("bitnet-run-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::filesystem::create_directories(dir);
  auto in_path = dir / "in", out_path = dir / "out", err_path = dir / "err";
  {
    std::ofstream in(in_path, std::ios::binary);
    if (stdin_text) in << *stdin_text;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string bin = bitnet_bin();
  std::vector<char*> argv{bin.data()};
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child finds fixtures like the tests do, and prints no colour codes.
  ::setenv("BITNET_FIXTURE_PATH", fixture_dirs().c_str(), 1);
  ::setenv("NO_COLOR", "1", 1);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot spawn " + bin);
  int status = 0;
  waitpid(pid, &status, 0);
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_all(out_path);
  r.err = read_all(err_path);
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace bitnet::test
