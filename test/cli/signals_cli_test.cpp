// Signals and --timeout against the real binary (docs/hardening.md): Ctrl-C stops generate, bench,
// memcheck and crossval with exit 130 and the output so far flushed; SIGQUIT prints every thread's
// stack and the run carries on; a crash prints a symbolized backtrace and the debug-report hint and
// still dies of its signal; --timeout ends a run with exit 124 and one line, in time.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "support/child.hpp"
#include "support/run.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

using namespace std::chrono_literals;

// A generate run that would last well past the tests' limits, printing one JSON line per token.
// The tiny model decodes over 3000 tokens a second, so a 4096-token context filled up in 1.3 s,
// before a --timeout of 1.5; 32768 tokens take more than 20 s.
const std::vector<std::string> kEndlessGenerate = {"generate", "-p", "Once upon a time", "-n", "-1", "--ignore-eos",
                                                   "-c", "32768", "-t", "1", "--json"};

size_t count_lines(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}


TEST(SignalsCli, CtrlCDuringGenerateFlushesEveryTokenAndExits130) {
  Child c({"generate", "-p", "Once upon a time", "-n", "-1", "--ignore-eos", "-c", "4096", "-t", "1", "--no-echo"});
  ASSERT_TRUE(c.wait_for(0, " ")) << c.err;
  c.signal(SIGINT);
  ASSERT_TRUE(c.finish(30s));
  EXPECT_TRUE(c.exited()) << "signal " << c.term_signal();
  EXPECT_EQ(c.exit_code(), 130) << c.err;
  // The timings line counts the decoded tokens; the text streamed so far ends with the newline
  // generate adds after the last piece, so nothing was left in a buffer.
  EXPECT_NE(c.err.find("stop: interrupt"), std::string::npos) << c.err;
  ASSERT_FALSE(c.out.empty());
  EXPECT_EQ(c.out.back(), '\n');
}

TEST(SignalsCli, CtrlCDuringBenchExits130WithinTheGracePeriod) {
  Child c({"bench", "-m", "fixture:stories260K", "-p", "512", "-n", "128", "-r", "1000", "-t", "1"});
  // The model is loaded and timing has started once bench has been running a moment.
  std::this_thread::sleep_for(1500ms);
  c.signal(SIGINT);
  ASSERT_TRUE(c.finish(30s));
  EXPECT_EQ(c.exit_code(), 130) << c.err;
  EXPECT_EQ(error_lines(c.err), std::vector<std::string>{"error: interrupted (Ctrl-C)"}) << c.err;
  EXPECT_LT(c.seconds, 1.5 + 3 + 2) << "bench checks the flag before every timed step";
}

