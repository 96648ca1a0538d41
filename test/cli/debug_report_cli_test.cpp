// `bitnet debug-report` run as a user would: every section present, the JSON valid against
// docs/debug-report.schema.json, secrets and the home directory never shown, and a corrupt model,
// a failing, crashing or hanging run described in a full report with exit 0, all offline; the
// linked libraries' versions, free disk space and the sections left for the user (issue #25).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <gnu/libc-version.h>
#include <simdjson.h>
#include <sys/statvfs.h>
#include <zstd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>

#include "cli/json_schema_check.hpp"
#include "diag/debug_report.hpp"
#include "support/scoped.hpp"
#include "support/fixtures.hpp"
#include "support/run.hpp"

namespace bitnet::test {
namespace {

namespace fs = std::filesystem;



std::string published_sha256(const std::string& rel) {
  std::ifstream in(fixture_file("SHA256SUMS"));
  std::string hex, name;
  while (in >> hex >> name)
    if (name == rel) return hex;
  return {};
}

const std::string kStories = "models/stories260K.gguf";
const std::vector<std::string> kSections = {"## Summary",       "## Tool",       "## Libraries",       "## Machine",
                                            "## Disk",          "## Kernels",    "## Configuration",   "## Fixture cache",
                                            "## Log",           "## What I ran", "## What I expected", "## What I got"};

// Each test gets its own empty cache, so what the user has cached never leaks into a result.
class DebugReportCli : public ::testing::Test {
 protected:
  TempDir cache_;
  ScopedEnv cache_env_{"BITNET_CACHE_DIR", cache_.path().string()};

