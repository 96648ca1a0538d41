// What a maintainer reaches for (issue #25): the log components and their levels, trace-level
// instrumentation, the log file keeping errors and crashes, timed phases with the slow-operation
// warning and the load line, and allocation failures that name the knob behind them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/base/log.hpp"
#include "support/run.hpp"

namespace bitnet::test {
namespace {

struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* v) : name(n) { ::setenv(n, v, 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

std::filesystem::path temp(const std::string& name) {
  return std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
}

TEST(LogCli, HelpListsEveryComponent) {
  RunResult r = run_bitnet({"--log-level", "help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const log::Component& c : log::components()) {
    EXPECT_NE(r.out.find("  " + std::string(c.name) + " "), std::string::npos) << c.name;
    EXPECT_NE(r.out.find(std::string(c.what)), std::string::npos) << c.name;
  }
}

TEST(LogCli, AnUnknownComponentIsAUsageErrorListingTheKnownOnes) {
  RunResult r = run_bitnet({"--log-level", "info,gguff=debug", "tokenize", "hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("unknown log component 'gguff'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokenizer"), std::string::npos) << r.err;
  ScopedEnv env("BITNET_LOG", "modle=debug");
  r = run_bitnet({"tokenize", "hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("BITNET_LOG='modle=debug'"), std::string::npos) << r.err;
}

// -vvv shows each layer's time, every memory-pool block, every parallel loop and every matmul;
// the default level shows none of it.
TEST(LogCli, TraceInstrumentsSessionPoolThreadsAndKernels) {
  RunResult r = run_bitnet({"-vvv", "generate", "-p", "Once", "-n", "2", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {"[infer] layer 0: ", "[infer] layer 4: ", "[pool] take ", "[threads] parallel_for over ",
                           "[kernels] matmul: "})
    EXPECT_NE(r.err.find(want), std::string::npos) << want;
  r = run_bitnet({"generate", "-p", "Once", "-n", "2", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* quiet : {"[infer]", "[pool]", "[threads]", "[kernels] matmul"})
    EXPECT_EQ(r.err.find(quiet), std::string::npos) << quiet << "\n" << r.err;
}

TEST(LogCli, TheLogFileKeepsTheErrorLinesAndACrashReport) {
  const std::filesystem::path file = temp("bitnet-errors.log");
  std::filesystem::remove(file);
  RunResult r = run_bitnet({"--log-file", file.string(), "inspect", "/nonexistent/m.gguf"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  std::string log = read_all(file);
  EXPECT_NE(log.find("] error: /nonexistent/m.gguf"), std::string::npos) << log;
  {
    ScopedEnv fault("BITNET_TEST_FAULT", "segv:generate");
    r = run_bitnet({"--log-file", file.string(), "generate", "-p", "hi", "-n", "1"});
  }
  log = read_all(file);
  EXPECT_NE(log.find("bitnet: fatal signal SIGSEGV"), std::string::npos) << log;
  EXPECT_NE(log.find("backtrace (innermost first"), std::string::npos) << log;
  EXPECT_NE(log.find("bitnet(on_crash"), std::string::npos) << log;  // the frames themselves
  std::filesystem::remove(file);
}

// Every phase is timed: past BITNET_SLOW_MS (or --slow-ms) it is a warning naming it and its size.
TEST(LogCli, SlowOperationsAreNamedWithTheirTimeAndSize) {
  RunResult r;
  {
    ScopedEnv slow("BITNET_SLOW_MS", "0.000001");
    r = run_bitnet({"generate", "-p", "Once upon a time", "-n", "3"});
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {"slow: map and parse stories260K.gguf took ", "slow: validate and bind stories260K.gguf took ",
                           "slow: weight copy for table '", "slow: tokenization took ", "slow: prefill of ",
                           "slow: decode step at position ", "slow: sha256 of stories260K.gguf"})
    EXPECT_NE(r.err.find(want), std::string::npos) << want << "\n" << r.err;
  EXPECT_NE(r.err.find(" MiB) (over BITNET_SLOW_MS=1e-06)"), std::string::npos) << r.err;
  r = run_bitnet({"--slow-ms", "1e9", "generate", "-p", "Once upon a time", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("slow:"), std::string::npos) << r.err;
  ScopedEnv bad("BITNET_SLOW_MS", "fast");
  r = run_bitnet({"generate", "-p", "hi", "-n", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// -v prints llama.cpp's load-time line, in parts, and the weight copy with its share of huge pages.
TEST(LogCli, VerboseShowsTheLoadLine) {
  RunResult r = run_bitnet({"-v", "generate", "-p", "hi", "-n", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[model] load: 1.1 MiB in "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(map and parse "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[infer] weights: "), std::string::npos) << r.err;
  r = run_bitnet({"generate", "-p", "hi", "-n", "1"});
  EXPECT_EQ(r.err.find("load: "), std::string::npos) << r.err;
}

// A buffer too large for the machine names the flag that made it so, and its value.
TEST(ErrorsCli, AnAllocationFailureNamesItsKnob) {
  RunResult r = run_bitnet({"generate", "-p", "hi", "-n", "1", "-c", "3000000000"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("error: cannot allocate the KV cache"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(-c 3000000000); lower -c (the model was trained on 2048)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--kv-type q8_0"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bitnet::test
