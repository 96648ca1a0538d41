// Temporary files against the real binary (issue #20, point 2): Ctrl-C, SIGTERM and --timeout
// during `convert` or while a synthetic model is written into the cache leave no OUT.tmp-PID and
// an existing OUT byte for byte as it was; convert draws progress only on a terminal; `fixtures
// clean` removes stale temporaries and the synthetic models, file by file, and `list` shows them.
#include <gtest/gtest.h>

#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child.hpp"
#include "support/fixtures.hpp"
#include "support/run.hpp"
#include "support/scoped.hpp"
#include "support/terminal.hpp"

namespace bitnet::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Every file under dir whose name holds ".tmp-" (a temporary a writer left), relative to dir.
std::vector<std::string> temp_files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename().string().find(".tmp-") != std::string::npos)
      out.push_back(fs::relative(it->path(), dir).string());
  return out;
}

// Waits (polling, generously: the machine may be slow and busy) until a temporary file appears
// under dir; returns its path, or nullopt after `limit`.
std::optional<fs::path> wait_for_temp_file(const fs::path& dir, std::chrono::seconds limit = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::vector<std::string> t = temp_files_under(dir); !t.empty()) return dir / t.front();
    std::this_thread::sleep_for(5ms);
  }
  return std::nullopt;
}


void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// What a destination held before: a cancelled convert must leave it exactly so.
const std::string kPrevious = "the previous model, which a cancelled convert must leave as it was\n";

// Whether p still holds kPrevious (a bool: printing a replaced model in a failure would take minutes).
::testing::AssertionResult unchanged(const fs::path& p) {
  const std::string now = read_all(p);
  if (now == kPrevious) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << p << " was replaced: " << now.size() << " bytes now";
}

struct SignalCase {
  int sig;
  int exit_code;
  const char* message;
};

void PrintTo(const SignalCase& k, std::ostream* os) { *os << (k.sig == SIGINT ? "SIGINT" : "SIGTERM"); }

class SignalDuringWrite : public ::testing::TestWithParam<SignalCase> {};

// synthetic:700m is written into the cache (about 260 MiB), then converted (a few seconds): the
// signal comes once the converted file's temporary has appeared.
TEST_P(SignalDuringWrite, ConvertLeavesTheDestinationAsItWasAndNoTemporaryFile) {
  const SignalCase& k = GetParam();
  TempDir dir;
  ScopedEnv cache("BITNET_CACHE_DIR", (dir / "cache").string());
  const fs::path out = dir / "out" / "model.gguf";
  write_text(out, kPrevious);
  Child c({"convert", "synthetic:700m", out.string(), "--type", "i2_s"});
  const std::optional<fs::path> tmp = wait_for_temp_file(dir / "out");
  ASSERT_TRUE(tmp) << "convert never started writing\n" << c.err;
  c.signal(k.sig);
  ASSERT_TRUE(c.finish(60s));
  EXPECT_TRUE(c.exited()) << "killed by signal " << c.term_signal() << "\n" << c.err;
  EXPECT_EQ(c.exit_code(), k.exit_code) << c.err;
  EXPECT_EQ(error_lines(c.err), std::vector<std::string>{k.message}) << "stopped itself, within the grace period\n" << c.err;
  EXPECT_EQ(c.out, "");
  EXPECT_TRUE(unchanged(out));
  EXPECT_EQ(temp_files_under(dir.path()), std::vector<std::string>{});
  // The synthetic input was complete before the conversion started; it stays for the next run.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "cache" / "synthetic"), fs::directory_iterator()), 1);
}

// Any command that writes a synthetic model (here inspect, which does not poll the flag itself).
TEST_P(SignalDuringWrite, ASyntheticModelBeingWrittenIntoTheCacheLeavesNothing) {
  const SignalCase& k = GetParam();
  TempDir dir;
  ScopedEnv cache("BITNET_CACHE_DIR", (dir / "cache").string());
  Child c({"inspect", "--no-hash", "synthetic:2b4t"});  // 1.1 GiB: seconds of writing
  const std::optional<fs::path> tmp = wait_for_temp_file(dir / "cache");
  ASSERT_TRUE(tmp) << "the synthetic model was never written\n" << c.err;
  EXPECT_EQ(tmp->parent_path(), dir / "cache" / "synthetic");
  c.signal(k.sig);
  ASSERT_TRUE(c.finish(60s));
  EXPECT_TRUE(c.exited()) << "killed by signal " << c.term_signal() << "\n" << c.err;
  EXPECT_EQ(c.exit_code(), k.exit_code) << c.err;
  EXPECT_EQ(error_lines(c.err), std::vector<std::string>{k.message}) << c.err;
  EXPECT_EQ(c.out, "");
  EXPECT_TRUE(fs::is_empty(dir / "cache" / "synthetic")) << "neither a temporary nor a half-written model";
}

INSTANTIATE_TEST_SUITE_P(TempFilesCli, SignalDuringWrite,
                         ::testing::Values(SignalCase{SIGINT, 130, "error: interrupted (Ctrl-C)"},
                                           SignalCase{SIGTERM, 143, "error: terminated (SIGTERM)"}),
                         [](const ::testing::TestParamInfo<SignalCase>& p) {
                           return std::string(p.param.sig == SIGINT ? "sigint" : "sigterm");
                         });

