// `bitnet memcheck` end to end: the real fixtures pass with zero leaks and tracked peaks equal
// to the session plan; a budget below the peak and a deliberately leaked block (the hidden
// test hook) fail with exit 6 naming the tag; repeated rounds reuse the pool without growth.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "support/run.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

struct Tag {
  std::string name;
  uint64_t planned, peak, allocs, after_teardown;
};

std::vector<Tag> tags_of(simdjson::dom::element doc) {
  std::vector<Tag> out;
  for (simdjson::dom::element t : doc["tags"].get_array())
    out.push_back({std::string(std::string_view(t["tag"])), uint64_t(t["planned"]), uint64_t(t["peak"]),
                   uint64_t(t["allocs"]), uint64_t(t["after_teardown"])});
  return out;
}

// A clean run: exit 0, every planned tag peaked at exactly its plan, nothing held after teardown.
void expect_clean(const std::string& model, int repeat, const std::string& kv_type = "f16") {
  RunResult r = run_bitnet({"memcheck", "-m", model, "-p", "once upon a time", "-n", "6", "--repeat",
                            std::to_string(repeat), "-t", "2", "--kv-type", kv_type, "--json"});
  ASSERT_EQ(r.exit_code, 0) << model << "\n" << r.err << r.out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  EXPECT_TRUE(bool(doc["ok"]));
  EXPECT_EQ(std::string_view(doc["kv_type"]), kv_type);
  EXPECT_EQ(doc["leaks"].get_array().size(), 0u);
  EXPECT_EQ(doc["growth"].get_array().size(), 0u);
  EXPECT_TRUE(bool(doc["model_unmapped"])) << model;
  const std::vector<Tag> tags = tags_of(doc);
  ASSERT_GE(tags.size(), 4u);  // kv_cache, activations, logits, scratch
  EXPECT_EQ(tags[0].name, "kv_cache");
  uint64_t planned = 0;
  for (const Tag& t : tags) {
    EXPECT_EQ(t.after_teardown, 0u) << model << " " << t.name;
    EXPECT_EQ(t.peak, t.planned) << model << " " << t.name << ": the session takes exactly its plan";
    planned += t.planned;
  }
  EXPECT_EQ(uint64_t(doc["planned_total"]), planned);
  EXPECT_EQ(uint64_t(doc["tracked_peak"]), planned);
  EXPECT_EQ(uint64_t(doc["model_mapped"]) >= uint64_t(doc["model_file_size"]), true);
  EXPECT_GT(uint64_t(doc["model_resident"]), 0u);
  simdjson::dom::array rounds = doc["rounds"].get_array();
  ASSERT_EQ(rounds.size(), static_cast<size_t>(repeat));
  uint64_t footprint = 0;
  size_t i = 0;
  for (simdjson::dom::element x : rounds) {
    EXPECT_EQ(uint64_t(x["n_gen"]), 6u);
    EXPECT_EQ(uint64_t(x["held_after"]), 0u);
    EXPECT_EQ(uint64_t(x["tracked_peak"]), planned);
    if (i == 0) {
      footprint = uint64_t(x["pool_footprint"]);
      EXPECT_EQ(footprint, planned);  // the freed session's blocks, kept for the next one
    } else {
      // Every block of a same-shaped session comes back from the pool.
      EXPECT_EQ(uint64_t(x["pool_footprint"]), footprint);
      EXPECT_EQ(uint64_t(x["system_allocs"]), 0u);
      EXPECT_GT(uint64_t(x["reused"]), 0u);
    }
    ++i;
  }
}

TEST(MemcheckCli, Stories260KHasNoLeaksAndNoGrowth) { expect_clean("fixture:stories260K", 3); }

TEST(MemcheckCli, TinyBitnetFixturesHaveNoLeaks) {
  for (const char* m : {"fixture:bitnet-tiny-f16", "fixture:bitnet-tiny-i2_s", "fixture:bitnet-tiny-tq2_0",
                        "fixture:bitnet-tiny-tq1_0", "fixture:bitnet-tiny-tq2_0-embf16", "fixture:bitnet-b158-tiny-i2_s",
                        "fixture:bitnet-b158-tiny-bpe-i2_s"})
    expect_clean(m, 2);
}

// The Q8_0 cache (llama.cpp's -ctk/-ctv q8_0) is planned as the F16 one is: 34 bytes per 32
// values instead of 64, K and V alike.
TEST(MemcheckCli, Q8CacheIsPlannedAndTakesSeventeenThirtySecondsOfF16) {
  expect_clean("fixture:bitnet-tiny-tq2_0", 2, "q8_0");
  auto kv_bytes = [](const std::vector<std::string>& kv_flags) {
    std::vector<std::string> args = {"memcheck", "-m", "fixture:bitnet-tiny-tq2_0", "-n", "2", "-t", "1", "--json"};
    args.insert(args.end(), kv_flags.begin(), kv_flags.end());
    RunResult r = run_bitnet(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(r.out).get(doc) != simdjson::SUCCESS) return uint64_t{0};
    return tags_of(doc).at(0).planned;
  };
  const uint64_t f16 = kv_bytes({}), q8 = kv_bytes({"-ctk", "q8_0", "-ctv", "q8_0"});
  EXPECT_EQ(q8 * 32, f16 * 17) << "f16 " << f16 << ", q8_0 " << q8;
}

