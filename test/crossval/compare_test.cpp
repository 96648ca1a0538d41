// The crossval maths on constructed inputs, where the right answer is known by hand: top-k order
// and ties, overlap, KL divergence, first differences, and the per-prompt verdict (greedy
// mismatches, near-ties, logit tolerances, tokenization).
#include <gtest/gtest.h>

#include <cmath>

#include "diag/crossval/compare.hpp"

namespace bitnet::diag {
namespace {

TEST(CrossvalMaths, TopKOrdersByLogitThenLowerId) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, -2.0f, 2.5f};
  auto top = top_k(logits, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].id, 1);  // tie with id 2: the lower id first, as greedy argmax picks
  EXPECT_EQ(top[1].id, 2);
  EXPECT_EQ(top[2].id, 4);
  EXPECT_EQ(top_k(logits, 10).size(), 5u);
}

TEST(CrossvalMaths, TopKOverlapCountsSharedIds) {
  const std::vector<TopEntry> a = {{1, 0}, {2, 0}, {3, 0}, {4, 0}};
  const std::vector<TopEntry> b = {{4, 0}, {3, 0}, {9, 0}, {8, 0}};
  EXPECT_DOUBLE_EQ(top_k_overlap(a, b), 0.5);
  EXPECT_DOUBLE_EQ(top_k_overlap(a, a), 1.0);
  EXPECT_DOUBLE_EQ(top_k_overlap({}, {}), 1.0);
  EXPECT_DOUBLE_EQ(top_k_overlap(a, std::vector<TopEntry>{{1, 0}}), 0.25);
}

TEST(CrossvalMaths, KlDivergenceMatchesHandComputedValue) {
  // p = softmax(0, 0) = (1/2, 1/2); q = softmax(0, ln 3) = (1/4, 3/4).
  // KL(p||q) = 1/2 ln(2) + 1/2 ln(2/3).
  const std::vector<float> ref = {0.0f, 0.0f};
  const std::vector<float> ours = {0.0f, static_cast<float>(std::log(3.0))};
  EXPECT_NEAR(kl_divergence(ref, ours), 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0), 1e-7);
  EXPECT_EQ(kl_divergence(ref, ref), 0.0);
}

TEST(CrossvalMaths, KlDivergenceIgnoresACommonShiftAndLargeLogits) {
  const std::vector<float> ref = {1000.0f, 999.0f, 990.0f};
  const std::vector<float> shifted = {2000.0f, 1999.0f, 1990.0f};  // the same distribution
  EXPECT_NEAR(kl_divergence(ref, shifted), 0.0, 1e-12);
  const std::vector<float> other = {999.0f, 1000.0f, 990.0f};
  const double kl = kl_divergence(ref, other);
  EXPECT_TRUE(std::isfinite(kl));
  EXPECT_GT(kl, 0.4);
}

TEST(CrossvalMaths, FirstDifference) {
  const std::vector<int32_t> a = {1, 2, 3}, b = {1, 2, 4}, c = {1, 2}, d = {1, 2, 3};
  EXPECT_EQ(first_difference(a, b), 2u);
  EXPECT_EQ(first_difference(a, c), 2u);  // a prefix differs where the shorter ends
  EXPECT_EQ(first_difference(a, d), std::nullopt);
  EXPECT_EQ(first_difference(std::vector<int32_t>{}, std::vector<int32_t>{}), std::nullopt);
}

// A reference with n steps; step k chooses id 10+k with a clear margin unless margins says otherwise.
Golden make_ref(size_t n, const std::vector<float>& margins = {}) {
  Golden g;
  g.prompt_ids = {1, 5};
  for (size_t k = 0; k < n; ++k) {
    GoldenStep s;
    s.id = static_cast<int32_t>(10 + k);
    const float margin = k < margins.size() ? margins[k] : 2.0f;
    s.top = {{s.id, 5.0f}, {99, 5.0f - margin}, {98, 1.0f}};
    g.steps.push_back(s);
  }
  return g;
}

// Ours agreeing exactly with the reference.
std::vector<OurStep> follow_exactly(const Golden& g) {
  std::vector<OurStep> out;
  for (const GoldenStep& s : g.steps) {
    OurStep o;
    o.id = s.id;
    o.top = s.top;
    for (const TopEntry& t : s.top) o.at_ref.push_back(t.logit);
    out.push_back(o);
  }
  return out;
}

Naming names() {
  Naming n;
  n.piece = [](int32_t id) { return "<" + std::to_string(id) + ">"; };
  n.text = [](std::span<const TokenId> ids) { return std::to_string(ids.size()) + " tokens"; };
  return n;
}

TEST(CrossvalCompare, ExactAgreementPasses) {
  const Golden g = make_ref(12);
  PromptReport r;
  compare_steps(g, follow_exactly(g), default_thresholds(false), names(), r);
  EXPECT_TRUE(r.pass());
  EXPECT_EQ(r.n_steps, 12u);
  EXPECT_EQ(r.n_match, 12u);
  EXPECT_DOUBLE_EQ(r.top1_rate, 1.0);
  EXPECT_DOUBLE_EQ(r.max_abs, 0.0);
  EXPECT_DOUBLE_EQ(r.max_kl, 0.0);
  EXPECT_TRUE(r.mismatches.empty());
}

