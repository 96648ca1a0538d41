// Perplexity and KL-divergence over chunks of a text (perplexity.hpp; the method in docs/perplexity.md).
#include "diag/perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/base/error.hpp"

namespace bitnet::diag {
namespace {

// ln sum exp(x), in double, and the index of the largest logit (the lower id on ties).
struct RowStats {
  double lse = 0;
  size_t top = 0;
};
RowStats row_stats(std::span<const float> x) {
  size_t top = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[top]) top = i;
  const double m = x[top];
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - m);
  return {m + std::log(sum), top};
}

// Running sums of one per-token quantity: its mean and the standard error of that mean.
struct Moments {
  double n = 0, sum = 0, sum2 = 0;
  void add(double x) { n += 1, sum += x, sum2 += x * x; }
  double mean() const { return n > 0 ? sum / n : 0; }
  double variance() const { return n > 0 ? std::max(0.0, sum2 / n - mean() * mean()) : 0; }
  // As llama-perplexity: the population variance over n - 1 (0 for a single token).
  double error() const { return n > 1 ? std::sqrt(variance() / (n - 1)) : 0; }
  Spread spread() const { return {mean(), error()}; }
};

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  p.max = v.back(), p.min = v.front();
  p.p99_9 = at(0.999), p.p99 = at(0.99), p.p95 = at(0.95), p.p90 = at(0.90), p.median = at(0.5);
  p.p10 = at(0.10), p.p5 = at(0.05), p.p1 = at(0.01), p.p0_1 = at(0.001);
  return p;
}

// What comparing with a reference accumulates, token by token.
struct KlAccumulator {
  Moments ours, ref, diff, kld, delta_p, same_top;
  double sum_cross = 0;  // sum of nll_ours * nll_ref, for the correlation
  std::vector<double> klds, delta_ps;

  void add(const PositionCompare& c) {
    ours.add(c.nll_ours), ref.add(c.nll_ref), diff.add(c.nll_ours - c.nll_ref);
    kld.add(c.kld), delta_p.add(c.delta_p), same_top.add(c.same_top ? 1.0 : 0.0);
    sum_cross += c.nll_ours * c.nll_ref;
    klds.push_back(c.kld), delta_ps.push_back(c.delta_p);
  }

  KlReport report() const {
    KlReport r;
    const double ppl_q = std::exp(ours.mean()), ppl_b = std::exp(ref.mean());
    r.ppl_ref = {ppl_b, ppl_b * ref.error()};
    r.ln_ppl_ratio = diff.spread();
    r.ppl_ratio = {std::exp(diff.mean()), std::exp(diff.mean()) * diff.error()};
    // PPL(Q) - PPL(base) to first order in the two means, which are correlated.
    const double cov = sum_cross / ours.n - ours.mean() * ref.mean();
    const double cov_means = ours.n > 1 ? cov / (ours.n - 1) : 0;
    const double var_diff = ppl_q * ppl_q * ours.error() * ours.error() + ppl_b * ppl_b * ref.error() * ref.error() -
                            2 * ppl_q * ppl_b * cov_means;
    r.ppl_diff = {ppl_q - ppl_b, std::sqrt(std::max(0.0, var_diff))};
    const double denom = std::sqrt(ours.variance() * ref.variance());
    r.nll_correlation = denom > 0 ? cov / denom : 0;
    r.kld = kld.spread();
    r.kld_pct = percentiles(klds);
    r.delta_p = delta_p.spread();
    r.delta_p_rms = std::sqrt(delta_p.sum2 / std::max(1.0, delta_p.n));
    r.delta_p_pct = percentiles(delta_ps);
    r.same_top = same_top.spread();
    return r;
  }
};

std::span<const float> row(const std::vector<float>& logits, size_t i, uint32_t n_vocab) {
  return std::span<const float>(logits).subspan(i * n_vocab, n_vocab);
}

}  // namespace

double token_nll(std::span<const float> logits, TokenId target) {
  return row_stats(logits).lse - static_cast<double>(logits[target]);
}