TEST(MemcheckCli, TextReportShowsPlanTrackedAndRss) {
  RunResult r = run_bitnet({"memcheck", "-m", "fixture:stories260K", "-n", "4", "--repeat", "2", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"| tag | plan | tracked peak | allocs | after teardown |", "| kv_cache |", "| activations |",
                        "| logits |", "| model mmap |", "| process RSS |", "unmapped", "| 2 |", "verdict: ok"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST(MemcheckCli, BudgetBelowThePeakFailsNamingTheTags) {
  RunResult r = run_bitnet({"memcheck", "-m", "fixture:stories260K", "-n", "4", "-t", "1", "--budget", "64K", "--json"});
  ASSERT_EQ(r.exit_code, 6) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;  // the report is still printed
  EXPECT_FALSE(bool(doc["ok"]));
  EXPECT_EQ(uint64_t(doc["budget"]), 65536u);
  // The largest tag at the peak is named first.
  std::string largest;
  uint64_t most = 0;
  for (const Tag& t : tags_of(doc))
    if (t.peak > most) {
      most = t.peak;
      largest = t.name;
    }
  const std::string want = fmt::format(
      "error: memcheck failed: tracked peak {} bytes over the budget of 65536 bytes\n  caused by: {}: {} bytes at the "
      "peak\n", uint64_t(doc["tracked_peak"]), largest, most);
  EXPECT_EQ(r.err.substr(0, want.size()), want) << r.err;
  // A budget above the peak passes.
  RunResult ok = run_bitnet({"memcheck", "-m", "fixture:stories260K", "-n", "4", "-t", "1", "--budget", "1G"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(MemcheckCli, ADeliberatelyLeakedBlockIsCaughtAndNamed) {
  RunResult r = run_bitnet({"memcheck", "-m", "fixture:bitnet-tiny-i2_s", "-n", "2", "-t", "1", "--repeat", "2",
                            "--test-leak", "leaky_widget"});
  ASSERT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("error: memcheck failed: a leak\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("caused by: leaky_widget: 4096 bytes in 1 block still held after teardown"), std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("| leaky_widget | 0 B | 4.0 KiB | 1 | 4.0 KiB LEAK |"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--test-leak"), std::string::npos);
}

// A block still held under a planned tag after teardown is a leak (exit 6, the tag and its bytes),
// whatever the tag: the next session still gets its whole plan, so the leak is not mistaken for
// a plan overflow.
TEST(MemcheckCli, ALeakUnderAPlannedTagIsALeakNotAPlanOverflow) {
  for (const char* tag : {"kv_cache", "activations"}) {
    RunResult r = run_bitnet({"memcheck", "-m", "fixture:bitnet-tiny-i2_s", "-n", "2", "-t", "1", "--repeat", "2",
                              "--test-leak", tag, "--json"});
    ASSERT_EQ(r.exit_code, 6) << tag << "\n" << r.err;
    EXPECT_NE(r.err.find("error: memcheck failed: a leak\n"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(fmt::format("caused by: {}: 4096 bytes in 1 block still held after teardown", tag)),
              std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("plan"), std::string::npos) << r.err;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
    for (const Tag& t : tags_of(doc)) {
      EXPECT_EQ(t.after_teardown, t.name == tag ? 4096u : 0u) << t.name;
      // Both rounds' sessions got their whole plan beside the leaked block.
      if (t.name == tag) {
        EXPECT_EQ(t.peak, t.planned + 4096) << t.name;
      }
    }
    EXPECT_EQ(doc["rounds"].get_array().size(), 2u);
  }
}

// A session taking more than its plan (the hidden hook lowers the tag's plan by a byte) is a plan
// overflow: exit 1, named as such, not a leak.
TEST(MemcheckCli, APlanOverflowIsNotALeak) {
  RunResult r = run_bitnet({"memcheck", "-m", "fixture:bitnet-tiny-i2_s", "-n", "2", "-t", "1", "--test-overflow",
                            "kv_cache"});
  ASSERT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.err.starts_with("error: memcheck: plan overflow in round 1: the session took more than its plan (a "
                                "wrong session plan, not a leak)\n  caused by: "))
      << r.err;
  EXPECT_NE(r.err.find("\n  caused by: memory pool: 'kv_cache' asked for "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("over its plan of "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("leak\n"), std::string::npos) << r.err;
  RunResult unplanned = run_bitnet({"memcheck", "-m", "fixture:bitnet-tiny-i2_s", "--test-overflow", "widget"});
  EXPECT_EQ(unplanned.exit_code, 2) << unplanned.err;
}

// --save-baseline keeps the run's numbers; --baseline with any tracked peak above them is a
// regression (exit 7). The lowered baseline is written by hand, so the growth is certain; RSS is
// set far above the run's so that only the tracked numbers decide.
TEST(MemcheckCli, GrowthOverABaselineIsARegression) {
  TempDir dir;
  const std::string base = (dir / "mem.json").string();
  const std::vector<std::string> run = {"memcheck", "-m", "fixture:stories260K", "-n", "4", "-t", "1", "--json"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = run;
    a.insert(a.end(), extra.begin(), extra.end());
    return run_bitnet(a);
  };
  RunResult r = with({"--save-baseline", base});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser, fparser;
  simdjson::dom::element doc, file;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  ASSERT_EQ(fparser.load(base).get(file), simdjson::SUCCESS) << read_all(base);
  EXPECT_EQ(std::string_view(file["format"]), "bitnet-memcheck-baseline");
  EXPECT_EQ(uint64_t(file["tracked_peak"]), uint64_t(doc["tracked_peak"]));
  EXPECT_EQ(uint64_t(file["peak_rss"]), uint64_t(doc["peak_rss"]));
  EXPECT_EQ(uint64_t(file["rss_after_load"]), uint64_t(doc["rss_after_load"]));
  EXPECT_EQ(uint64_t(file["n_gen"]), 4u);
  const std::vector<Tag> tags = tags_of(doc);
  simdjson::dom::array ftags = file["tags"].get_array();
  ASSERT_EQ(ftags.size(), tags.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    EXPECT_EQ(std::string_view(ftags.at(i)["tag"]), tags[i].name);
    EXPECT_EQ(uint64_t(ftags.at(i)["peak"]), tags[i].peak);
  }

  // The same numbers, RSS raised: no regression.
  std::string text = read_all(base);
  for (const std::string key : {"\"rss_after_load\": ", "\"peak_rss\": ", "\"rss_after_teardown\": "}) {
    const size_t at = text.find(key) + key.size();
    text = text.substr(0, at) + '9' + text.substr(at);
  }
  const std::string same = (dir / "same.json").string();
  std::ofstream(same) << text;
  RunResult ok = with({"--baseline", same});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out.find("\"regressions\": [\n"), std::string::npos) << "an empty list: " << ok.out;

  // kv_cache's peak lowered by 1 byte: growth of exactly 1 byte, found and named.
  const uint64_t kv = tags[0].peak;
  ASSERT_EQ(tags[0].name, "kv_cache");
  std::string lowered = text;
  const std::string from = fmt::format("\"tag\": \"kv_cache\",\n      \"peak\": {}", kv);
  ASSERT_NE(lowered.find(from), std::string::npos) << lowered;
  lowered.replace(lowered.find(from), from.size(), fmt::format("\"tag\": \"kv_cache\",\n      \"peak\": {}", kv - 1));
  const std::string low = (dir / "low.json").string();
  std::ofstream(low) << lowered;
  RunResult bad = with({"--baseline", low});
  EXPECT_EQ(bad.exit_code, 7) << bad.err;
  EXPECT_EQ(bad.err, fmt::format("error: memcheck: more memory than the baseline {}\n  caused by: kv_cache: tracked peak {} "
                                 "bytes, 1 more than the baseline's {}\n", low, kv, kv - 1));

  // Another workload does not compare; a corrupt file is named.
  RunResult other = run_bitnet({"memcheck", "-m", "fixture:stories260K", "-n", "3", "-t", "1", "--baseline", same});
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_NE(other.err.find("another workload: -n 3 (baseline 4)"), std::string::npos) << other.err;
  const std::string corrupt = (dir / "corrupt.json").string();
  std::ofstream(corrupt) << "[1,2]";
  RunResult c = with({"--baseline", corrupt});
  EXPECT_EQ(c.exit_code, 3) << c.err;
  EXPECT_EQ(c.err, fmt::format("error: {}: not a memcheck baseline: not a JSON object\n", corrupt));
}

TEST(MemcheckCli, UsageAndModelErrors) {
  RunResult bad_budget = run_bitnet({"memcheck", "-m", "fixture:stories260K", "--budget", "lots"});
  EXPECT_EQ(bad_budget.exit_code, 2);
  EXPECT_NE(bad_budget.err.find("error: --budget 'lots'"), std::string::npos) << bad_budget.err;
  RunResult missing = run_bitnet({"memcheck", "-m", "/nonexistent/model.gguf"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("no such file"), std::string::npos) << missing.err;
  RunResult help = run_bitnet({"memcheck", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--budget"), std::string::npos);
  EXPECT_EQ(help.out.find("test-leak"), std::string::npos) << "the test hook stays out of --help";
  EXPECT_EQ(help.out.find("test-overflow"), std::string::npos) << "the test hook stays out of --help";
}

}  // namespace
}  // namespace bitnet::test
