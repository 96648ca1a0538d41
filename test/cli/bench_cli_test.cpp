// `bitnet bench` output: the JSON rows carry llama-bench's field names, and every number is
// consistent with the raw samples (tokens / time).
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/gguf/reader.hpp"
#include "core/kernels/kernels.hpp"
#include "diag/bench.hpp"
#include "core/model/model.hpp"
#include "support/llama_ref.hpp"
#include "support/fixtures.hpp"
#include "support/run.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

// A directory holding a fake bitnet-llama-ref: a shell script with the given body.
struct FakeReference {
  std::filesystem::path dir;
  // The request (JSON on stdin) is in $req for the body.
  explicit FakeReference(const std::string& body) {
    char tmpl[] = "/tmp/bitnet-bench-ref-XXXXXX";
    dir = ::mkdtemp(tmpl);
    const auto exe = dir / "bitnet-llama-ref";
    std::ofstream(exe) << "#!/bin/sh\nreq=$(cat)\n" << body << "\n";
    ::chmod(exe.c_str(), 0755);
  }
  ~FakeReference() { std::filesystem::remove_all(dir); }
  std::string spec() const { return "llama.cpp:" + dir.string(); }
};

simdjson::dom::array parse_rows(simdjson::dom::parser& parser, const std::string& out) {
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS) << out;
  return doc.get_array();
}

// Rows alternate ours / theirs; ours carry ratio = ours avg_ts / theirs avg_ts.
void check_reference_rows(const std::string& out, size_t n_tests, int64_t reps) {
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, out);
  ASSERT_EQ(rows.size(), 2 * n_tests) << out;
  for (size_t i = 0; i < n_tests; ++i) {
    simdjson::dom::element ours = rows.at(2 * i), theirs = rows.at(2 * i + 1);
    EXPECT_EQ(std::string_view(ours["backends"]), "CPU");
    EXPECT_EQ(std::string_view(theirs["backends"]), "llama.cpp");
    EXPECT_EQ(std::string_view(ours["test"]), std::string_view(theirs["test"]));
    EXPECT_EQ(int64_t(ours["n_threads"]), int64_t(theirs["n_threads"]));
    EXPECT_EQ(theirs["samples_ns"].get_array().size(), static_cast<size_t>(reps));
    EXPECT_TRUE(theirs["ratio"].error()) << "only our rows carry the ratio";
    const double r = double(ours["ratio"]), want = double(ours["avg_ts"]) / double(theirs["avg_ts"]);
    EXPECT_NEAR(r, want, 1e-9 * want);
  }
}

// Above its floor the probe reads what one decode step reads, so the last-level cache can serve
// it no more than it serves the decode (a 256 MiB probe on a 504 MiB L3 was partly a cache probe).
TEST(Bench, ProbeSizeIsTheStepsBetweenTheFloorAndTheCap) {
  constexpr uint64_t MiB = uint64_t{1} << 20;
  EXPECT_EQ(diag::probe_bytes_for(256 * MiB, MiB), 256 * MiB);
  EXPECT_EQ(diag::probe_bytes_for(256 * MiB, 708 * MiB), 708 * MiB);
  EXPECT_EQ(diag::probe_bytes_for(256 * MiB, uint64_t{40} << 30), diag::kMaxProbeBytes);
  EXPECT_EQ(diag::kMaxProbeBytes, 2048 * MiB);
}

TEST(Bench, ProbeReadsAsMuchAsADecodeStep) {
  auto m = model::Model::load(fixture_file("models/bitnet-tiny-tq2_0.gguf"));
  diag::BenchOptions opt;
  opt.tests = {{0, 4}};
  opt.reps = 1;
  opt.threads = {2};
  opt.kernels = &kernels::reference_table();
  opt.bandwidth_bytes = 4096;  // below the step, which then decides
  const diag::BenchReport r = diag::run_bench("tiny", *m, opt);
  ASSERT_EQ(r.results.size(), 1u);
  const diag::BenchResult& tg = r.results[0];
  ASSERT_EQ(tg.test, "tg4");
  EXPECT_GT(tg.bytes_per_token, uint64_t{64} << 10);
  EXPECT_LE(tg.bandwidth_probe_bytes, tg.bytes_per_token);
  EXPECT_GT(tg.bandwidth_probe_bytes + 2048, tg.bytes_per_token);  // whole 64-byte groups per thread chunk
  ASSERT_EQ(r.bandwidth.size(), 1u);
  EXPECT_EQ(r.bandwidth[0].bytes, tg.bandwidth_probe_bytes);
}

