// Reference runners and their error paths: the child process (stdin, stdout, stderr, exit status,
// signals, timeouts that also end grandchildren), REF spellings, and what a reference that is
// missing, crashes, hangs or prints junk turns into.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/base/error.hpp"
#include "diag/crossval/child_process.hpp"
#include "diag/crossval/reference.hpp"

namespace bitnet::diag {
namespace {

using namespace std::chrono_literals;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A small shell script in a fresh temporary directory (removed at the end of the test).
struct Script {
  std::filesystem::path dir, path;
  explicit Script(const std::string& body) {
    char tmpl[] = "/tmp/bitnet-xval-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir / "ref.sh";
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  }
  ~Script() { std::filesystem::remove_all(dir); }
};

TEST(ChildProcess, SplitCommandOnWhitespace) {
  EXPECT_EQ(split_command("  a  b\tc "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(split_command("   ").empty());
}

TEST(ChildProcess, FeedsStdinAndCollectsBothOutputs) {
  Script s("cat; echo to-stderr >&2; exit 3");
  const std::string big(300000, 'x');  // more than a pipe holds: stdin and stdout must interleave
  ChildResult r = run_child({s.path.string()}, big);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, big);
  EXPECT_EQ(r.err, "to-stderr\n");
}

TEST(ChildProcess, SearchesPathAndPassesArguments) {
  ChildResult r = run_child({"echo", "one", "two"}, "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "one two\n");
}

TEST(ChildProcess, ReportsTheSignalThatEndedIt) {
  Script s("kill -SEGV $$");
  ChildResult r = run_child({s.path.string()}, "");
  EXPECT_EQ(r.signal, 11);
}

TEST(ChildProcess, ChildThatIgnoresStdinDoesNotKillUs) {
  Script s("exit 0");
  ChildResult r = run_child({s.path.string()}, std::string(1 << 20, 'y'));  // EPIPE, not SIGPIPE
  EXPECT_EQ(r.exit_code, 0);
}

TEST(ChildProcess, TimeoutKillsTheProcessAndWhatItStarted) {
  Script s("echo started >&2; sleep 1000 & sleep 1000; wait");
  const auto t0 = std::chrono::steady_clock::now();
  ChildOptions opt;
  opt.timeout = 300ms;
  ChildResult r = run_child({s.path.string()}, "", opt);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, 9);
  EXPECT_EQ(r.err, "started\n");
  EXPECT_LT(seconds_since(t0), 5.0);
}

TEST(ChildProcess, MissingOrNonExecutableProgramIsAFixtureError) {
  for (const char* prog : {"/nonexistent/program", "bitnet-no-such-program-xyz", "/etc/hostname"}) {
    try {
      run_child({prog}, "");
      ADD_FAILURE() << prog;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::fixture);
      EXPECT_NE(std::string(e.what()).find(prog), std::string::npos) << e.what();
    }
  }
}

TEST(ReferenceSpec, ParsesEverySpelling) {
  ReferenceSpec g = parse_reference("golden:/a/b.json", "", 2);
  EXPECT_EQ(g.kind, RefKind::golden);
  EXPECT_EQ(g.file, "/a/b.json");
  ReferenceSpec c = parse_reference("cmd:my-engine --flag  x", "", 2);
  EXPECT_EQ(c.kind, RefKind::command);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"my-engine", "--flag", "x"}));
  ReferenceSpec b = parse_reference("backend:reference", "", 2);
  EXPECT_EQ(b.kind, RefKind::backend);
  EXPECT_EQ(b.backend, "reference");

  Script s("true");  // a directory holding something named like the adapter
  std::filesystem::copy_file(s.path, s.dir / kLlamaAdapter);
  ReferenceSpec l = parse_reference("llama.cpp:" + s.dir.string(), "", 3);
  EXPECT_EQ(l.kind, RefKind::llama_cpp);
  EXPECT_EQ(l.argv, (std::vector<std::string>{(s.dir / kLlamaAdapter).string(), "--threads", "3"}));
  ReferenceSpec env = parse_reference("llama.cpp", s.dir, 1);  // DIR from BITNET_LLAMA_DIR
  EXPECT_EQ(env.argv[0], (s.dir / kLlamaAdapter).string());
}

