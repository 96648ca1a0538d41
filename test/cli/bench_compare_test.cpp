// The bench regression rule on recorded sample sets (tokens/s of five repetitions), and the
// baseline files: written and read back unchanged, a bad one refused naming the field.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/base/error.hpp"
#include "diag/bench_compare.hpp"

namespace bitnet::test {
namespace {

using diag::CompareRule;
using diag::compare_samples;

// Recorded on a quiet machine: five repetitions within a few tenths of a percent.
const std::vector<double> kTight = {100.1, 99.8, 100.3, 99.9, 100.0};
// A noisy one (another job on the machine): +-10%.
const std::vector<double> kWide = {100.0, 110.0, 90.0, 105.0, 95.0};

std::vector<double> scaled(const std::vector<double>& v, double f) {
  std::vector<double> out;
  for (double x : v) out.push_back(x * f);
  return out;
}

TEST(BenchCompare, ARealTwentyPercentSlowdownIsCaught) {
  const std::vector<double> slow = {80.2, 79.9, 80.1, 80.0, 79.8};
  const auto c = compare_samples(kTight, slow, CompareRule{});
  EXPECT_TRUE(c.regression);
  EXPECT_NEAR(c.base_mean, 100.02, 1e-9);
  EXPECT_NEAR(c.new_mean, 80.0, 1e-9);
  EXPECT_NEAR(c.change, 80.0 / 100.02 - 1, 1e-12);
}

TEST(BenchCompare, SixPercentWithinWideNoiseIsNotFlagged) {
  const auto c = compare_samples(kWide, scaled(kWide, 0.94), CompareRule{});
  EXPECT_NEAR(c.change, -0.06, 1e-12);
  EXPECT_FALSE(c.regression) << "drop " << c.base_mean - c.new_mean << " within noise " << c.noise;
  // The same shift with tight samples is a regression: the noise term, not the size, spared it.
  EXPECT_TRUE(compare_samples(kTight, scaled(kTight, 0.94), CompareRule{}).regression);
}

TEST(BenchCompare, ASpeedupIsNotARegression) {
  const auto c = compare_samples(kTight, scaled(kTight, 1.25), CompareRule{});
  EXPECT_FALSE(c.regression);
  EXPECT_NEAR(c.change, 0.25, 1e-12);
}

TEST(BenchCompare, ThreePercentWithTightSamplesIsBelowTheThreshold) {
  const auto c = compare_samples(kTight, scaled(kTight, 0.97), CompareRule{});
  EXPECT_GT(c.base_mean - c.new_mean, c.noise) << "outside the noise: only the 5% threshold spares it";
  EXPECT_FALSE(c.regression);
  EXPECT_TRUE(compare_samples(kTight, scaled(kTight, 0.97), CompareRule{.threshold = 0.02}).regression);
}

TEST(BenchCompare, NoiseIsTwoSigmasOfBothRuns) {
  // kWide: mean 100, sample variance (0+100+100+25+25)/4 = 62.5.
  const auto c = compare_samples(kWide, kWide, CompareRule{});
  EXPECT_NEAR(c.base_sd, std::sqrt(62.5), 1e-12);
  EXPECT_NEAR(c.noise, 2 * std::sqrt(2 * 62.5), 1e-9);
  EXPECT_FALSE(c.regression);
}

diag::BenchBaseline sample_baseline() {
  diag::BenchBaseline b;
  b.provenance = {"abc1234", true, "Release", "GNU 12.2.0", "Some CPU \"x\"", "AVX2 FMA", "madvise", "2026-01-02T03:04:05Z"};
  b.reps = 3;
  b.rows.push_back({"fixture:stories260K", "stories260K.gguf", 1185376, "pp16 @ d8", 16, 0, 8, 2, "avx2", "q8_0",
                    {1234.5, 1200.25, 1250.125}});
  return b;
}

TEST(BenchCompare, BaselineFileRoundTrips) {
  const diag::BenchBaseline b = sample_baseline();
  const diag::BenchBaseline r = diag::parse_bench_baseline(diag::bench_baseline_json(b), "b.json");
  EXPECT_EQ(diag::provenance_differences(b.provenance, r.provenance).size(), 0u);
  EXPECT_EQ(r.provenance.build_dirty, true);
  EXPECT_EQ(r.provenance.date, b.provenance.date);
  EXPECT_EQ(r.reps, 3);
  ASSERT_EQ(r.rows.size(), 1u);
  const diag::BaselineRow &x = r.rows[0], &y = b.rows[0];
  EXPECT_EQ(x.model, y.model);
  EXPECT_EQ(x.model_filename, y.model_filename);
  EXPECT_EQ(x.model_size, y.model_size);
  EXPECT_EQ(x.test, y.test);
  EXPECT_EQ(x.n_prompt, 16);
  EXPECT_EQ(x.n_depth, 8);
  EXPECT_EQ(x.n_threads, 2);
  EXPECT_EQ(x.kv_type, "q8_0");
  EXPECT_EQ(x.samples_ts, y.samples_ts);
}

TEST(BenchCompare, BadBaselineIsRefusedNamingTheField) {
  auto error_of = [](const std::string& json) {
    try {
      diag::parse_bench_baseline(json, "base.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_input);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("{ not json"), "base.json: not a bench baseline: not a JSON object");
  std::string good = diag::bench_baseline_json(sample_baseline());
  std::string s = good;
  s.replace(s.find("\"samples_ts\""), 12, "\"samples_xx\"");
  EXPECT_EQ(error_of(s), "base.json: not a bench baseline: \"rows[0].samples_ts\" is missing or not an array");
  s = good;
  s.replace(s.find("1234.5"), 6, "-1");
  EXPECT_EQ(error_of(s),
            "base.json: not a bench baseline: \"rows[0].samples_ts\" holds a value that is not a positive number");
  s = good;
  s.replace(s.find("bitnet-bench-baseline"), 21, "bitnet-memcheck-baseline");
  EXPECT_EQ(error_of(s), "base.json: not a bench baseline: \"format\" is not \"bitnet-bench-baseline\"");
}

TEST(BenchCompare, ProvenanceDifferencesNameMachineAndBuild) {
  diag::Provenance a = sample_baseline().provenance, b = a;
  b.cpu_info = "Other CPU";
  b.build_type = "Debug";
  const auto d = diag::provenance_differences(a, b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "CPU 'Other CPU' (baseline 'Some CPU \"x\"')");
  EXPECT_EQ(d[1], "build type 'Debug' (baseline 'Release')");
}

}  // namespace
}  // namespace bitnet::test