TEST(BenchCli, JsonRowsAreConsistentWithTheirSamples) {
  RunResult r = run_bitnet({"bench", "-m", "fixture:stories260K", "-p", "32", "-n", "16", "-r", "3", "-t", "1,2", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  simdjson::dom::array rows = doc.get_array();
  ASSERT_EQ(rows.size(), 4u);  // pp32 and tg16 for 1 and 2 threads
  int i = 0;
  for (simdjson::dom::element row : rows) {
    const bool pp = i % 2 == 0;
    EXPECT_EQ(int64_t(row["n_threads"]), i < 2 ? 1 : 2);
    EXPECT_EQ(std::string_view(row["test"]), pp ? "pp32" : "tg16");
    EXPECT_EQ(int64_t(row["n_prompt"]), pp ? 32 : 0);
    EXPECT_EQ(int64_t(row["n_gen"]), pp ? 0 : 16);
    EXPECT_GT(uint64_t(row["model_size"]), 1000000u);
    EXPECT_GT(uint64_t(row["model_n_params"]), 200000u);
    EXPECT_FALSE(std::string_view(row["kernel_table"]).empty());
    const double tokens = pp ? 32 : 16;
    double mean = 0;
    int n = 0;
    for (int64_t ns : row["samples_ns"].get_array()) {
      EXPECT_GT(ns, 0);
      mean += tokens / (static_cast<double>(ns) * 1e-9);
      ++n;
    }
    ASSERT_EQ(n, 3);
    mean /= n;
    EXPECT_NEAR(double(row["avg_ts"]), mean, 1e-3 * mean);
    EXPECT_GE(double(row["stddev_ts"]), 0.0);
    ++i;
  }
}

// Every repetition's session (and the warm-ups', at every thread count) multiplies one copy of
// the weights, made once: repetitions used to re-copy the whole model (1.1 GiB for the 2B one).
TEST(BenchCli, CopiesTheWeightsOnce) {
  RunResult r = run_bitnet({"--log-level", "warn,infer=debug", "bench", "-m", "fixture:stories260K", "-p", "8", "-n",
                            "4", "-r", "5", "-t", "1,2", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines_with(r.err, "[infer] weights: "), 1u) << r.err;
}

TEST(BenchCli, MarkdownAndCsvHaveOneLinePerTest) {
  RunResult md = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "-t", "1"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("| model | size | params | backend | threads | test | t/s |"), std::string::npos);
  EXPECT_NE(md.out.find("| pp16 |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("| tg8 |"), std::string::npos) << md.out;
  RunResult csv = run_bitnet({"bench", "-p", "16", "-n", "0", "-r", "1", "-t", "1", "-o", "csv"});
  ASSERT_EQ(csv.exit_code, 0);
  std::istringstream in(csv.out);
  std::string header, row, extra;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_TRUE(header.starts_with("model_filename,model_type,model_size,model_n_params,")) << header;
  EXPECT_NE(row.find(",pp16,"), std::string::npos) << row;
  EXPECT_FALSE(std::getline(in, extra)) << "only the pp test was asked for";
}

TEST(BenchCli, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(run_bitnet({"bench", "-t", "0"}).exit_code, 2);
  EXPECT_EQ(run_bitnet({"bench", "-t", "1,x"}).exit_code, 2);
  EXPECT_EQ(run_bitnet({"bench", "-p", "100000"}).exit_code, 2);  // beyond the model's context
}

TEST(BenchCli, ReferenceRowsAndRatiosFromAFakeAdapter) {
  // pp16 in 0.5 s and tg8 in 0.25 s: 32 t/s for both tests of theirs. Each request asks for one
  // test, as bench alternates test by test.
  FakeReference ref(
      "case \"$req\" in *'\"n_gen\":0'*) echo '{\"pp_seconds\":[0.5],\"tg_seconds\":[]}';;\n"
      "*) echo '{\"pp_seconds\":[],\"tg_seconds\":[0.25]}';; esac");
  RunResult r = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "2", "-t", "1", "--reference", ref.spec(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_reference_rows(r.out, 2, 2);
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  EXPECT_NEAR(double(rows.at(1)["avg_ts"]), 32.0, 1e-9);
  EXPECT_NEAR(double(rows.at(3)["avg_ts"]), 32.0, 1e-9);
  EXPECT_NEAR(double(rows.at(0)["ratio"]), double(rows.at(0)["avg_ts"]) / 32.0, 1e-6);

  RunResult md = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "-t", "1", "--reference", ref.spec()});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("| t/s | ratio |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("| llama.cpp | 1 | pp16 | 32.00 ± 0.00 | |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("| llama.cpp | 1 | tg8 | 32.00 ± 0.00 | |"), std::string::npos) << md.out;

  RunResult csv = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "-t", "1", "--reference", ref.spec(), "-o", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  std::istringstream in(csv.out);
  std::string header, ours, theirs;
  std::getline(in, header);
  std::getline(in, ours);
  std::getline(in, theirs);
  EXPECT_TRUE(header.ends_with(",avg_ts,stddev_ts,roofline_pct,entry,tensors,rows,cols,n_tokens,best_ns,gops,gbs,ratio"))
      << header;
  EXPECT_NE(ours.find(",CPU,"), std::string::npos) << ours;
  EXPECT_NE(theirs.find(",llama.cpp,,1,16,0,0,pp16,32.000000,"), std::string::npos) << theirs;
}

TEST(BenchCli, MissingReferenceIsAClearError) {
  RunResult r = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "--reference", "llama.cpp:/nonexistent/llama-ref"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("bitnet bench --reference llama.cpp:/nonexistent/llama-ref"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("scripts/setup-llama-reference"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(run_bitnet({"bench", "--reference", "golden:x.json"}).exit_code, 2);
}

TEST(BenchCli, FailingReferenceNamesTheCommand) {
  FakeReference crash("echo 'adapter exploded' >&2; exit 3");
  RunResult r = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "-t", "1", "--reference", crash.spec()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find((crash.dir / "bitnet-llama-ref").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("adapter exploded"), std::string::npos) << r.err;
  FakeReference junk("echo '{\"pp_seconds\":[]}'");
  RunResult j = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "-t", "1", "--reference", junk.spec()});
  EXPECT_EQ(j.exit_code, 1) << j.err;
  EXPECT_NE(j.err.find("not a bench answer"), std::string::npos) << j.err;
}

// The decode roofline's bytes per token, from the file's own tensor table: every tensor a token
// passes through once (all but the embedding table, of which one row), the output projection
// again when it is tied to the embeddings, and the f16 K/V rows of n_past earlier positions.
uint64_t expected_bytes_per_token(const std::filesystem::path& path, uint32_t n_past) {
  auto f = gguf::GgufFile::open(path);
  uint64_t bytes = 0, embd = 0, embd_rows = 1;
  bool has_output = false;
  for (const auto& t : f.tensors()) {
    if (t.name == "token_embd.weight") {
      embd = t.nbytes;
      embd_rows = static_cast<uint64_t>(t.ne[1]);
      continue;
    }
    has_output |= t.name == "output.weight";
    bytes += t.nbytes;
  }
  bytes += embd / embd_rows + (has_output ? 0 : embd);
  auto m = model::Model::load(path);
  return bytes + uint64_t{2} * m->config().n_layer * n_past * m->config().n_embd_kv() * 2;
}

// The session's copy of the weights for a TQ2_0 file (copied as they are): every matrix, i.e.
// every 2-D tensor but the embedding table (the table itself when the output is tied to it),
// each from a 64-byte boundary.
uint64_t expected_weight_copy(const std::filesystem::path& path) {
  auto f = gguf::GgufFile::open(path);
  uint64_t bytes = 0, embd = 0;
  bool has_output = false;
  for (const auto& t : f.tensors()) {
    if (t.ne.size() < 2 || t.ne[1] < 2) continue;
    const uint64_t aligned = (t.nbytes + 63) / 64 * 64;
    if (t.name == "token_embd.weight") {
      embd = aligned;
      continue;
    }
    has_output |= t.name == "output.weight";
    bytes += aligned;
  }
  return bytes + (has_output ? 0 : embd);
}

TEST(BenchCli, KernelRowsAndRooflineAreConsistent) {
  const auto path = fixture_file("models/bitnet-tiny-tq2_0.gguf");
  RunResult r = run_bitnet({"bench", "-m", path.string(), "-p", "0", "-n", "8", "-r", "1", "-t", "2", "--kernels",
                            "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  std::set<std::string> tables, entries;
  size_t n_kernel = 0;
  for (simdjson::dom::element row : rows) {
    const std::string_view test = row["test"];
    if (test == "tg8") {
      const auto bpt = uint64_t(row["bytes_per_token"]);
      EXPECT_EQ(bpt, expected_bytes_per_token(path, 4));  // the tg test's mean context position
      const double bw = double(row["bandwidth_gbs"]), roof = double(row["roofline_ts"]);
      EXPECT_GT(bw, 0.1);
      // The probe's floor, 256 MiB (this model reads far less per token); whole 64-byte groups.
      EXPECT_LE(uint64_t(row["bandwidth_probe_bytes"]), uint64_t{256} << 20);
      EXPECT_GT(uint64_t(row["bandwidth_probe_bytes"]), (uint64_t{256} << 20) - 4096);
      EXPECT_NEAR(roof, bw * 1e9 / static_cast<double>(bpt), 1e-6 * roof);
      EXPECT_NEAR(double(row["roofline_pct"]), 100.0 * double(row["avg_ts"]) / roof, 1e-6);
      EXPECT_EQ(uint64_t(row["weights_bytes"]), expected_weight_copy(path));
      continue;
    }
    ASSERT_EQ(test, "kernel") << r.out;
    ++n_kernel;
    tables.insert(std::string(std::string_view(row["kernel_table"])));
    entries.insert(std::string(std::string_view(row["entry"])));
    const auto rows_ = int64_t(row["rows"]), cols = int64_t(row["cols"]), nt = int64_t(row["n_tokens"]);
    const auto best = uint64_t(row["best_ns"]), bytes = uint64_t(row["bytes"]);
    EXPECT_GT(rows_, 0);
    EXPECT_GT(cols, 0);
    EXPECT_GT(nt, 0);
    EXPECT_GT(best, 0u);
    EXPECT_GT(bytes, 0u);
    uint64_t min_ns = UINT64_MAX;
    for (uint64_t ns : row["samples_ns"].get_array()) min_ns = std::min(min_ns, ns);
    EXPECT_EQ(best, min_ns);
    // Rounding to whole nanoseconds in the JSON bounds the agreement.
    const double secs = static_cast<double>(best) * 1e-9, slack = 2e-9 / secs + 1e-9;
    EXPECT_NEAR(double(row["gbs"]), static_cast<double>(bytes) / secs / 1e9, slack * double(row["gbs"]));
    if (std::string_view(row["entry"]).starts_with("dot_")) {
      const double gops = 2.0 * static_cast<double>(rows_ * cols * nt) / secs / 1e9;
      EXPECT_NEAR(double(row["gops"]), gops, slack * gops);
    }
  }
  // bitnet-tiny-tq2_0: TQ2_0 layers and a Q6_K (tied) output, on every backend this CPU runs.
  EXPECT_TRUE(tables.count("reference")) << r.out;
  EXPECT_TRUE(entries.count("dot_tq2_0_q8_k")) << r.out;
  EXPECT_TRUE(entries.count("dot_q6_k_q8_k")) << r.out;
  EXPECT_TRUE(entries.count("quantize_q8_k")) << r.out;
  EXPECT_GE(n_kernel, tables.size() * 3);
}

// An F16 output matrix: tg steps compute only the 40 best logits through the output screen, and
// the row says how many rows and the copy's bytes, counted in bytes_per_token instead of the
// matrix; --exact-logits computes them all and counts the matrix, as before.
TEST(BenchCli, ScreenedDecodeCountsTheRowsItRead) {
  const auto path = fixture_file("models/bitnet-tiny-f16.gguf");  // vocab 512, tied F16 output
  const uint64_t matrix = 512 * 256 * 2, row_bytes = 256 * 2;
  for (bool exact : {false, true}) {
    std::vector<std::string> args = {"bench", "-m", path.string(), "-p", "0", "-n", "8", "-r", "1", "-t", "2", "-o", "json"};
    if (exact) args.push_back("--exact-logits");
    RunResult r = run_bitnet(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    simdjson::dom::parser parser;
    simdjson::dom::array rows = parse_rows(parser, r.out);
    ASSERT_EQ(rows.size(), 1u) << r.out;
    simdjson::dom::element row = rows.at(0);
    const uint64_t full = expected_bytes_per_token(path, 4), bpt = uint64_t(row["bytes_per_token"]);
    if (exact) {
      EXPECT_TRUE(row["output_rows"].error()) << r.out;
      EXPECT_EQ(bpt, full);
      continue;
    }
    const double computed = double(row["output_rows"]);
    const uint64_t screen = uint64_t(row["screen_bytes"]);
    EXPECT_GE(computed, 40.0) << r.out;  // at least the 40 asked for
    EXPECT_LT(computed, 512.0) << r.out;
    EXPECT_GE(screen, 512u * 256u) << "one byte per weight at least";
    EXPECT_EQ(bpt, full - matrix + screen + static_cast<uint64_t>(computed * row_bytes));
  }
}

TEST(BenchCli, AgainstLlamaCpp) {
  BITNET_REQUIRE_LLAMA_REF();
  // One thread: ggml's spinning workers make two threads erratic on a busy machine.
  RunResult r = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "2", "-t", "1", "--reference", "llama.cpp", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_reference_rows(r.out, 2, 2);
  // After a context of 600 tokens: more than one of the adapter's 512-token batches.
  RunResult d = run_bitnet({"bench", "-p", "16", "-n", "8", "-d", "600", "-r", "2", "-t", "1", "--reference", "llama.cpp",
                            "-o", "json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  check_reference_rows(d.out, 2, 2);
  simdjson::dom::parser parser;
  for (simdjson::dom::element row : parse_rows(parser, d.out)) {
    EXPECT_EQ(int64_t(row["n_depth"]), 600);
    EXPECT_TRUE(std::string_view(row["test"]).ends_with(" @ d600")) << d.out;
  }
}

// Issue #20, point 15 (part): llama-bench's JSON fields that scripts read (build_commit,
// cpu_info, test_time, avg_ns, stddev_ns, samples_ts), and -p 0 -n 0 says there is nothing to do
// instead of printing nothing with exit 0.
TEST(BenchCli, JsonHasLlamaBenchFieldsAndEmptyRunsAreRefused) {
  RunResult r = run_bitnet({"bench", "-p", "4", "-n", "2", "-r", "2", "-t", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  for (simdjson::dom::element row : doc.get_array()) {
    EXPECT_EQ(std::string_view(row["build_commit"]).size(), 12u);
    EXPECT_TRUE(row["cpu_info"].is_string());
    EXPECT_EQ(std::string_view(row["test_time"]).size(), 20u);  // 2026-12-07T12:00:00Z
    const simdjson::dom::array ns = row["samples_ns"], ts = row["samples_ts"];
    ASSERT_EQ(ns.size(), 2u);
    ASSERT_EQ(ts.size(), 2u);
    const double a = double(int64_t(ns.at(0))), b = double(int64_t(ns.at(1)));
    EXPECT_NEAR(double(int64_t(row["avg_ns"])), (a + b) / 2, 1.0);
    EXPECT_NEAR(double(int64_t(row["stddev_ns"])), std::abs(a - b) / std::sqrt(2.0), 1.0);
    const double tokens = double(int64_t(row["n_prompt"]) + int64_t(row["n_gen"]));
    // samples_ns is truncated to whole nanoseconds: up to 1 ns of a (tens of microseconds here).
    EXPECT_NEAR(double(ts.at(0)), tokens / (a * 1e-9), tokens / (a * 1e-9) * (1.0 / a + 1e-9));
  }
  RunResult none = run_bitnet({"bench", "-p", "0", "-n", "0"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("error: nothing to run: -p and -n are both 0"), std::string::npos) << none.err;
}

}  // namespace
}  // namespace bitnet::test

namespace bitnet::test {
namespace {

// Issue #20, point 15: -p and -n take lists, -m several models (comma-separated or repeated), -pg
// a prompt-then-generation test, in llama-bench's order and names (pp per -p, tg per -n, then pg).
TEST(BenchCli, ListsSeveralModelsAndPromptThenGeneration) {
  RunResult r = run_bitnet({"bench", "-m", "fixture:stories260K,fixture:bitnet-tiny-tq2_0", "-m", "fixture:stories260K",
                            "-p", "8,16", "-n", "0,4", "-pg", "8,4", "-r", "2", "-t", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  const std::vector<std::string> tests = {"pp8", "pp16", "tg4", "pp8+tg4"};
  ASSERT_EQ(rows.size(), 3 * tests.size()) << r.out;
  for (size_t i = 0; i < rows.size(); ++i) {
    simdjson::dom::element row = rows.at(i);
    const std::string_view file = row["model_filename"];
    EXPECT_TRUE(file.ends_with(i / 4 == 1 ? "bitnet-tiny-tq2_0.gguf" : "stories260K.gguf")) << file;
    EXPECT_EQ(std::string_view(row["test"]), tests[i % 4]);
    const int64_t p = row["n_prompt"], n = row["n_gen"];
    EXPECT_EQ(p, i % 4 == 1 ? 16 : i % 4 == 2 ? 0 : 8);
    EXPECT_EQ(n, i % 4 >= 2 ? 4 : 0);
    // A pg row counts its prompt and its generated tokens over the whole time, as llama-bench.
    const simdjson::dom::array ns = row["samples_ns"], ts = row["samples_ts"];
    const double t0 = double(int64_t(ns.at(0))) * 1e-9;
    EXPECT_NEAR(double(ts.at(0)), double(p + n) / t0, double(p + n) / t0 * 1e-4);  // samples_ns are truncated
  }
  RunResult bad = run_bitnet({"bench", "-p", "8,x"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("error: bench -p '8,x': 'x' is not a token count in [0, 1048576]"), std::string::npos) << bad.err;
  RunResult half = run_bitnet({"bench", "-pg", "8"});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_NE(half.err.find("give PP,TG, two positive token counts"), std::string::npos) << half.err;
  RunResult pg_ref = run_bitnet({"bench", "-pg", "8,4", "--reference", "llama.cpp:/nonexistent"});
  EXPECT_EQ(pg_ref.exit_code, 2);
  EXPECT_NE(pg_ref.err.find("error: bench --pg with --reference: the llama.cpp adapter runs pp and tg tests only"),
            std::string::npos)
      << pg_ref.err;
  RunResult no_model = run_bitnet({"bench", "-m", ""});
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_NE(no_model.err.find("error: bench -m '': give a model"), std::string::npos) << no_model.err;
  // -pg is bench's alone: generate -pg is still the prompt "g".
  RunResult gen = run_bitnet({"generate", "-m", "fixture:stories260K", "-pg", "-n", "1", "-q"});
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
}

// Rows are printed as each test finishes, so a run stopped by --timeout (or Ctrl-C, the same
// cancellation) keeps the finished ones: a complete JSON array, a Markdown table with its rows.
TEST(BenchCli, AStoppedRunKeepsItsFinishedRows) {
  // 1000 repetitions of pp8 take a fraction of a second (a few under ASan); of pp8+tg500, over 20 s.
  for (const std::string format : {"json", "md"}) {
    RunResult r = run_bitnet({"--timeout", "8", "bench", "-m", "fixture:stories260K", "-p", "8", "-n", "0", "-pg",
                              "8,500", "-r", "1000", "-t", "1", "-o", format});
    EXPECT_EQ(r.exit_code, 124) << r.err;
    if (format == "json") {
      simdjson::dom::parser parser;
      simdjson::dom::array rows = parse_rows(parser, r.out);
      ASSERT_EQ(rows.size(), 1u) << r.out;
      EXPECT_EQ(std::string_view(rows.at(0)["test"]), "pp8");
    } else {
      EXPECT_NE(r.out.find("| 1 | pp8 | "), std::string::npos) << r.out;
      EXPECT_EQ(r.out.find("pp8+tg500"), std::string::npos) << r.out;
    }
  }
}

}  // namespace
}  // namespace bitnet::test

namespace bitnet::test {
namespace {

// -d, llama-bench's n_depth: every test again after D tokens of context, depth the outer loop,
// named "tg4 @ d8"; a tg row's bytes per token count the KV cache at depth + n_gen / 2.
TEST(BenchCli, DepthRunsEveryTestAfterThatManyTokensOfContext) {
  const auto path = fixture_file("models/bitnet-tiny-tq2_0.gguf");
  RunResult r = run_bitnet({"bench", "-m", path.string(), "-p", "4", "-n", "4", "-d", "0,8", "-r", "1", "-t", "1",
                            "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  const std::vector<std::string> tests = {"pp4", "tg4", "pp4 @ d8", "tg4 @ d8"};
  ASSERT_EQ(rows.size(), tests.size()) << r.out;
  for (size_t i = 0; i < rows.size(); ++i) {
    simdjson::dom::element row = rows.at(i);
    EXPECT_EQ(std::string_view(row["test"]), tests[i]);
    EXPECT_EQ(int64_t(row["n_depth"]), i < 2 ? 0 : 8);
    EXPECT_EQ(int64_t(row["n_prompt"]), i % 2 == 0 ? 4 : 0);
    EXPECT_EQ(int64_t(row["n_gen"]), i % 2 == 0 ? 0 : 4);
    // t/s counts the test's tokens, not the depth's, as llama-bench.
    const double t0 = double(int64_t(row["samples_ns"].get_array().at(0))) * 1e-9;
    EXPECT_NEAR(double(row["avg_ts"]), 4 / t0, 4 / t0 * 1e-4);
    if (i % 2 == 1) {
      EXPECT_EQ(uint64_t(row["bytes_per_token"]), expected_bytes_per_token(path, i < 2 ? 2 : 10));
    }
  }
  RunResult md = run_bitnet({"bench", "-m", path.string(), "-p", "0", "-n", "4", "-d", "8", "-r", "1", "-t", "1"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("| 1 | tg4 @ d8 | "), std::string::npos) << md.out;
  RunResult csv = run_bitnet({"bench", "-m", path.string(), "-p", "4", "-n", "0", "-d", "8", "-r", "1", "-t", "1",
                              "-o", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  std::istringstream in(csv.out);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_NE(header.find(",n_prompt,n_gen,n_depth,test,"), std::string::npos) << header;
  EXPECT_NE(row.find(",4,0,8,pp4 @ d8,"), std::string::npos) << row;
}

// The depth counts toward the model's context (bitnet-tiny-tq2_0: 256 tokens): past it a test
// runs with a warning, as llama-bench runs it; past four times it, a usage error before any test.
// -d takes token counts as -p and -n do.
TEST(BenchCli, DepthPastTheContextWarnsAndFourTimesItFails) {
  RunResult past = run_bitnet({"bench", "-m", "fixture:bitnet-tiny-tq2_0", "-p", "0", "-n", "8", "-d", "250", "-r", "1"});
  EXPECT_EQ(past.exit_code, 0) << past.err;
  EXPECT_NE(past.err.find("bench test tg8 @ d250: 258 tokens (depth 250 included) pass the model's context of 256 "
                          "tokens; timed anyway"),
            std::string::npos)
      << past.err;
  EXPECT_NE(past.out.find("tg8 @ d250"), std::string::npos) << past.out;
  RunResult r = run_bitnet({"bench", "-m", "fixture:bitnet-tiny-tq2_0", "-p", "0", "-n", "8", "-d", "0,1020", "-r", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("error: bench test tg8 @ d1020: 1028 tokens (depth 1020 included) exceed 4 times the model's "
                       "context of 256 tokens"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(r.out.empty()) << "checked before any test runs: " << r.out;
  RunResult bad = run_bitnet({"bench", "-d", "-1"});
  EXPECT_EQ(bad.exit_code, 2);
  RunResult word = run_bitnet({"bench", "-d", "8,deep"});
  EXPECT_EQ(word.exit_code, 2);
  EXPECT_NE(word.err.find("error: bench -d '8,deep': 'deep' is not a token count"), std::string::npos) << word.err;
}

// The adapter is asked for the depth of each test.
TEST(BenchCli, ReferenceIsAskedForTheDepth) {
  FakeReference ref(
      "case \"$req\" in *'\"n_depth\":8'*) ;; *) echo \"no depth in $req\" >&2; exit 1;; esac\n"
      "echo '{\"pp_seconds\":[],\"tg_seconds\":[0.25]}'");
  RunResult r = run_bitnet({"bench", "-m", "fixture:bitnet-tiny-tq2_0", "-p", "0", "-n", "8", "-d", "8", "-r", "1", "-t",
                            "1", "--reference", ref.spec(), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_reference_rows(r.out, 1, 1);
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  EXPECT_EQ(std::string_view(rows.at(1)["test"]), "tg8 @ d8");
  EXPECT_EQ(int64_t(rows.at(1)["n_depth"]), 8);
  EXPECT_NEAR(double(rows.at(1)["avg_ts"]), 32.0, 1e-9);
}

// llama.cpp keeps a Q8_0 V cache only with flash attention: bench asks for both, and names the
// cache in both rows.
TEST(BenchCli, ReferenceRunsWithTheSameKvCache) {
  FakeReference ref(
      "case \"$req\" in *'\"type_k\":\"q8_0\",\"type_v\":\"q8_0\",\"flash_attn\":\"on\"'*) ;;\n"
      "  *) echo \"no q8_0 cache in $req\" >&2; exit 1;; esac\n"
      "echo '{\"pp_seconds\":[],\"tg_seconds\":[0.25]}'");
  RunResult r = run_bitnet({"bench", "-m", "fixture:bitnet-tiny-tq2_0", "-p", "0", "-n", "8", "-r", "1", "-t", "1",
                            "--kv-type", "q8_0", "--reference", ref.spec()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| llama.cpp, kv q8_0 | 1 | tg8 |"), std::string::npos) << r.out;
  r = run_bitnet({"bench", "-m", "fixture:bitnet-tiny-tq2_0", "-p", "0", "-n", "8", "-r", "1", "-t", "1", "--reference",
                  ref.spec()});
  EXPECT_EQ(r.exit_code, 1) << "an f16 run must not ask for a q8_0 cache: " << r.err;
}

// --version says what this build is; every row must say the same, and the machine's THP mode as
// /sys shows it (the bracketed word).
std::string version_field(const std::string& version, const std::string& key) {
  const size_t at = version.find(key + ": ");
  if (at == std::string::npos) return "";
  const size_t from = at + key.size() + 2;
  return version.substr(from, version.find('\n', from) - from);
}

std::string thp_mode() {
  const std::string s = read_all("/sys/kernel/mm/transparent_hugepage/enabled");
  const size_t a = s.find('['), b = s.find(']');
  return a == std::string::npos || b == std::string::npos ? "" : s.substr(a + 1, b - a - 1);
}

TEST(BenchCli, EveryRowCarriesItsProvenance) {
  const std::string version = run_bitnet({"--version"}).out;
  std::string commit = version_field(version, "commit");  // "30038485fb70 (dirty)"
  const bool dirty = commit.ends_with(" (dirty)");
  if (dirty) commit.resize(commit.size() - 8);
  const std::string build_type = version_field(version, "build type"), compiler = version_field(version, "compiler");
  ASSERT_FALSE(commit.empty()) << version;

  RunResult r = run_bitnet({"bench", "-p", "8", "-n", "4", "-r", "1", "-t", "1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  ASSERT_EQ(rows.size(), 2u);
  for (simdjson::dom::element row : rows) {
    EXPECT_EQ(std::string_view(row["build_commit"]), commit);
    EXPECT_EQ(bool(row["build_dirty"]), dirty);
    EXPECT_EQ(std::string_view(row["build_type"]), build_type);
    EXPECT_EQ(std::string_view(row["compiler"]), compiler);
    EXPECT_EQ(std::string_view(row["thp"]), thp_mode());
    EXPECT_NE(std::string_view(row["cpu_info"]), "");
    EXPECT_EQ(std::string_view(row["test_time"]).size(), 20u) << "YYYY-MM-DDTHH:MM:SSZ";
    EXPECT_NE(std::string_view(row["kernel_table"]), "");
    EXPECT_EQ(int64_t(row["n_threads"]), 1);
  }
  const std::string cpu_flags(std::string_view(rows.at(0)["cpu_flags"]));

  RunResult md = run_bitnet({"bench", "-p", "8", "-n", "0", "-r", "1", "-t", "1"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  const std::string line = fmt::format("build: commit {}{}, {}, {}; CPU: ", commit, dirty ? " (dirty)" : "", build_type,
                                       compiler);
  EXPECT_TRUE(md.out.starts_with(line)) << md.out;
  EXPECT_NE(md.out.find(fmt::format("; THP {}; ", thp_mode())), std::string::npos) << md.out;

  RunResult csv = run_bitnet({"bench", "-p", "8", "-n", "0", "-r", "1", "-t", "1", "-o", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_NE(csv.out.find("model_n_params,build_commit,build_dirty,build_type,compiler,cpu_info,cpu_flags,thp,test_time,"
                         "backends,"),
            std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(fmt::format(",\"{}\",{},\"{}\",\"{}\",", commit, dirty ? "true" : "false", build_type, compiler)),
            std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(fmt::format("\"{}\",\"{}\",", cpu_flags, thp_mode())), std::string::npos) << csv.out;
}

// A saved baseline holds exactly the samples the run printed; --baseline re-runs its tests.
// Baseline samples set by hand make the outcome certain: 100x faster than this machine is a
// regression (exit 7), 100x slower is not.
TEST(BenchCli, SaveBaselineThenCompare) {
  TempDir dir;
  const std::string base = (dir.path() / "base.json").string();
  RunResult r = run_bitnet({"bench", "-p", "8", "-n", "4", "-d", "0,4", "-r", "2", "-t", "1", "-o", "json",
                            "--save-baseline", base});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser, fparser;
  simdjson::dom::array rows = parse_rows(parser, r.out);
  simdjson::dom::element file;
  ASSERT_EQ(fparser.load(base).get(file), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(file["format"]), "bitnet-bench-baseline");
  EXPECT_EQ(int64_t(file["repetitions"]), 2);
  simdjson::dom::array saved = file["rows"].get_array();
  ASSERT_EQ(saved.size(), rows.size());
  ASSERT_EQ(rows.size(), 4u);
  std::vector<std::string> tests;
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(std::string_view(saved.at(i)["test"]), std::string_view(rows.at(i)["test"]));
    tests.emplace_back(std::string_view(rows.at(i)["test"]));
    EXPECT_EQ(int64_t(saved.at(i)["n_threads"]), 1);
    EXPECT_EQ(std::string_view(saved.at(i)["kernel_table"]), std::string_view(rows.at(i)["kernel_table"]));
    simdjson::dom::array a = saved.at(i)["samples_ts"].get_array(), b = rows.at(i)["samples_ts"].get_array();
    ASSERT_EQ(a.size(), 2u);
    for (size_t k = 0; k < 2; ++k) EXPECT_NEAR(double(a.at(k)), double(b.at(k)), 1e-9 * double(b.at(k)));
  }
  EXPECT_EQ(std::string_view(file["provenance"]["build_commit"]), std::string_view(rows.at(0)["build_commit"]));

  // Each baseline row's samples all set to f x its fastest (f > 1) or slowest (f < 1) sample, as
  // a new file: no noise in the baseline, and a factor no machine's wobble between two runs spans.
  const std::string text = read_all(base);
  auto scaled = [&](double f, const std::string& name) {
    std::string out;
    size_t pos = 0;
    while (true) {
      const size_t at = text.find("\"samples_ts\"", pos);
      if (at == std::string::npos) break;
      const size_t open = text.find('[', at), close = text.find(']', open);
      out.append(text, pos, open + 1 - pos);
      std::istringstream in(text.substr(open + 1, close - open - 1));
      std::vector<double> v;
      for (std::string item; std::getline(in, item, ',');) v.push_back(std::stod(item));
      const double x = f * (f > 1 ? *std::max_element(v.begin(), v.end()) : *std::min_element(v.begin(), v.end()));
      for (size_t k = 0; k < v.size(); ++k) out.append(fmt::format("{}{:.6f}", k ? "," : "", x));
      pos = close;
    }
    out.append(text, pos);
    const std::string p = (dir.path() / name).string();
    std::ofstream(p) << out;
    return p;
  };
  const std::string faster = scaled(100, "faster.json"), slower = scaled(0.01, "slower.json");

  RunResult bad = run_bitnet({"bench", "--baseline", faster, "-o", "json"});
  EXPECT_EQ(bad.exit_code, 7) << bad.err;
  EXPECT_NE(bad.err.find(fmt::format("error: bench: 4 of 4 rows slower than the baseline {}", faster)), std::string::npos)
      << bad.err;
  EXPECT_NE(bad.err.find(" tg4 @ d4 (1 thread): "), std::string::npos) << bad.err;
  simdjson::dom::parser p2;
  simdjson::dom::array again = parse_rows(p2, bad.out);
  ASSERT_EQ(again.size(), 4u);
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(std::string_view(again.at(i)["test"]), tests[i]) << "the baseline's tests, in its order";
    EXPECT_EQ(again.at(i)["samples_ts"].get_array().size(), 2u) << "the baseline's repetitions";
    EXPECT_TRUE(bool(again.at(i)["regression"]));
    const double base_mean = double(again.at(i)["baseline_avg_ts"]), now = double(again.at(i)["avg_ts"]);
    EXPECT_NEAR(double(again.at(i)["delta_pct"]), 100 * (now / base_mean - 1), 1e-6);
  }

  RunResult ok = run_bitnet({"bench", "--baseline", slower});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find(fmt::format("against the baseline {}:", slower)), std::string::npos) << ok.out;
  EXPECT_EQ(count_lines_with(ok.out, " | ok |"), 4u) << ok.out;
  EXPECT_EQ(ok.out.find("REGRESSION"), std::string::npos) << ok.out;
}

TEST(BenchCli, BadBaselinesAndFlagsAreClearErrors) {
  TempDir dir;
  RunResult missing = run_bitnet({"bench", "--baseline", (dir.path() / "none.json").string()});
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find((dir.path() / "none.json").string()), std::string::npos) << missing.err;
  const std::string corrupt = (dir.path() / "corrupt.json").string();
  std::ofstream(corrupt) << "{\"format\":\"bitnet-bench-baseline\",\"version\":1}";
  RunResult c = run_bitnet({"bench", "--baseline", corrupt});
  EXPECT_EQ(c.exit_code, 3) << c.err;
  // One error line, last (a sanitizer build warns first that it is not a Release build).
  const std::string want = fmt::format("error: {}: not a bench baseline: \"provenance\" is missing or not an object\n", corrupt);
  EXPECT_TRUE(c.err.ends_with(want)) << c.err;
  EXPECT_EQ(count_lines_with(c.err, "error:"), 1u) << c.err;
  RunResult both = run_bitnet({"bench", "--baseline", corrupt, "-p", "16"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_NE(both.err.find("--n-prompt comes from the baseline"), std::string::npos) << both.err;
  RunResult dir_out = run_bitnet({"bench", "-p", "8", "-n", "0", "-r", "1", "--save-baseline", dir.path().string()});
  EXPECT_EQ(dir_out.exit_code, 1) << dir_out.err;
  EXPECT_EQ(dir_out.out, "") << "checked before anything runs";
}

// A baseline from another machine or build still compares, with a warning naming what differs.
TEST(BenchCli, BaselineFromAnotherMachineWarns) {
  TempDir dir;
  const std::string base = (dir.path() / "base.json").string();
  RunResult r = run_bitnet({"bench", "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--save-baseline", base});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("another machine"), std::string::npos) << r.err;
  std::string text = read_all(base);
  const size_t at = text.find("\"cpu_info\": \"") + 13;
  text.replace(at, text.find('"', at) - at, "Elsewhere CPU 9000");
  text.replace(text.find("\"build_type\": \"") + 15, 0, "Old");
  std::ofstream(base) << text;
  RunResult again = run_bitnet({"bench", "--baseline", base});
  EXPECT_NE(again.exit_code, 2) << again.err;
  EXPECT_NE(again.err.find("was made on another machine or build: CPU '"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("(baseline 'Elsewhere CPU 9000')"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("build type '"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace bitnet::test