PositionCompare compare_position(std::span<const float> ours, std::span<const float> ref, TokenId target) {
  const RowStats a = row_stats(ours), b = row_stats(ref);
  PositionCompare c;
  c.nll_ours = a.lse - static_cast<double>(ours[target]);
  c.nll_ref = b.lse - static_cast<double>(ref[target]);
  double kld = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double lp_ref = static_cast<double>(ref[i]) - b.lse;
    const double lp_ours = static_cast<double>(ours[i]) - a.lse;
    kld += std::exp(lp_ref) * (lp_ref - lp_ours);
  }
  // Rounding can leave a sum of non-negative terms' true value (>= 0) a hair below zero.
  c.kld = std::max(0.0, kld);
  c.delta_p = std::exp(-c.nll_ours) - std::exp(-c.nll_ref);
  c.same_top = a.top == b.top;
  return c;
}

ChunkLogits session_chunk_logits(infer::Session& session) {
  return [&session](std::span<const TokenId> chunk, size_t from) {
    session.reset();
    if (from > 0) session.eval(chunk.first(from));
    session.eval(chunk.subspan(from), /*all_logits=*/true);
    const size_t n_vocab = session.model().config().n_vocab;
    std::vector<float> out((chunk.size() - from) * n_vocab);
    for (size_t i = 0; i < chunk.size() - from; ++i) {
      const auto l = session.logits_at(i);
      std::copy(l.begin(), l.end(), out.begin() + static_cast<std::ptrdiff_t>(i * n_vocab));
    }
    return out;
  };
}

PerplexityReport run_perplexity(std::span<const TokenId> tokens, uint32_t n_vocab, const PerplexityOptions& opt) {
  if (opt.n_ctx < 4) throw make_error(ErrorCode::invalid_input, "a context of {} tokens scores nothing (at least 4)", opt.n_ctx);
  if (tokens.size() < opt.n_ctx)
    throw make_error(ErrorCode::invalid_input, "the text is {} tokens long, shorter than one chunk of {} (-c)",
                     tokens.size(), opt.n_ctx);
  PerplexityReport r;
  r.n_ctx = opt.n_ctx;
  r.n_tokens = tokens.size();
  r.n_chunks = tokens.size() / opt.n_ctx;
  if (opt.max_chunks > 0) r.n_chunks = std::min(r.n_chunks, opt.max_chunks);
  // The first half of a chunk is context only: its tokens see too little to be scored fairly.
  const size_t first = opt.n_ctx / 2;
  Moments nll;
  KlAccumulator kl;
  std::vector<TokenId> chunk(opt.n_ctx);
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  for (size_t c = 0; c < r.n_chunks; ++c) {
    if (opt.cancel && opt.cancel->load()) throw make_error(ErrorCode::interrupted, "perplexity interrupted after {} chunks", c);
    const auto begin = tokens.begin() + static_cast<std::ptrdiff_t>(c * opt.n_ctx);
    std::copy(begin, begin + opt.n_ctx, chunk.begin());
    if (opt.bos) chunk[0] = *opt.bos;
    auto t = Clock::now();
    const std::vector<float> ours = opt.ours(chunk, first);
    r.seconds += std::chrono::duration<double>(Clock::now() - t).count();
    if (opt.save) opt.save(ours);
    std::vector<float> ref;
    if (opt.reference) {
      t = Clock::now();
      ref = opt.reference(chunk, first);
      r.reference_seconds += std::chrono::duration<double>(Clock::now() - t).count();
    }
    // Row i holds the logits after position first + i; they predict the token after it (the
    // original one: the chunk's BOS only replaces position 0, which is never a target).
    for (size_t i = 0; first + i + 1 < opt.n_ctx; ++i) {
      const TokenId target = chunk[first + i + 1];
      if (opt.reference) {
        const PositionCompare pc = compare_position(row(ours, i, n_vocab), row(ref, i, n_vocab), target);
        nll.add(pc.nll_ours);
        kl.add(pc);
      } else {
        nll.add(token_nll(row(ours, i, n_vocab), target));
      }
    }
    r.running_ppl.push_back(std::exp(nll.mean()));
    if (opt.progress)
      opt.progress({c + 1, r.n_chunks, r.running_ppl.back(), std::chrono::duration<double>(Clock::now() - t0).count()});
  }
  r.scored = static_cast<size_t>(nll.n);
  const double ppl = std::exp(nll.mean());
  r.ppl = {ppl, ppl * nll.error()};
  if (opt.reference) r.kl = kl.report();
  return r;
}

}  // namespace bitnet::diag