  simdjson::dom::element parse(const std::string& json) {
    simdjson::dom::element doc;
    EXPECT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS) << json;
    return doc;
  }
  std::vector<std::string> schema_errors(const std::string& json) {
    simdjson::dom::element schema;
    EXPECT_EQ(schema_parser_.load(std::string(BITNET_SOURCE_DIR) + "/docs/debug-report.schema.json").get(schema),
              simdjson::SUCCESS);
    simdjson::dom::element doc = parse(json);
    return SchemaChecker(schema).check(doc);
  }
  simdjson::dom::parser parser_, schema_parser_;
};

std::string errors_text(const std::vector<std::string>& errors) {
  std::string s;
  for (const auto& e : errors) s += e + "\n";
  return s;
}

TEST_F(DebugReportCli, MarkdownHasEverySectionAndTheModelFacts) {
  RunResult r = run_bitnet({"debug-report", "-m", fixture_file(kStories).string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& s : kSections) EXPECT_NE(r.out.find("\n" + s + "\n"), std::string::npos) << s;
  EXPECT_NE(r.out.find("\n## Model\n"), std::string::npos);
  EXPECT_NE(r.out.find(published_sha256(kStories)), std::string::npos);
  EXPECT_NE(r.out.find("| verdict | ok |"), std::string::npos);
  EXPECT_NE(r.out.find("No failure found."), std::string::npos);
  // The tool section agrees with --version.
  RunResult v = run_bitnet({"--version"});
  const std::string version_line = v.out.substr(0, v.out.find('\n'));
  EXPECT_NE(r.out.find("| version | " + version_line.substr(std::string("bitnet ").size()) + " |"), std::string::npos);
  // No -- ARGS: no run section.
  EXPECT_EQ(r.out.find("## Run:"), std::string::npos);
}

TEST_F(DebugReportCli, JsonValidatesAgainstTheSchemaAndHoldsTheFacts) {
  RunResult r = run_bitnet({"debug-report", "--format", "json", "-m", fixture_file(kStories).string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(errors_text(schema_errors(r.out)), "");
  simdjson::dom::element doc = parse(r.out);
  EXPECT_EQ(std::string_view(doc["model"]["verdict"]), "ok");
  EXPECT_EQ(std::string_view(doc["model"]["report"]["sha256"]), published_sha256(kStories));
  EXPECT_EQ(std::string_view(doc["model"]["report"]["architecture"]), "llama");
  EXPECT_EQ(uint64_t(doc["model"]["report"]["hparams"]["n_embd"]), 64u);
  EXPECT_EQ(uint64_t(doc["model"]["report"]["size"]), fs::file_size(fixture_file(kStories)));
  EXPECT_EQ(simdjson::dom::array(doc["summary"]).size(), 0u);
  // Exactly one backend is chosen, and it is the one named as selected.
  int chosen = 0;
  for (simdjson::dom::element b : doc["kernels"]["backends"].get_array())
    if (bool(b["selected"])) {
      ++chosen;
      EXPECT_EQ(std::string_view(b["name"]), std::string_view(doc["kernels"]["selected"]));
      EXPECT_TRUE(bool(b["supported"]));
    }
  EXPECT_EQ(chosen, 1);
  // The shared fixtures are found in BITNET_FIXTURE_PATH and hashed against the manifest.
  std::map<std::string, std::string> status;
  for (simdjson::dom::element e : doc["fixtures"]["entries"].get_array())
    status[std::string(std::string_view(e["name"]))] = std::string_view(e["status"]);
  EXPECT_EQ(status["stories260K"], "verified");
  EXPECT_GE(status.size(), 2u);
}

TEST_F(DebugReportCli, SchemaCheckerRejectsABrokenDocument) {
  RunResult r = run_bitnet({"debug-report", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(errors_text(schema_errors(r.out)), "");
  std::string broken = r.out;
  broken.replace(broken.find("\"machine\":"), 10, "\"machinx\":");
  broken.replace(broken.find("\"dirty\": "), 9, "\"dirty\": \"no\", \"was\": ");
  std::string errors = errors_text(schema_errors(broken));
  EXPECT_NE(errors.find("missing required key 'machine'"), std::string::npos) << errors;
  EXPECT_NE(errors.find("$.tool.dirty: expected boolean"), std::string::npos) << errors;
}

TEST_F(DebugReportCli, SecretsAndTheHomeDirectoryNeverAppear) {
  TempDir home;
  const std::string token = "hf_FAKE0token0for0the0test";
  ScopedEnv hf("HF_TOKEN", token);
  ScopedEnv key("BITNET_API_KEY", "k3y-v4lue-never-shown");
  ScopedEnv home_env("HOME", home.path().string());
  ScopedEnv cache("BITNET_CACHE_DIR", (home.path() / "cache").string());
  // The run's error names a path holding both the home directory and the token.
  const std::string bad = (home.path() / (token + ".gguf")).string();
  for (const char* format : {"md", "json"}) {
    SCOPED_TRACE(format);
    RunResult r = run_bitnet({"debug-report", "--format", format, "--", "inspect", bad});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find(token), std::string::npos);
    EXPECT_EQ(r.out.find("k3y-v4lue-never-shown"), std::string::npos);
    EXPECT_EQ(r.out.find(home.path().string()), std::string::npos);
    EXPECT_NE(r.out.find("~/cache"), std::string::npos);
    EXPECT_NE(r.out.find("~/[redacted].gguf"), std::string::npos);
  }
  RunResult r = run_bitnet({"debug-report", "--format", "json"});
  simdjson::dom::element doc = parse(r.out);
  std::map<std::string, std::pair<std::string, bool>> env;
  for (simdjson::dom::element e : doc["config"]["env"].get_array())
    env[std::string(std::string_view(e["name"]))] = {std::string(std::string_view(e["value"])), bool(e["redacted"])};
  EXPECT_EQ(env["HF_TOKEN"], std::make_pair(std::string("set"), true));
  EXPECT_EQ(env["BITNET_API_KEY"], std::make_pair(std::string("set"), true));
  EXPECT_EQ(env["BITNET_CACHE_DIR"], std::make_pair(std::string("~/cache"), false));
}

TEST_F(DebugReportCli, CorruptModelGivesAFullReportDescribingIt) {
  TempDir dir;
  const fs::path bad = dir.path() / "truncated.gguf";
  fs::copy_file(fixture_file(kStories), bad);
  fs::resize_file(bad, fs::file_size(bad) / 2);
  RunResult md = run_bitnet({"debug-report", "-m", bad.string()});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  for (const std::string& s : kSections) EXPECT_NE(md.out.find("\n" + s + "\n"), std::string::npos) << s;
  EXPECT_NE(md.out.find("| verdict | unreadable |"), std::string::npos);
  RunResult js = run_bitnet({"debug-report", "--format", "json", "-m", bad.string()});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  EXPECT_EQ(errors_text(schema_errors(js.out)), "");
  simdjson::dom::element doc = parse(js.out);
  EXPECT_EQ(std::string_view(doc["model"]["verdict"]), "unreadable");
  EXPECT_EQ(int64_t(doc["model"]["error"]["exit_code"]), 3);
  std::string first = std::string(std::string_view(doc["model"]["error"]["messages"].at(0)));
  EXPECT_NE(first.find("truncated"), std::string::npos) << first;
  std::string summary = std::string(std::string_view(doc["summary"].at(0)));
  EXPECT_NE(summary.find("could not be read"), std::string::npos) << summary;
}

TEST_F(DebugReportCli, FailingRunIsDescribed) {
  RunResult r = run_bitnet({"debug-report", "--format", "json", "--", "inspect", "/nonexistent/model.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(errors_text(schema_errors(r.out)), "");
  simdjson::dom::element doc = parse(r.out);
  simdjson::dom::element c = doc["child"];
  EXPECT_EQ(int64_t(c["exit_code"]), 3);
  EXPECT_TRUE(c["signal"].is_null());
  EXPECT_FALSE(bool(c["timed_out"]));
  std::string err;
  for (simdjson::dom::element l : c["stderr_tail"].get_array()) err += std::string(std::string_view(l)) + "\n";
  EXPECT_NE(err.find("error: "), std::string::npos) << err;
  EXPECT_NE(err.find("/nonexistent/model.gguf"), std::string::npos) << err;
  std::string summary = std::string(std::string_view(doc["summary"].at(0)));
  EXPECT_NE(summary.find("failed with exit code 3"), std::string::npos) << summary;
}

TEST_F(DebugReportCli, CrashingRunIsDescribed) {
  ScopedEnv fault("BITNET_TEST_FAULT", "segv:generate");
  RunResult r = run_bitnet({"debug-report", "--",  "generate", "-m", fixture_file(kStories).string(), "-p", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("killed by SIGSEGV"), std::string::npos) << r.out;
  for (const std::string& s : kSections) EXPECT_NE(r.out.find("\n" + s + "\n"), std::string::npos) << s;
  RunResult js = run_bitnet({"debug-report", "--format", "json", "--", "generate", "-p", "hi"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  EXPECT_EQ(errors_text(schema_errors(js.out)), "");
  simdjson::dom::element c = parse(js.out)["child"];
  EXPECT_EQ(int64_t(c["signal"]), SIGSEGV);
  EXPECT_EQ(std::string_view(c["signal_name"]), "SIGSEGV");
  EXPECT_TRUE(c["exit_code"].is_null());
}

TEST_F(DebugReportCli, HangingRunIsKilledAtTheTimeout) {
  ScopedEnv fault("BITNET_TEST_FAULT", "hang:generate");
  RunResult r = run_bitnet({"debug-report", "--format", "json", "--timeout", "1", "--", "generate", "-p", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::element c = parse(r.out)["child"];
  EXPECT_TRUE(bool(c["timed_out"]));
  EXPECT_EQ(int64_t(c["signal"]), SIGKILL);
  EXPECT_GE(double(c["seconds"]), 1.0);
  EXPECT_LT(double(c["seconds"]), 30.0);
  // Where it hung: its threads from /proc, and the stacks it printed when sent SIGQUIT.
  simdjson::dom::array threads = c["threads_at_timeout"];
  ASSERT_GT(threads.size(), 0u);
  EXPECT_NE(std::string(std::string_view(threads.at(0))).find(") state S, waiting in "), std::string::npos);
  std::string stacks;
  for (simdjson::dom::element l : simdjson::dom::array(c["stacks"])) stacks += std::string(std::string_view(l)) + "\n";
  EXPECT_NE(stacks.find("bitnet: SIGQUIT: stacks of "), std::string::npos) << stacks;
  EXPECT_NE(stacks.find("), main ---"), std::string::npos) << stacks;
  EXPECT_NE(stacks.find("--- end of thread dump ---"), std::string::npos) << stacks;
  EXPECT_NE(stacks.find("pause"), std::string::npos) << "the frame it hangs in (the test fault pause()s): " << stacks;
}

TEST_F(DebugReportCli, SuccessfulRunHasExitZeroTimingAndOutput) {
  RunResult r = run_bitnet({"debug-report", "--format", "json", "--", "generate", "-m", fixture_file(kStories).string(),
                            "-p", "Once upon a time", "-n", "4", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::element doc = parse(r.out);
  simdjson::dom::element c = doc["child"];
  EXPECT_EQ(int64_t(c["exit_code"]), 0);
  EXPECT_GT(double(c["seconds"]), 0.0);
  ASSERT_GT(simdjson::dom::array(c["stdout_tail"]).size(), 0u);
  EXPECT_NE(std::string(std::string_view(c["stdout_tail"].at(0))).find("Once upon a time"), std::string::npos);
  EXPECT_EQ(simdjson::dom::array(doc["summary"]).size(), 0u);
}

TEST_F(DebugReportCli, NeverDownloadsEvenForAFixtureThatHasAUrl) {
  TempDir empty;
  ScopedEnv path("BITNET_FIXTURE_PATH", empty.path().string());
  RunResult r = run_bitnet({"debug-report", "--format", "json", "-m", "fixture:stories260K"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::element doc = parse(r.out);
  EXPECT_EQ(std::string_view(doc["model"]["verdict"]), "unreadable");
  EXPECT_EQ(int64_t(doc["model"]["error"]["exit_code"]), 4);
  EXPECT_TRUE(fs::is_empty(cache_.path()));
  for (simdjson::dom::element e : doc["fixtures"]["entries"].get_array())
    EXPECT_EQ(std::string_view(e["status"]), "missing") << std::string_view(e["name"]);
}

TEST_F(DebugReportCli, LogTailComesFromTheRunsLogFile) {
  TempDir dir;
  const fs::path log = dir.path() / "bitnet.log";
  // No global --log-file: the one the run was given is the last log file.
  RunResult r = run_bitnet({"debug-report", "--", "--log-file", log.string(), "-vv", "generate", "-m",
                            fixture_file(kStories).string(), "-p", "hi", "-n", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string written = read_all(log);
  ASSERT_FALSE(written.empty());
  // The last line of the file is the last line of the report's log block.
  std::string body = written.substr(0, written.size() - 1);
  std::string last = body.substr(body.rfind('\n') + 1);
  EXPECT_NE(r.out.find(last + "\n```"), std::string::npos) << last << "\n" << r.out;
  RunResult none = run_bitnet({"debug-report"});
  EXPECT_NE(none.out.find("no log file configured"), std::string::npos);
}

TEST_F(DebugReportCli, OutputFilesByExtensionWithZstd) {
  TempDir dir;
  RunResult r = run_bitnet({"debug-report", "-o", (dir.path() / "r.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(errors_text(schema_errors(read_all(dir.path() / "r.json"))), "");

  r = run_bitnet({"debug-report", "-o", (dir.path() / "r.md.zst").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string packed = read_all(dir.path() / "r.md.zst");
  const unsigned long long size = ZSTD_getFrameContentSize(packed.data(), packed.size());
  ASSERT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  ASSERT_NE(size, ZSTD_CONTENTSIZE_UNKNOWN);
  std::string text(size, '\0');
  ASSERT_EQ(ZSTD_decompress(text.data(), text.size(), packed.data(), packed.size()), size);
  EXPECT_TRUE(text.starts_with("# bitnet debug report\n"));
  for (const std::string& s : kSections) EXPECT_NE(text.find("\n" + s + "\n"), std::string::npos) << s;
  // Only the two reports: no temporary file left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);

  r = run_bitnet({"debug-report", "-o", (dir.path() / "no" / "such" / "dir.md").string()});
  EXPECT_EQ(r.exit_code, 1);
  // Refused before the report is gathered (issue #20, point 4).
  EXPECT_TRUE(r.err.starts_with("error: -o " + (dir.path() / "no" / "such" / "dir.md").string() + ": cannot create it"))
      << r.err;
}

TEST_F(DebugReportCli, BadBackendAndBadManifestAreDescribedNotFatal) {
  TempDir dir;
  std::ofstream(dir.path() / "bad.json") << "{ not json";
  ScopedEnv backend("BITNET_BACKEND", "nonesuch");
  ScopedEnv manifest("BITNET_MANIFEST", (dir.path() / "bad.json").string());
  RunResult r = run_bitnet({"debug-report", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(errors_text(schema_errors(r.out)), "");
  simdjson::dom::element doc = parse(r.out);
  EXPECT_TRUE(doc["kernels"]["selected"].is_null());
  EXPECT_EQ(int64_t(doc["kernels"]["error"]["exit_code"]), 2);
  EXPECT_NE(std::string(std::string_view(doc["kernels"]["error"]["messages"].at(0))).find("unknown backend 'nonesuch'"),
            std::string::npos);
  EXPECT_EQ(int64_t(doc["fixtures"]["error"]["exit_code"]), 3);
  // The built-in manifest is still reported.
  EXPECT_GT(simdjson::dom::array(doc["fixtures"]["entries"]).size(), 0u);
  EXPECT_EQ(simdjson::dom::array(doc["summary"]).size(), 2u);
}

// Issue #20, point 12: a bad BITNET_THREADS stopped debug-report with "error: : Value abc not in
// range 1 to 1024"; it is now described in the report, which a bug report needs most.
TEST_F(DebugReportCli, BadThreadsIsDescribedNotFatal) {
  ScopedEnv threads("BITNET_THREADS", "abc");
  RunResult r = run_bitnet({"debug-report", "--no-hash", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(errors_text(schema_errors(r.out)), "");
  simdjson::dom::element doc = parse(r.out);
  EXPECT_EQ(std::string_view(doc["config"]["threads_source"]), "all cores");
  EXPECT_EQ(std::string_view(doc["config"]["threads_error"]), "BITNET_THREADS='abc' is not a thread count from 1 to 1024");
  RunResult md = run_bitnet({"debug-report", "--no-hash"});
  EXPECT_NE(md.out.find("| threads problem | BITNET_THREADS='abc' is not a thread count from 1 to 1024 |"), std::string::npos);
  ScopedEnv good("BITNET_THREADS", "3");
  RunResult ok = run_bitnet({"debug-report", "--no-hash", "--format", "json"});
  simdjson::dom::element d2 = parse(ok.out);
  EXPECT_EQ(int64_t(d2["config"]["threads"]), 3);
  EXPECT_EQ(std::string_view(d2["config"]["threads_source"]), "BITNET_THREADS");
  EXPECT_TRUE(d2["config"]["threads_error"].is_null());
}

// Issue #25, point 7: every library bitnet links, with a version; the ones this test links too
// must agree with what the test itself sees.
TEST_F(DebugReportCli, LibrariesAreListedWithTheirVersions) {
  RunResult r = run_bitnet({"debug-report", "--no-hash", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(errors_text(schema_errors(r.out)), "");
  simdjson::dom::element doc = parse(r.out);
  std::vector<std::string> names;
  std::map<std::string, std::string> version, source;
  for (simdjson::dom::element l : doc["libraries"].get_array()) {
    const std::string name{std::string_view(l["name"])};
    names.push_back(name);
    version[name] = std::string_view(l["version"]);
    source[name] = std::string_view(l["source"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"libcurl", "OpenSSL", "spdlog", "simdjson", "zstd", "PCRE2", "glibc", "libstdc++"}));
  // "7.88.1", "3.0.19", "10.42 2022-12-11" (PCRE2's date), "12 (20230528)" (libstdc++'s date stamp).
  // digits(.digits)*, then optionally " " and a date of digits and dashes, maybe in parentheses
  // (written by hand: GCC 12's std::regex trips -Werror=maybe-uninitialized under the sanitizers).
  auto looks_like_version = [](std::string_view v) {
    size_t i = 0;
    auto digits = [&] {
      const size_t from = i;
      while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
      return i > from;
    };
    if (!digits()) return false;
    while (i < v.size() && v[i] == '.') {
      ++i;
      if (!digits()) return false;
    }
    if (i == v.size()) return true;
    if (v[i++] != ' ') return false;
    const bool paren = i < v.size() && v[i] == '(';
    if (paren) ++i;
    const size_t from = i;
    while (i < v.size() && ((v[i] >= '0' && v[i] <= '9') || v[i] == '-')) ++i;
    if (i == from) return false;
    if (paren && (i == v.size() || v[i++] != ')')) return false;
    return i == v.size();
  };
  for (const std::string& n : names) EXPECT_TRUE(looks_like_version(version[n])) << n << ": '" << version[n] << "'";
  EXPECT_EQ(version["zstd"], ZSTD_versionString());
  EXPECT_EQ(version["glibc"], gnu_get_libc_version());
#define BITNET_TEST_STR_(x) #x
#define BITNET_TEST_STR(x) BITNET_TEST_STR_(x)
  EXPECT_EQ(version["simdjson"], BITNET_TEST_STR(SIMDJSON_VERSION));
  EXPECT_EQ(source["zstd"], "runtime");
  EXPECT_EQ(source["spdlog"], "headers");
  RunResult md = run_bitnet({"debug-report", "--no-hash"});
  EXPECT_NE(md.out.find(fmt::format("| zstd | {} | loaded library |", ZSTD_versionString())), std::string::npos) << md.out;
  EXPECT_NE(md.out.find(fmt::format("| glibc | {} | loaded library |", gnu_get_libc_version())), std::string::npos);
}

struct Statvfs {
  uint64_t free_bytes = 0, total_bytes = 0;
};
Statvfs statvfs_of(const fs::path& dir) {
  struct statvfs st {};
  EXPECT_EQ(::statvfs(dir.c_str(), &st), 0) << dir;
  return {static_cast<uint64_t>(st.f_bavail) * st.f_frsize, static_cast<uint64_t>(st.f_blocks) * st.f_frsize};
}

// Other processes write to the same disks while the test runs: free space is compared within this.
constexpr double kFreeSlack = 2.0 * (1ull << 30);

// Issue #25, point 7: free space of the cache directory (measured where it would be created when
// it does not exist yet) and of the model's directory, against statvfs seen by the test.
TEST_F(DebugReportCli, DiskShowsFreeSpaceOfTheCacheAndModelDirectories) {
  const fs::path model = fixture_file(kStories);
  RunResult r = run_bitnet({"debug-report", "--no-hash", "--format", "json", "-m", model.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(errors_text(schema_errors(r.out)), "");
  simdjson::dom::element doc = parse(r.out);
  simdjson::dom::array disks = doc["disks"];
  ASSERT_EQ(disks.size(), 2u);
  const struct {
    std::string_view role;
    fs::path dir;
  } want[] = {{"cache", cache_.path()}, {"model", model.parent_path()}};
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(want[i].role);
    simdjson::dom::element d = disks.at(i);
    const Statvfs st = statvfs_of(want[i].dir);
    EXPECT_EQ(std::string_view(d["role"]), want[i].role);
    EXPECT_EQ(std::string_view(d["path"]), want[i].dir.string());
    EXPECT_EQ(std::string_view(d["measured"]), want[i].dir.string());
    EXPECT_TRUE(d["error"].is_null());
    EXPECT_EQ(uint64_t(d["total_bytes"]), st.total_bytes);
    EXPECT_NEAR(double(uint64_t(d["free_bytes"])), double(st.free_bytes), kFreeSlack);
  }

  // The Markdown row gives the exact byte count too.
  RunResult md = run_bitnet({"debug-report", "--no-hash"});
  const std::string row = "| " + cache_.path().string() + " | cache | ";
  const size_t at = md.out.find(row);
  ASSERT_NE(at, std::string::npos) << md.out;
  const std::string line = md.out.substr(at, md.out.find('\n', at) - at);
  // "(N bytes)": the number before the first " bytes)".
  const size_t bytes_at = line.find(" bytes)");
  ASSERT_NE(bytes_at, std::string::npos) << line;
  const size_t open = line.rfind('(', bytes_at);
  ASSERT_NE(open, std::string::npos) << line;
  const std::string number = line.substr(open + 1, bytes_at - open - 1);
  ASSERT_FALSE(number.empty()) << line;
  ASSERT_EQ(number.find_first_not_of("0123456789"), std::string::npos) << line;
  EXPECT_NEAR(std::stod(number), double(statvfs_of(cache_.path()).free_bytes), kFreeSlack) << line;

  // A cache directory not created yet is measured at its nearest existing parent.
  ScopedEnv fresh("BITNET_CACHE_DIR", (cache_.path() / "not" / "yet").string());
  RunResult js = run_bitnet({"debug-report", "--no-hash", "--format", "json"});
  simdjson::dom::element d = parse(js.out)["disks"].at(0);
  EXPECT_EQ(std::string_view(d["path"]), (cache_.path() / "not" / "yet").string());
  EXPECT_EQ(std::string_view(d["measured"]), cache_.path().string());
  EXPECT_EQ(uint64_t(d["total_bytes"]), statvfs_of(cache_.path()).total_bytes);
}

// Issue #25, point 7: the report ends with three empty sections for the user, each with a hint
// that does not show once rendered; JSON has them as empty strings.
TEST_F(DebugReportCli, EndsWithEmptySectionsForWhatIRanExpectedAndGot) {
  RunResult r = run_bitnet({"debug-report", "--no-hash"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t log = r.out.find("\n## Log\n");
  const size_t ran = r.out.find("\n## What I ran\n\n<!-- ");
  const size_t expected = r.out.find("\n## What I expected\n\n<!-- ");
  const size_t got = r.out.find("\n## What I got\n\n<!-- ");
  ASSERT_NE(log, std::string::npos);
  ASSERT_NE(ran, std::string::npos) << r.out;
  ASSERT_NE(expected, std::string::npos);
  ASSERT_NE(got, std::string::npos);
  EXPECT_LT(log, ran);
  EXPECT_LT(ran, expected);
  EXPECT_LT(expected, got);
  // Nothing after the last section but its one-line hint.
  const std::string tail = r.out.substr(got + std::string("\n## What I got\n\n").size());
  EXPECT_TRUE(tail.ends_with(" -->\n")) << tail;
  EXPECT_EQ(std::count(tail.begin(), tail.end(), '\n'), 1) << tail;

  RunResult js = run_bitnet({"debug-report", "--no-hash", "--format", "json"});
  simdjson::dom::element doc = parse(js.out);
  for (const char* key : {"what_i_ran", "what_i_expected", "what_i_got"}) EXPECT_EQ(std::string_view(doc[key]), "") << key;
}

TEST(DebugReportPrivacy, HomeIsReplacedOnlyAsAWholePathComponent) {
  diag::Privacy p{"/home/al", {"s3cr3t-value", "abc"}};
  EXPECT_EQ(p.clean("/home/alice /home/al/x /home/al /home/al.d:/home/al"), "/home/alice ~/x ~ /home/al.d:~");
  // Values under four characters are not hunted for: they would blank out ordinary text.
  EXPECT_EQ(p.clean("x=s3cr3t-value abc"), "x=[redacted] abc");
  EXPECT_TRUE(diag::is_secret_name("HF_TOKEN"));
  EXPECT_TRUE(diag::is_secret_name("my_api_key"));
  EXPECT_TRUE(diag::is_secret_name("GIT_ASKPASS_AUTH"));
  EXPECT_FALSE(diag::is_secret_name("BITNET_THREADS"));
}

TEST_F(DebugReportCli, UsageErrors) {
  RunResult r = run_bitnet({"debug-report", "--format", "xml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.err.starts_with("error: ")) << r.err;
  r = run_bitnet({"debug-report", "--timeout", "0"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace bitnet::test