TEST(TempFilesCli, TimeoutDuringConvertLeavesTheDestinationAsItWasAndNoTemporaryFile) {
  TempDir dir;
  ScopedEnv cache("BITNET_CACHE_DIR", (dir / "cache").string());
  // The input first, so the limit falls in the conversion (seconds), not in the model's generation.
  RunResult r = run_bitnet({"inspect", "--no-hash", "synthetic:700m"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path out = dir / "model.gguf";
  write_text(out, kPrevious);
  Child c({"--timeout", "0.5", "convert", "synthetic:700m", out.string(), "--type", "i2_s"});
  ASSERT_TRUE(c.finish(60s));
  EXPECT_TRUE(c.exited()) << "killed by signal " << c.term_signal() << "\n" << c.err;
  EXPECT_EQ(c.exit_code(), 124) << c.err;
  EXPECT_EQ(error_lines(c.err), std::vector<std::string>{"error: timed out after 0.5 s (--timeout 0.5)"})
      << "stopped at the next MiB, not ended by the watchdog\n" << c.err;
  EXPECT_TRUE(unchanged(out));
  EXPECT_EQ(temp_files_under(dir.path()), std::vector<std::string>{});
}


TEST(TempFilesCli, ConvertShowsProgressOnATerminalOnly) {
  TempDir dir;
  const std::string in = fixture_file("models/bitnet-tiny-f16.gguf").string();
  const std::string out = (dir / "tq2.gguf").string();
  const std::string result = out + ": 28 weight tensors as TQ2_0, 18 tensors copied";
  ::setenv("BITNET_FIXTURE_PATH", fixture_dirs().c_str(), 0);  // as run_bitnet's children get it
  const std::string tty = run_on_a_terminal({"convert", in, out, "--type", "tq2_0"});
  // One line redrawn in place, ending at every tensor written, then erased before the result.
  EXPECT_NE(tty.find("\rconverting: 46/46 tensors, "), std::string::npos) << tty;
  EXPECT_NE(tty.find("\r\033[K" + result), std::string::npos) << tty;
  const std::string quiet = run_on_a_terminal({"-q", "convert", in, out, "--type", "tq2_0"});
  EXPECT_EQ(quiet.find("converting:"), std::string::npos) << quiet;
  // Not a terminal (a pipe, a log file): no progress, no carriage return.
  RunResult r = run_bitnet({"convert", in, out, "--type", "tq2_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, result + "\n");
  EXPECT_EQ(r.out.find('\r'), std::string::npos);
}

// A PID no process has: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

size_t count_lines_starting(const std::string& s, const std::string& prefix) {
  std::istringstream in(s);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind(prefix, 0) == 0;
  return n;
}

TEST(TempFilesCli, FixturesListShowsAndCleanRemovesSyntheticModelsAndStaleTemporaries) {
  TempDir dir;
  const fs::path root = dir / "cache";
  ScopedEnv cache("BITNET_CACHE_DIR", root.string());
  ScopedEnv offline("BITNET_OFFLINE", "1");
  RunResult r = run_bitnet({"inspect", "--no-hash", "synthetic:tiny"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(std::distance(fs::directory_iterator(root / "synthetic"), fs::directory_iterator()), 1);
  const fs::path model = fs::directory_iterator(root / "synthetic")->path();

  r = run_bitnet({"fixtures", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string heading = "synthetic models in " + (root / "synthetic").string();
  EXPECT_NE(r.out.find("\n\n" + heading), std::string::npos) << r.out;
  const size_t row = r.out.find(model.filename().string() + "\n");
  ASSERT_NE(row, std::string::npos) << r.out;
  EXPECT_NE(r.out.rfind(" KiB  ", row), std::string::npos) << "a size on the model's row\n" << r.out;

  // Left by writers that are gone (Ctrl-C before this fix, a kill -9, a power cut), beside one
  // being written right now (this test's own PID) and a download's .part.
  const std::string gone = std::to_string(dead_pid());
  const std::string alive = std::to_string(::getpid());
  write_text(root / ("x.gguf.tmp-" + gone), "12345");
  write_text(root / "synthetic" / ("y.gguf.tmp-" + gone), "1234567");
  write_text(root / "z.part", "123");
  write_text(root / "synthetic" / ("w.gguf.tmp-" + alive), "live");
  // A named clean touches only that fixture.
  r = run_bitnet({"fixtures", "clean", "z"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "removed " + (root / "z.part").string() + " (3 B)\nremoved 1 file (3 B) from " + root.string() + "\n");
  EXPECT_TRUE(fs::exists(root / ("x.gguf.tmp-" + gone)));
  EXPECT_TRUE(fs::exists(model));

  r = run_bitnet({"fixtures", "clean"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One line per file removed, with its size, then the total.
  const std::string want = "removed " + (root / ("x.gguf.tmp-" + gone)).string() + " (5 B)\n" +
                           "removed " + (root / "synthetic" / ("y.gguf.tmp-" + gone)).string() + " (7 B)\n";
  EXPECT_TRUE(r.out.starts_with(want)) << r.out;
  EXPECT_NE(r.out.find("removed " + model.string() + " ("), std::string::npos) << r.out;
  EXPECT_EQ(count_lines_starting(r.out, "removed "), 4u) << r.out;
  EXPECT_NE(r.out.find("\nremoved 3 files ("), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with(") from " + root.string() + "\n")) << r.out;
  EXPECT_NE(r.err.find("warning: left " + (root / "synthetic" / ("w.gguf.tmp-" + alive)).string() +
                       " alone: the process writing it is still running"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(temp_files_under(root), std::vector<std::string>{"synthetic/w.gguf.tmp-" + alive});
  EXPECT_FALSE(fs::exists(model));

  fs::remove(root / "synthetic" / ("w.gguf.tmp-" + alive));
  r = run_bitnet({"fixtures", "list"});
  EXPECT_EQ(r.out.find("synthetic models"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bitnet::test
