// Sampler chain: greedy, truncations, penalties and seeded determinism, checked on constructed
// logits whose outcome is known.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "core/infer/sampler.hpp"

namespace bitnet::infer {
namespace {

TEST(Sampler, ZeroTemperatureIsArgmaxWithLowestIdOnTies) {
  SamplerOptions o;
  o.temp = 0;
  Sampler s(o);
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s.sample(l), 1);
  EXPECT_EQ(argmax(l), 1);
}

TEST(Sampler, TopKOneIsGreedyWhateverTheSeed) {
  std::vector<float> l = {0.5f, 0.2f, 2.0f, 1.9f};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SamplerOptions o;
    o.top_k = 1;
    o.seed = seed;
    Sampler s(o);
    EXPECT_EQ(s.sample(l), 2);
  }
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(i % 7) * 0.3f;
  SamplerOptions o;
  o.seed = 42;
  o.top_k = 0;
  o.top_p = 1;
  o.min_p = 0;
  Sampler a(o), b(o);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 100; ++i) {
    sa.push_back(a.sample(l));
    sb.push_back(b.sample(l));
  }
  EXPECT_EQ(sa, sb);
  o.seed = 43;
  Sampler c(o);
  std::vector<int32_t> sc;
  for (int i = 0; i < 100; ++i) sc.push_back(c.sample(l));
  EXPECT_NE(sa, sc);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  // Two tokens with logits 0 and ln 3: probabilities 1/4 and 3/4 at temperature 1.
  std::vector<float> l = {0.0f, std::log(3.0f)};
  SamplerOptions o;
  o.temp = 1;
  o.top_k = 0;
  o.top_p = 1;
  o.min_p = 0;
  o.seed = 7;
  Sampler s(o);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += s.sample(l) == 1;
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.015);  // ~5 standard deviations
}

TEST(Sampler, MinPAndTopPCutTheTail) {
  // p ~ {0.643, 0.237, 0.087, 0.032}: min_p 0.2 keeps ids 0 and 1 (0.087 < 0.2 * 0.643).
  std::vector<float> l = {3.0f, 2.0f, 1.0f, 0.0f};
  SamplerOptions o;
  o.top_k = 0;
  o.top_p = 1;
  o.min_p = 0.2f;
  o.temp = 1;
  std::map<int32_t, int> seen;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    o.seed = seed;
    Sampler s(o);
    ++seen[s.sample(l)];
  }
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_EQ(seen.count(3), 0u);
  EXPECT_GT(seen[1], 0);
  o.min_p = 0;
  o.top_p = 0.6f;  // the top token alone already reaches 0.6
  for (uint64_t seed = 0; seed < 50; ++seed) {
    o.seed = seed;
    Sampler s(o);
    EXPECT_EQ(s.sample(l), 0);
  }
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerOptions o;
  o.temp = 0;
  o.repeat_penalty = 2.0f;
  Sampler s(o);
  std::vector<float> l = {1.5f, 1.0f};
  s.accept(0);  // 1.5 / 2 = 0.75 < 1.0
  EXPECT_EQ(s.sample(l), 1);
  std::vector<float> neg = {-0.5f, -0.8f};
  Sampler t(o);
  t.accept(0);  // -0.5 * 2 = -1.0 < -0.8
  EXPECT_EQ(t.sample(neg), 1);
}

}  // namespace
}  // namespace bitnet::infer