TEST(CrossvalCompare, ClearGreedyMismatchFailsNamingTheStepAndBothTokens) {
  const Golden g = make_ref(12);
  std::vector<OurStep> ours = follow_exactly(g);
  ours[10].id = 99;  // ours prefers the runner-up, 2.0 behind in the reference
  PromptReport r;
  compare_steps(g, ours, default_thresholds(false), names(), r);
  EXPECT_FALSE(r.pass());
  EXPECT_EQ(r.n_match, 11u);
  ASSERT_EQ(r.mismatches.size(), 1u);
  const Mismatch& m = r.mismatches[0];
  EXPECT_EQ(m.step, 10u);
  EXPECT_EQ(m.ref_id, 20);
  EXPECT_EQ(m.our_id, 99);
  EXPECT_EQ(m.ref_piece, "<20>");
  EXPECT_EQ(m.our_piece, "<99>");
  EXPECT_EQ(m.text_before, "12 tokens");  // 2 prompt ids + the reference's 10 tokens before step 10
  EXPECT_FALSE(m.near_tie);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_NE(r.failures[0].find("step 10"), std::string::npos) << r.failures[0];
}

TEST(CrossvalCompare, MismatchAtAReferenceNearTieIsReportedNotFailed) {
  std::vector<float> margins(12, 2.0f);
  margins[3] = 0.01f;  // the reference itself nearly chose 99
  const Golden g = make_ref(12, margins);
  std::vector<OurStep> ours = follow_exactly(g);
  ours[3].id = 99;
  PromptReport r;
  Thresholds t = default_thresholds(false);
  t.min_top1 = 0.9;
  compare_steps(g, ours, t, names(), r);
  ASSERT_EQ(r.mismatches.size(), 1u);
  EXPECT_TRUE(r.mismatches[0].near_tie);
  EXPECT_TRUE(r.pass()) << (r.failures.empty() ? "" : r.failures[0]);
  // The same flip is a failure when the tie threshold is below the margin.
  PromptReport strict;
  t.tie = 0.005;
  compare_steps(g, ours, t, names(), strict);
  EXPECT_FALSE(strict.pass());
}

TEST(CrossvalCompare, TooFewTop1AgreementsFail) {
  std::vector<float> margins(10, 0.01f);  // all near-ties: every flip is tolerated by itself
  const Golden g = make_ref(10, margins);
  std::vector<OurStep> ours = follow_exactly(g);
  for (size_t k = 0; k < 3; ++k) ours[k].id = 99;
  PromptReport r;
  Thresholds t = default_thresholds(true);  // min top-1 0.9
  compare_steps(g, ours, t, names(), r);
  EXPECT_NEAR(r.top1_rate, 0.7, 1e-12);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].find("top-1 agreement"), std::string::npos);
}

TEST(CrossvalCompare, LogitDifferenceLimitIsAbsolutePlusRelativeToTheTopLogit) {
  const Golden g = make_ref(4);  // top-1 logit 5
  Thresholds t;
  t.kind = "test";
  t.max_logit_diff = 0.01;
  t.rel_logit_diff = 0.01;  // limit 0.01 + 0.01 * 5 = 0.06
  t.max_kl = 1.0;
  t.tie = 0.05;
  std::vector<OurStep> ours = follow_exactly(g);
  ours[2].at_ref[1] += 0.05f;
  PromptReport ok;
  compare_steps(g, ours, t, names(), ok);
  EXPECT_TRUE(ok.pass());
  EXPECT_NEAR(ok.max_abs, 0.05, 1e-6);
  EXPECT_EQ(ok.max_abs_step, 2u);
  EXPECT_NEAR(ok.steps[2].limit, 0.06, 1e-12);

  ours[2].at_ref[1] += 0.02f;  // 0.07 > 0.06
  PromptReport bad;
  compare_steps(g, ours, t, names(), bad);
  ASSERT_EQ(bad.failures.size(), 1u);
  EXPECT_NE(bad.failures[0].find("max |logit diff|"), std::string::npos);
  EXPECT_NE(bad.failures[0].find("step 2"), std::string::npos);
}

TEST(CrossvalCompare, KlOverTheThresholdFails) {
  const Golden g = make_ref(3);
  std::vector<OurStep> ours = follow_exactly(g);
  ours[1].at_ref = {5.0f, 5.0f, 1.0f};  // ours sees a tie where the reference has a 2.0 margin
  Thresholds t = default_thresholds(false);
  t.max_logit_diff = 10;
  PromptReport r;
  compare_steps(g, ours, t, names(), r);
  EXPECT_GT(r.max_kl, 0.1);
  EXPECT_EQ(r.max_kl_step, 1u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].find("KL"), std::string::npos);
}

TEST(CrossvalCompare, TokenizationDifferenceFails) {
  const Golden g = make_ref(2);
  PromptReport r;
  r.tokens.checked = true;
  r.tokens.ours = {1, 5, 7};
  r.tokens.ref = g.prompt_ids;
  r.tokens.first_diff = first_difference(r.tokens.ours, r.tokens.ref);
  compare_steps(g, follow_exactly(g), default_thresholds(false), names(), r);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0], "tokenization differs at index 2: ours 7, reference (end)");
}

}  // namespace
}  // namespace bitnet::diag