TEST(SignalsCli, CtrlCDuringCrossvalStopsTheReferenceProgramAndExits130) {
  TempDir dir;
  const std::filesystem::path marker = dir / "still-running";
  // A reference that never answers; it would outlive us if crossval did not kill its process group.
  const std::string script = (dir / "ref.sh").string();
  {
    std::ofstream s(script);
    s << "#!/bin/sh\nsleep 2\ntouch " << marker.string() << "\nsleep 100\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  Child c({"crossval", "-m", "fixture:stories260K", "--reference", "cmd:" + script, "-p", "hi", "-n", "4"});
  std::this_thread::sleep_for(700ms);
  c.signal(SIGINT);
  ASSERT_TRUE(c.finish(30s));
  EXPECT_EQ(c.exit_code(), 130) << c.err;
  EXPECT_EQ(error_lines(c.err), std::vector<std::string>{"error: interrupted (Ctrl-C)"}) << c.err;
  std::this_thread::sleep_for(2500ms);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the reference program was left running";
}

TEST(SignalsCli, SigquitDumpsEveryThreadAndTheRunStillFinishes) {
  Child c({"generate", "-p", "Once upon a time", "-n", "3000", "--ignore-eos", "-c", "4096", "-t", "2", "--json"});
  ASSERT_TRUE(c.wait_for(0, "\"id\"")) << c.err;
  c.signal(SIGQUIT);
  ASSERT_TRUE(c.wait_for(1, "--- end of thread dump ---", 30s)) << c.err;
  ASSERT_TRUE(c.finish(120s));
  EXPECT_EQ(c.exit_code(), 0) << c.err;
  // Main and the pool's worker (-t 2) answered, each with named frames of this program.
  EXPECT_NE(c.err.find("SIGQUIT: stacks of"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find(", main ---"), std::string::npos) << c.err;
  EXPECT_GE(count_lines(c.err, "--- thread "), 2u) << c.err;
  EXPECT_EQ(c.err.find("no answer"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("_ZN6bitnet"), std::string::npos) << "function names in the backtraces\n" << c.err;
  // Every token still came, then the summary.
  EXPECT_EQ(count_lines(c.out, "{\"id\":"), 3000u);
  EXPECT_NE(c.out.find("\"reason\":\"n\""), std::string::npos) << c.out.substr(c.out.size() > 300 ? c.out.size() - 300 : 0);
}

struct CrashCase {
  const char* kind;
  int sig;
  const char* name;
};

class CrashCli : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashCli, PrintsABacktraceAndTheDebugReportHintThenDiesOfTheSignal) {
  const CrashCase& k = GetParam();
  ScopedEnv fault("BITNET_TEST_FAULT", std::string(k.kind) + ":tokenize");
  Child c({"tokenize", "hello"});
  ASSERT_TRUE(c.finish(30s));
  EXPECT_FALSE(c.exited()) << "exit code " << c.exit_code() << "\n" << c.err;
  EXPECT_EQ(c.term_signal(), k.sig) << c.err;
  EXPECT_NE(c.err.find(std::string("bitnet: fatal signal ") + k.name), std::string::npos) << c.err;
  // Symbolized: the function that crashed and its caller, by (mangled) name.
  EXPECT_NE(c.err.find("crash_for_test"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("_ZN6bitnet3app3run"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("bitnet debug-report --"), std::string::npos) << c.err;
}

INSTANTIATE_TEST_SUITE_P(Signals, CrashCli,
                         ::testing::Values(CrashCase{"segv", SIGSEGV, "SIGSEGV"}, CrashCase{"abort", SIGABRT, "SIGABRT"},
                                           CrashCase{"fpe", SIGFPE, "SIGFPE"}, CrashCase{"bus", SIGBUS, "SIGBUS"},
                                           CrashCase{"ill", SIGILL, "SIGILL"}),
                         [](const ::testing::TestParamInfo<CrashCase>& p) { return std::string(p.param.kind); });

TEST(TimeoutCli, GenerateStopsAtTheLimitWithExit124AndOneLine) {
  for (bool after : {false, true}) {
    std::vector<std::string> args = kEndlessGenerate;
    if (after) args.insert(args.end(), {"--timeout", "1.5"});
    else args.insert(args.begin(), {"--timeout", "1.5"});
    Child c(args);
    ASSERT_TRUE(c.finish(60s));
    EXPECT_EQ(c.exit_code(), 124) << c.err;
    EXPECT_EQ(error_lines(c.err), std::vector<std::string>{"error: timed out after 1.5 s (--timeout 1.5)"}) << c.err;
    // First, where every thread was when the time ran out (the main thread among them), then the error.
    const size_t dump = c.err.find("bitnet: --timeout 1.5 s reached: stacks of ");
    EXPECT_NE(dump, std::string::npos) << c.err;
    EXPECT_NE(c.err.find("), main ---", dump), std::string::npos) << c.err;
    EXPECT_LT(c.err.find("--- end of thread dump ---"), c.err.find("error: timed out")) << c.err;
    EXPECT_GE(c.seconds, 1.5);
    EXPECT_LT(c.seconds, 1.5 + 3) << "stopped at the next token, not at the watchdog's hard deadline";
    // The output was flushed: token lines, then the summary line.
    EXPECT_GT(count_lines(c.out, "\"id\""), 0u);
    EXPECT_NE(c.out.find("\"done\":true"), std::string::npos);
  }
}

TEST(TimeoutCli, BenchMemcheckAndCrossvalExit124) {
  const std::vector<std::vector<std::string>> runs = {
      {"--timeout", "1", "bench", "-m", "fixture:stories260K", "-p", "512", "-n", "128", "-r", "1000", "-t", "1"},
      {"--timeout", "1", "memcheck", "-m", "fixture:stories260K", "-n", "4000", "-c", "4096", "--repeat", "1000", "-t", "1"},
      // crossval's own --timeout (per reference run) stays; the global one comes first.
      {"--timeout", "1", "crossval", "-m", "fixture:stories260K", "--reference", "cmd:sleep 60", "--timeout", "300",
       "-p", "hi", "-n", "4"},
  };
  for (const auto& args : runs) {
    Child c(args);
    ASSERT_TRUE(c.finish(60s)) << args[2];
    EXPECT_EQ(c.exit_code(), 124) << args[2] << ": " << c.err;
    EXPECT_EQ(error_lines(c.err), std::vector<std::string>{"error: timed out after 1 s (--timeout 1)"}) << args[2] << ": " << c.err;
    EXPECT_LT(c.seconds, 1 + 3 + 1.5) << args[2];
  }
}

TEST(TimeoutCli, ACommandThatIgnoresTheLimitIsEndedAfterTheGracePeriod) {
  ScopedEnv fault("BITNET_TEST_FAULT", "hang:generate");
  ScopedEnv grace("BITNET_CANCEL_GRACE", "0.5");
  Child c({"--timeout", "0.5", "generate", "-p", "hi"});
  ASSERT_TRUE(c.finish(30s));
  EXPECT_EQ(c.exit_code(), 124) << c.err;
  EXPECT_EQ(error_lines(c.err),
            std::vector<std::string>{"error: timed out after 0.5 s (--timeout 0.5); the command did not stop within 0.5 s and was ended"})
      << c.err;
  EXPECT_GE(c.seconds, 1.0);
  EXPECT_LT(c.seconds, 5.0);
}

TEST(TimeoutCli, BadValuesAreUsageErrors) {
  for (const char* v : {"0", "-1", "abc"}) {
    RunResult r = run_bitnet({"--timeout", v, "generate", "-p", "hi"});
    EXPECT_EQ(r.exit_code, 2) << v << ": " << r.err;
    EXPECT_NE(r.err.find("--timeout"), std::string::npos) << r.err;
  }
  ScopedEnv grace("BITNET_CANCEL_GRACE", "soon");
  RunResult r = run_bitnet({"generate", "-p", "hi", "-n", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("BITNET_CANCEL_GRACE='soon'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bitnet::test
