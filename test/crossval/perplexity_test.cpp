// The perplexity and KL-divergence maths (diag/perplexity.hpp) against values worked out by hand,
// and the chunking against llama-perplexity's rules, through logits sources that know the text.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "core/base/error.hpp"
#include "diag/perplexity.hpp"

namespace bitnet::diag {
namespace {

TEST(Perplexity, TokenNllIsMinusLogSoftmax) {
  // Logits ln 1 .. ln 4: the probabilities are 0.1, 0.2, 0.3, 0.4.
  const std::vector<float> logits{0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  EXPECT_NEAR(token_nll(logits, 3), -std::log(0.4), 1e-7);
  EXPECT_NEAR(token_nll(logits, 0), -std::log(0.1), 1e-7);
  // Shifting every logit changes nothing; large ones do not overflow.
  const std::vector<float> shifted{1000.0f, 1000.0f + std::log(2.0f), 1000.0f + std::log(3.0f), 1000.0f + std::log(4.0f)};
  EXPECT_NEAR(token_nll(shifted, 3), -std::log(0.4), 1e-4);
}

TEST(Perplexity, ComparePositionGivesTheKlDivergenceAndDeltaP) {
  // Reference p = (0.5, 0.5), ours q = (0.9, 0.1).
  const std::vector<float> ref{0.0f, 0.0f};
  const std::vector<float> ours{std::log(9.0f), 0.0f};
  const PositionCompare c = compare_position(ours, ref, 1);
  EXPECT_NEAR(c.kld, 0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1), 1e-6);
  EXPECT_NEAR(c.delta_p, 0.1 - 0.5, 1e-6);
  EXPECT_NEAR(c.nll_ours, -std::log(0.1), 1e-6);
  EXPECT_NEAR(c.nll_ref, -std::log(0.5), 1e-6);
  EXPECT_TRUE(c.same_top);  // a tie goes to the lower id in both
  const PositionCompare same = compare_position(ours, ours, 0);
  EXPECT_EQ(same.kld, 0.0);
  EXPECT_EQ(same.delta_p, 0.0);
  const std::vector<float> other{0.0f, 1.0f};
  EXPECT_FALSE(compare_position(ours, other, 0).same_top);
}

constexpr uint32_t kVocab = 16;

// Logits that give the true next token of each position the probability p(position), all other
// tokens equal shares: the source must be asked for the right rows for the PPL to come out right.
ChunkLogits knowing_source(double (*p)(size_t), std::vector<std::vector<TokenId>>* seen = nullptr) {
  return [p, seen](std::span<const TokenId> chunk, size_t from) {
    if (seen) seen->emplace_back(chunk.begin(), chunk.end());
    std::vector<float> out((chunk.size() - from) * kVocab, 0.0f);
    for (size_t i = 0; from + i + 1 < chunk.size(); ++i) {
      const double q = p(from + i);
      // softmax: e^a / (e^a + 15) = q  =>  a = ln(15 q / (1 - q))
      out[i * kVocab + chunk[from + i + 1]] = static_cast<float>(std::log((kVocab - 1) * q / (1 - q)));
    }
    return out;
  };
}

double p_of_position(size_t pos) { return 0.2 + 0.05 * static_cast<double>(pos % 7); }

std::vector<TokenId> text(size_t n) {
  std::vector<TokenId> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<TokenId>((i * 7 + 3) % kVocab);
  return t;
}

TEST(Perplexity, ScoresTheSecondHalfOfEachChunkAsLlamaPerplexity) {
  std::vector<std::vector<TokenId>> seen;
  PerplexityOptions o;
  o.n_ctx = 10;
  o.bos = 1;
  o.ours = knowing_source(p_of_position, &seen);
  const std::vector<TokenId> tokens = text(37);  // three whole chunks and a tail that is not used
  const PerplexityReport r = run_perplexity(tokens, kVocab, o);
  ASSERT_EQ(r.n_chunks, 3u);
  ASSERT_EQ(seen.size(), 3u);
  for (size_t c = 0; c < 3; ++c) {
    EXPECT_EQ(seen[c][0], 1) << "each chunk starts with BOS";
    for (size_t i = 1; i < 10; ++i) EXPECT_EQ(seen[c][i], tokens[c * 10 + i]);
  }
  // Positions 5..8 of each chunk predict 6..9: four scored tokens per chunk.
  EXPECT_EQ(r.scored, 12u);
  double nll = 0;
  for (size_t pos = 5; pos < 9; ++pos) nll -= std::log(p_of_position(pos));
  EXPECT_NEAR(r.ppl.mean, std::exp(nll / 4), 1e-6);
  ASSERT_EQ(r.running_ppl.size(), 3u);
  EXPECT_NEAR(r.running_ppl[0], r.ppl.mean, 1e-6);  // every chunk scores the same positions
  // The spread of -ln p over the four positions, repeated three times.
  std::vector<double> x;
  for (int c = 0; c < 3; ++c)
    for (size_t pos = 5; pos < 9; ++pos) x.push_back(-std::log(p_of_position(pos)));
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / 12;
  double var = 0;
  for (double v : x) var += (v - mean) * (v - mean);
  EXPECT_NEAR(r.ppl.error, r.ppl.mean * std::sqrt(var / 12 / 11), 1e-6);
  EXPECT_FALSE(r.kl.has_value());
}

TEST(Perplexity, ChunksCanBeCappedAndBosIsOptional) {
  std::vector<std::vector<TokenId>> seen;
  PerplexityOptions o;
  o.n_ctx = 8;
  o.max_chunks = 2;
  o.ours = knowing_source(p_of_position, &seen);
  const std::vector<TokenId> tokens = text(40);
  const PerplexityReport r = run_perplexity(tokens, kVocab, o);
  EXPECT_EQ(r.n_chunks, 2u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1][0], tokens[8]);
  EXPECT_EQ(r.scored, 2u * 3u);
}

TEST(Perplexity, AgainstAReferenceReportsItsPplAndTheDivergence) {
  PerplexityOptions o;
  o.n_ctx = 12;
  o.ours = knowing_source(p_of_position, nullptr);
  o.reference = knowing_source([](size_t) { return 0.5; }, nullptr);
  const PerplexityReport r = run_perplexity(text(24), kVocab, o);
  ASSERT_TRUE(r.kl.has_value());
  EXPECT_NEAR(r.kl->ppl_ref.mean, 2.0, 1e-6);
  EXPECT_NEAR(r.kl->ppl_ref.error, 0.0, 1e-9);
  EXPECT_NEAR(r.kl->ppl_ratio.mean, r.ppl.mean / 2.0, 1e-6);
  EXPECT_NEAR(r.kl->ppl_diff.mean, r.ppl.mean - 2.0, 1e-6);
  EXPECT_NEAR(std::exp(r.kl->ln_ppl_ratio.mean), r.ppl.mean / 2.0, 1e-6);
  // Position 6 predicts with 0.5 in both; the others differ, so the divergence is positive.
  EXPECT_GT(r.kl->kld.mean, 0.0);
  EXPECT_EQ(r.kl->kld_pct.min, 0.0);
  EXPECT_NEAR(r.kl->delta_p.mean, 0.0, 0.3);
  EXPECT_LE(r.kl->delta_p_pct.min, r.kl->delta_p_pct.median);
  EXPECT_LE(r.kl->delta_p_pct.median, r.kl->delta_p_pct.max);
  // The same source twice: nothing between them.
  o.reference = o.ours;
  const PerplexityReport same = run_perplexity(text(24), kVocab, o);
  EXPECT_EQ(same.kl->kld.mean, 0.0);
  EXPECT_EQ(same.kl->same_top.mean, 1.0);
  EXPECT_EQ(same.kl->ppl_ratio.mean, 1.0);
  EXPECT_NEAR(same.kl->nll_correlation, 1.0, 1e-9);
}

TEST(Perplexity, ATextShorterThanOneChunkIsInvalidInput) {
  PerplexityOptions o;
  o.n_ctx = 64;
  o.ours = knowing_source(p_of_position, nullptr);
  try {
    run_perplexity(text(63), kVocab, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("63 tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("64"), std::string::npos) << e.what();
  }
  o.n_ctx = 3;
  EXPECT_THROW(run_perplexity(text(63), kVocab, o), Error);
}

}  // namespace
}  // namespace bitnet::diag
