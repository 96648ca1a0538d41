// `bitnet perplexity`: llama-perplexity's method over a text's tokens (chunks of n_ctx, each from a
// fresh context with BOS first, the second half of each scored), and against a reference's logits
// on the same tokens the KL-divergence and token-probability statistics of its --kl-divergence.
// Returns a report; never prints (docs/perplexity.md).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/token_id.hpp"
#include "core/infer/session.hpp"

namespace bitnet::diag {

// Logits of positions from.. of `chunk`, evaluated from position 0 on a fresh context:
// [chunk.size() - from][n_vocab].
using ChunkLogits = std::function<std::vector<float>(std::span<const TokenId> chunk, size_t from)>;

// The engine's logits through a session, which is reset for every chunk (its n_ctx must hold one).
ChunkLogits session_chunk_logits(infer::Session& session);

struct PerplexityProgress {
  size_t chunk = 0;     // chunks done, 1-based
  size_t n_chunks = 0;
  double ppl = 0;       // over the chunks done
  double seconds = 0;   // since the start
};

struct PerplexityOptions {
  uint32_t n_ctx = 512;
  size_t max_chunks = 0;          // 0: every whole chunk of the text
  std::optional<TokenId> bos;     // set: each chunk's first token becomes it (the model adds BOS)
  ChunkLogits ours;
  ChunkLogits reference;          // empty: perplexity alone
  // Called with each chunk's rows of ours, [n_ctx - n_ctx / 2][n_vocab] (a base file's writer).
  std::function<void(const std::vector<float>&)> save;
  std::function<void(const PerplexityProgress&)> progress;  // after each chunk
  const std::atomic<bool>* cancel = nullptr;  // set: Error(interrupted) between chunks
};

// A mean and its standard error.
struct Spread {
  double mean = 0;
  double error = 0;
};

// Order statistics of one quantity over the scored tokens.
struct Percentiles {
  double max = 0, p99_9 = 0, p99 = 0, p95 = 0, p90 = 0, median = 0, p10 = 0, p5 = 0, p1 = 0, p0_1 = 0, min = 0;
};

// Ours ("Q") against the reference ("base"), token by token.
struct KlReport {
  Spread ppl_ref;              // the reference's perplexity on the same tokens
  Spread ln_ppl_ratio;         // mean of ln p_ref(t) - ln p_ours(t): ln(PPL(Q) / PPL(base))
  Spread ppl_ratio;            // PPL(Q) / PPL(base)
  Spread ppl_diff;             // PPL(Q) - PPL(base)
  double nll_correlation = 0;  // Pearson, of the two per-token -ln p
  Spread kld;                  // KL(base || Q) per token, nats
  Percentiles kld_pct;
  Spread delta_p;              // p_Q(t) - p_base(t) of the true next token
  double delta_p_rms = 0;
  Percentiles delta_p_pct;
  Spread same_top;             // fraction of tokens whose top-1 ids agree
};

struct PerplexityReport {
  uint32_t n_ctx = 0;
  size_t n_tokens = 0;             // of the whole text
  size_t n_chunks = 0;
  size_t scored = 0;               // tokens whose probability was scored
  std::vector<double> running_ppl; // after each chunk
  Spread ppl;                      // error: the standard error of the mean -ln p, times PPL
  double seconds = 0;              // ours
  double reference_seconds = 0;
  std::optional<KlReport> kl;      // with a reference
};

// Throws Error(invalid_input) when the tokens fill no chunk of n_ctx or n_ctx is below 4,
// Error(interrupted) on cancel, and whatever the logits sources throw.
PerplexityReport run_perplexity(std::span<const TokenId> tokens, uint32_t n_vocab, const PerplexityOptions& opt);

// The scoring of one position, in double: -ln softmax(logits)[target].
double token_nll(std::span<const float> logits, TokenId target);

struct PositionCompare {
  double nll_ours = 0, nll_ref = 0;
  double kld = 0;      // sum_i p_ref(i) (ln p_ref(i) - ln p_ours(i))
  double delta_p = 0;  // p_ours(target) - p_ref(target)
  bool same_top = false;
};
PositionCompare compare_position(std::span<const float> ours, std::span<const float> ref, TokenId target);

}  // namespace bitnet::diag
