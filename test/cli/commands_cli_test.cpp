// The command word itself (issue #20, point 13): a mistyped command is named with the nearest
// ones, `bitnet help [COMMAND]` prints the --help text, -V is --version.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/run.hpp"

namespace bitnet::test {
namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Runs bitnet with its standard output on /dev/full (every write fails with ENOSPC).
RunResult run_to_full_disk(const std::vector<std::string>& args) {
  int err_pipe[2];
  if (pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  const int in = open("/dev/null", O_RDONLY), full = open("/dev/full", O_WRONLY);
  const pid_t pid = spawn_bitnet(args, in, full, err_pipe[1], {err_pipe[0], err_pipe[1], in, full});
  close(in);
  close(full);
  close(err_pipe[1]);
  RunResult r;
  char buf[4096];
  for (ssize_t n; (n = read(err_pipe[0], buf, sizeof buf)) > 0;) r.err.append(buf, static_cast<size_t>(n));
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CommandsCli, UnknownCommandIsNamedWithTheNearest) {
  const std::string all =
      " (commands: bench, convert, crossval, debug-report, fixtures, generate, help, inspect, memcheck, perplexity, tokenize)";
  RunResult gen = run_bitnet({"gen"});
  EXPECT_EQ(gen.exit_code, 2);
  EXPECT_EQ(first_line(gen.err), "error: unknown command 'gen'; did you mean 'generate'?" + all);
  RunResult typo = run_bitnet({"--timeout", "5", "tokenise", "Hello"});  // after a global flag's value
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_EQ(first_line(typo.err), "error: unknown command 'tokenise'; did you mean 'tokenize'?" + all);
  RunResult none = run_bitnet({"frobnicate"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(first_line(none.err), "error: unknown command 'frobnicate'" + all);
  // A known command's bad flag keeps CLI11's own message.
  RunResult flag = run_bitnet({"generate", "--no-such-flag"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_EQ(flag.err.find("unknown command"), std::string::npos) << flag.err;
}

TEST(CommandsCli, HelpCommandAndDashVWork) {
  RunResult help = run_bitnet({"help"}), dash_help = run_bitnet({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("Subcommands:"), std::string::npos);
  EXPECT_EQ(help.out, dash_help.out);
  RunResult gen = run_bitnet({"help", "generate"}), gen_help = run_bitnet({"generate", "--help"});
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(gen.out, gen_help.out);
  RunResult bad = run_bitnet({"help", "generat"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown command 'generat'; did you mean 'generate'?"), std::string::npos) << bad.err;
  RunResult v = run_bitnet({"-V"}), version = run_bitnet({"--version"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(v.out, version.out);
  EXPECT_EQ(v.out.rfind("bitnet ", 0), 0u) << v.out;
}

// Issue #20, point 14: --json is the one spelling in every command that prints JSON (bench's
// -o json and debug-report's --format json stay as they were).
TEST(CommandsCli, JsonIsSpelledTheSameEverywhere) {
  for (const char* cmd : {"generate", "tokenize", "inspect", "crossval", "memcheck", "bench", "debug-report"}) {
    RunResult h = run_bitnet({cmd, "--help"});
    EXPECT_NE(h.out.find("--json"), std::string::npos) << cmd;
  }
  RunResult list = run_bitnet({"fixtures", "list", "--help"});
  EXPECT_NE(list.out.find("--json"), std::string::npos);
  RunResult bench = run_bitnet({"bench", "-p", "4", "-n", "2", "-r", "1", "-t", "1", "--json"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_EQ(bench.out.rfind("[", 0), 0u) << bench.out;
  EXPECT_NE(bench.out.find("\"avg_ts\""), std::string::npos) << bench.out;
  RunResult both = run_bitnet({"bench", "-o", "csv", "--json"});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_EQ(first_line(both.err), "error: --output excludes --json");
  RunResult report = run_bitnet({"debug-report", "--no-hash", "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_EQ(report.out.rfind("{", 0), 0u) << report.out.substr(0, 200);
}

// Issue #20, point 1: output that could not be written is exit 1 naming the stream and the
// reason; every command used to exit 0 with its output lost.
TEST(CommandsCli, AFailedWriteToStandardOutputIsExit1) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full here";
  const std::vector<std::vector<std::string>> commands = {
      {"--version"}, {"help"}, {"tokenize", "Hello"}, {"generate", "-p", "Once", "-n", "3"},
      {"bench", "-p", "4", "-n", "2", "-r", "1", "-t", "1"}, {"fixtures", "list"}, {"inspect", "--no-hash"}};
  for (const auto& args : commands) {
    RunResult r = run_to_full_disk(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << "\n" << r.err;
    EXPECT_NE(r.err.find("error: cannot write standard output: "), std::string::npos) << args[0] << "\n" << r.err;
  }
  RunResult tok = run_to_full_disk({"tokenize", "Hello"});
  EXPECT_NE(tok.err.find("error: cannot write standard output: No space left on device"), std::string::npos) << tok.err;
}

// Issue #20, point 4: output files are checked before the work (crossval used to run to the end
// and then fail on --junit's missing directory, printing no report and leaving a 0-byte temp).
TEST(CommandsCli, OutputPathsAreCheckedBeforeTheWork) {
  char tmpl[] = "/tmp/bitnet-out-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, missing = dir + "/no-such-dir";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"crossval", "-r", "backend:reference", "-n", "2", "--junit", missing + "/j.xml"},
       "error: --junit " + missing + "/j.xml: cannot create it: the directory " + missing + " does not exist"},
      {{"crossval", "-r", "backend:reference", "-n", "2", "--record", dir},
       "error: --record " + dir + ": cannot create it: it is a directory"},
      {{"debug-report", "--no-hash", "-o", missing + "/r.md"},
       "error: -o " + missing + "/r.md: cannot create it: the directory " + missing + " does not exist"},
      {{"convert", "fixture:stories260K", missing + "/o.gguf", "--type", "f32"},
       "error: OUT " + missing + "/o.gguf: cannot create it: the directory " + missing + " does not exist"},
  };
  for (const auto& [args, message] : cases) {
    RunResult r = run_bitnet(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << "\n" << r.err;
    EXPECT_EQ(first_line(r.err), message);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "something was left in " << dir;
  std::filesystem::remove_all(dir);
}

// Issue #20, point 4 (a late failure): the output file's directory passes the up-front check but
// the write itself fails (here a file-size limit of 0, EFBIG): crossval still prints its report,
// names the real path and the reason, exits 1 and leaves no temporary file behind.
TEST(CommandsCli, ALateWriteFailureKeepsTheReportAndRemovesTheTemp) {
  char tmpl[] = "/tmp/bitnet-late-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, junit = dir + "/j.xml";
  // SIGXFSZ ignored (inherited through exec), so the write returns EFBIG instead of killing.
  ::setenv("BITNET_FIXTURE_PATH", fixture_dirs().c_str(), 0);  // as run_bitnet's children get it
  std::string line = "sh -c \"trap '' XFSZ; ulimit -f 0; exec '";
  line += bitnet_bin();
  line += "' crossval -r backend:reference -n 2 --junit '";
  line += junit;
  line += "' 2>&1\"";
  std::string out;
  FILE* p = popen(line.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("PASS: the prompt agrees"), std::string::npos) << out;
  EXPECT_NE(out.find("error: " + junit + ": cannot write: File too large"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "a temporary file was left in " << dir;
  std::filesystem::remove_all(dir);
}

// Issue #20, point 13 (part): help shows each option's default, except placeholders (0, -1, [])
// whose meaning the option's text gives ("default: all cores").
TEST(CommandsCli, HelpShowsDefaults) {
  RunResult gen = run_bitnet({"generate", "--help"});
  auto line_of = [&](const std::string& flag) {
    const size_t at = gen.out.find(flag);
    return at == std::string::npos ? std::string() : gen.out.substr(at, gen.out.find('\n', at) - at);
  };
  EXPECT_NE(line_of("-n,--n-predict").find("=128"), std::string::npos) << gen.out;
  EXPECT_NE(line_of("--temp").find("=0.8"), std::string::npos);
  EXPECT_NE(line_of("--kv-type").find("=f16"), std::string::npos);
  EXPECT_EQ(line_of("-t,--threads").find("="), std::string::npos) << line_of("-t,--threads");
  EXPECT_EQ(line_of("--seed").find("=-1"), std::string::npos);
  // --pre's default depends on the file: the text says what it is (issue #20, point 13).
  EXPECT_NE(gen.out.find("Without it: the file's tokenizer.ggml.pre, and for a file without one"), std::string::npos)
      << gen.out;
  RunResult bench = run_bitnet({"bench", "--help"});
  EXPECT_NE(bench.out.find("-p,--n-prompt N[,N...]=512"), std::string::npos) << bench.out;
}

// Issue #20, point 18 (part): every command's output ends with a newline, whatever its format
// (this already held; the test keeps it so).
TEST(CommandsCli, OutputEndsWithANewline) {
  const std::vector<std::vector<std::string>> commands = {
      {"generate", "-p", "Once", "-n", "3", "--stop", "e"}, {"generate", "-p", "Once", "-n", "3", "--json"},
      {"tokenize", "Once"}, {"tokenize", "--json", "Once"}, {"tokenize", "--decode", "1 403"},
      {"inspect", "--no-hash"}, {"inspect", "--no-hash", "--json"}, {"fixtures", "list"}, {"fixtures", "list", "--json"},
      {"bench", "-p", "4", "-n", "2", "-r", "1", "-t", "1", "-o", "csv"}, {"--version"}, {"help"}};
  for (const auto& args : commands) {
    RunResult r = run_bitnet(args);
    ASSERT_EQ(r.exit_code, 0) << args[0] << "\n" << r.err;
    ASSERT_FALSE(r.out.empty()) << args[0];
    EXPECT_EQ(r.out.back(), '\n') << args[0] << " " << (args.size() > 1 ? args[1] : "");
  }
}

}  // namespace
}  // namespace bitnet::test
