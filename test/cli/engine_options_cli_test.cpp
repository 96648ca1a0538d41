// One engine set-up for every command (app/engine_options.hpp): -t and --backend beat
// BITNET_THREADS and BITNET_BACKEND, which beat the defaults (every core, the best table this CPU
// runs), and a bad variable fails with the very usage error the flag gives. The effective values
// are read back from what the commands print: memcheck --json, generate -v and debug-report.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <optional>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/dispatch.hpp"
#include "support/run.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

struct Effective {
  std::string kernel_table;
  int64_t threads = 0;
};

// The kernel table and thread count memcheck ran with (one short round on stories260K).
Effective memcheck_with(const std::vector<std::string>& flags) {
  std::vector<std::string> args{"memcheck", "-m", "fixture:stories260K", "-n", "1", "--json"};
  args.insert(args.end(), flags.begin(), flags.end());
  RunResult r = run_bitnet(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.out).get(doc) != simdjson::SUCCESS) {
    ADD_FAILURE() << "not JSON: " << r.out << r.err;
    return {};
  }
  return {std::string(std::string_view(doc["kernel_table"])), int64_t(doc["threads"])};
}

// What the dispatcher picks with no name: the default --backend.
std::string best_table() {
  backends::register_all();
  return std::string(kernels::select_backend("").table->name);
}

TEST(EngineOptionsCli, FlagBeatsTheEnvironment) {
  // A variable that would fail on its own proves the flag was used and the variable never read.
  ScopedEnv threads("BITNET_THREADS", "3");
  ScopedEnv backend("BITNET_BACKEND", "nonesuch");
  const Effective e = memcheck_with({"-t", "1", "--backend", "reference"});
  EXPECT_EQ(e.kernel_table, "reference");
  EXPECT_EQ(e.threads, 1);
}

TEST(EngineOptionsCli, EnvironmentBeatsTheDefault) {
  ScopedEnv threads("BITNET_THREADS", "3");
  ScopedEnv backend("BITNET_BACKEND", "reference");
  const Effective e = memcheck_with({});
  EXPECT_EQ(e.kernel_table, "reference");
  EXPECT_EQ(e.threads, 3);
}

TEST(EngineOptionsCli, DefaultsAreEveryCoreAndTheBestTable) {
  ScopedEnv threads("BITNET_THREADS", std::nullopt);
  ScopedEnv backend("BITNET_BACKEND", std::nullopt);
  const Effective e = memcheck_with({});
  EXPECT_EQ(e.kernel_table, best_table());
  EXPECT_EQ(e.threads, ThreadPool::default_threads());
}

// generate reports the same resolution in its -v line, so the two commands share it.
TEST(EngineOptionsCli, GenerateResolvesLikeMemcheck) {
  ScopedEnv threads("BITNET_THREADS", "3");
  ScopedEnv backend("BITNET_BACKEND", "reference");
  RunResult env = run_bitnet({"-v", "generate", "-p", "Once", "-n", "1", "--temp", "0"});
  ASSERT_EQ(env.exit_code, 0) << env.err;
  EXPECT_NE(env.err.find("backend reference, 3 threads,"), std::string::npos) << env.err;
  RunResult flag = run_bitnet({"-v", "generate", "-p", "Once", "-n", "1", "--temp", "0", "-t", "2"});
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_NE(flag.err.find("backend reference, 2 threads,"), std::string::npos) << flag.err;
}

// A bad value is the same usage error whether it came from the flag or the variable.
TEST(EngineOptionsCli, BadVariableFailsLikeTheFlag) {
  const RunResult flag_threads = run_bitnet({"generate", "-p", "x", "-n", "1", "-t", "0"});
  const RunResult flag_backend = run_bitnet({"generate", "-p", "x", "-n", "1", "--backend", "quantum"});
  const RunResult flag_list = run_bitnet({"bench", "-p", "0", "-n", "1", "-t", "1,x"});
  EXPECT_EQ(flag_threads.exit_code, 2);
  EXPECT_EQ(flag_backend.exit_code, 2);
  EXPECT_EQ(flag_list.exit_code, 2);
  EXPECT_NE(flag_backend.err.find("unknown backend 'quantum'"), std::string::npos) << flag_backend.err;
  {
    ScopedEnv threads("BITNET_THREADS", "0");
    const RunResult r = run_bitnet({"generate", "-p", "x", "-n", "1"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, flag_threads.err);
  }
  {
    ScopedEnv backend("BITNET_BACKEND", "quantum");
    const RunResult r = run_bitnet({"generate", "-p", "x", "-n", "1"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, flag_backend.err);
  }
  {
    ScopedEnv threads("BITNET_THREADS", "1,x");
    const RunResult r = run_bitnet({"bench", "-p", "0", "-n", "1"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, flag_list.err);
  }
}

// Only the command that was asked for reads the variables: a bad BITNET_THREADS does not break
// commands that take no thread count, nor --version.
TEST(EngineOptionsCli, BadVariableLeavesOtherCommandsAlone) {
  ScopedEnv threads("BITNET_THREADS", "0");
  const RunResult version = run_bitnet({"--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_NE(version.out.find("bitnet "), std::string::npos);
  const RunResult path = run_bitnet({"fixtures", "path", "stories260K"});
  EXPECT_EQ(path.exit_code, 0) << path.err;
  EXPECT_NE(path.out.find("stories260K"), std::string::npos) << path.out;
}

// debug-report describes what a run would use: BITNET_THREADS and its source.
TEST(EngineOptionsCli, DebugReportShowsTheEnvironmentsThreads) {
  ScopedEnv threads("BITNET_THREADS", "3");
  const RunResult r = run_bitnet({"debug-report", "--format", "json", "--no-hash"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  EXPECT_EQ(int64_t(doc["config"]["threads"]), 3);
  EXPECT_EQ(std::string_view(doc["config"]["threads_source"]), "BITNET_THREADS");
}

}  // namespace
}  // namespace bitnet::test