TEST(ReferenceSpec, ErrorsSayWhatToDo) {
  auto code_of = [](const std::string& spec, const std::filesystem::path& dir, std::string& msg) {
    try {
      parse_reference(spec, dir, 1);
    } catch (const Error& e) {
      msg = e.what();
      return e.code();
    }
    return ErrorCode::failure;
  };
  std::string msg;
  EXPECT_EQ(code_of("llama", "", msg), ErrorCode::usage);
  EXPECT_NE(msg.find("llama.cpp[:DIR]"), std::string::npos);
  EXPECT_EQ(code_of("cmd:  ", "", msg), ErrorCode::usage);
  EXPECT_EQ(code_of("llama.cpp", "", msg), ErrorCode::fixture);
  EXPECT_NE(msg.find("scripts/setup-llama-reference"), std::string::npos);
  EXPECT_EQ(code_of("llama.cpp:/nonexistent", "", msg), ErrorCode::fixture);
  EXPECT_NE(msg.find("/nonexistent/bitnet-llama-ref"), std::string::npos);
}

RefRequest request() {
  RefRequest r;
  r.model = "/m.gguf";
  r.prompt = "hi \"there\"";
  r.n_predict = 2;
  r.top_k = 3;
  return r;
}

// Runs a cmd: reference expected to fail; returns the error.
Error failing_reference(const std::string& body, std::chrono::milliseconds timeout = 10s) {
  Script s(body);
  try {
    run_command_reference(parse_reference("cmd:" + s.path.string(), "", 1), request(), timeout);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "the reference was accepted: " << body;
  return Error(ErrorCode::failure, "");
}

std::string full(const Error& e) { return e.format(); }

TEST(CommandReference, SendsTheRequestAndParsesTheAnswer) {
  Script s(R"(cat > "$(dirname "$0")/request.json"
echo '{"engine":"fake","prompt_ids":[1],"steps":[{"id":2,"top":[[2,1.5]]}]}'
echo warm >&2)");
  RefRun r = run_command_reference(parse_reference("cmd:" + s.path.string(), "", 1), request(), 10s);
  std::ifstream in(s.dir / "request.json");
  const std::string sent(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(sent, "{\"model\":\"/m.gguf\",\"prompt\":\"hi \\\"there\\\"\",\"n_predict\":2,\"top_k\":3}\n");
  EXPECT_EQ(r.golden.engine, "fake");
  EXPECT_EQ(r.golden.steps.at(0).top.at(0).logit, 1.5f);
  EXPECT_EQ(r.err, "warm\n");
}

TEST(CommandReference, HangIsCutOffByTheTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  Error e = failing_reference("echo loading >&2; sleep 1000", 500ms);
  EXPECT_LT(seconds_since(t0), 5.0);
  EXPECT_EQ(e.code(), ErrorCode::timeout);
  EXPECT_NE(full(e).find("ref.sh"), std::string::npos) << full(e);
  EXPECT_NE(full(e).find("timeout"), std::string::npos) << full(e);
  EXPECT_NE(full(e).find("| loading"), std::string::npos) << full(e);
}

TEST(CommandReference, CrashNonZeroExitAndJunkAreFailures) {
  Error crash = failing_reference("echo dying >&2; kill -SEGV $$");
  EXPECT_EQ(crash.code(), ErrorCode::failure);
  EXPECT_NE(full(crash).find("signal 11"), std::string::npos) << full(crash);
  EXPECT_NE(full(crash).find("| dying"), std::string::npos) << full(crash);

  Error status = failing_reference("echo 'cannot load model' >&2; exit 3");
  EXPECT_EQ(status.code(), ErrorCode::failure);
  EXPECT_NE(full(status).find("exited with status 3"), std::string::npos) << full(status);
  EXPECT_NE(full(status).find("cannot load model"), std::string::npos) << full(status);

  Error junk = failing_reference("echo 'Segmentation fault? no, just text'");
  EXPECT_EQ(junk.code(), ErrorCode::failure);
  EXPECT_NE(full(junk).find("not the golden format"), std::string::npos) << full(junk);
  EXPECT_NE(full(junk).find("just text"), std::string::npos) << full(junk);
}

}  // namespace
}  // namespace bitnet::diag
