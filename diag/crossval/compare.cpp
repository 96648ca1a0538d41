// Crossval maths and the per-prompt verdict. Double precision throughout: the quantities compared
// are differences of float logits, and the sums must not add error of their own.
#include "diag/crossval/compare.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace bitnet::diag {

Thresholds default_thresholds(bool quantized) {
  Thresholds t;
  if (quantized) {
    // Each engine rounds activations its own way (per-token int8, per-256 Q8_K) before ternary
    // matmuls; near-ties of single quantized values flip, and the references themselves move by
    // 0.05-0.1 between batch-1 and batched prompts (fixtures/README.md). Measured worst 0.107.
    t.kind = "quantized";
    t.max_logit_diff = 0.15;
    t.rel_logit_diff = 0;
    t.max_kl = 5e-3;
    t.min_top1 = 0.9;
    t.tie = 0.15;
  } else {
    // Float weights, no activation quantization: only the F16 KV cache and summation order
    // differ. ~1e-3 relative to the step's top logit (measured worst 0.0134 at a top of 13.5).
    t.kind = "float";
    t.max_logit_diff = 0.02;
    t.rel_logit_diff = 1e-3;
    t.max_kl = 1e-4;
    t.min_top1 = 0.95;
    t.tie = 0.05;
  }
  return t;
}

std::vector<TopEntry> top_k(std::span<const float> logits, size_t k) {
  std::vector<TopEntry> all(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) all[i] = {static_cast<TokenId>(i), logits[i]};
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    [](const TopEntry& a, const TopEntry& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); });
  all.resize(k);
  return all;
}

double top_k_overlap(std::span<const TopEntry> a, std::span<const TopEntry> b) {
  const size_t n = std::max(a.size(), b.size());
  if (n == 0) return 1.0;
  size_t common = 0;
  for (const TopEntry& x : a)
    if (std::any_of(b.begin(), b.end(), [&](const TopEntry& y) { return y.id == x.id; })) ++common;
  return static_cast<double>(common) / static_cast<double>(n);
}

namespace {
// log-softmax over a few logits, shifted by the max so exp never overflows.
std::vector<double> log_softmax(std::span<const float> x) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<double>(x[i]) - lse;
  return out;
}
}  // namespace

double kl_divergence(std::span<const float> ref_logits, std::span<const float> our_logits) {
  if (ref_logits.size() != our_logits.size() || ref_logits.empty()) return 0;
  const std::vector<double> lp = log_softmax(ref_logits), lq = log_softmax(our_logits);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(kl, 0.0);  // rounding can leave -1e-17
}

std::optional<size_t> first_difference(std::span<const TokenId> a, std::span<const TokenId> b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return i;
  if (a.size() != b.size()) return n;
  return std::nullopt;
}

namespace {

StepReport measure(const GoldenStep& ref, const OurStep& ours, const Thresholds& t, size_t step) {
  StepReport s;
  s.step = step;
  s.ref_id = ref.id;
  s.our_id = ours.id;
  s.ref_margin = ref.top.size() > 1 ? static_cast<double>(ref.top[0].logit) - static_cast<double>(ref.top[1].logit)
                                    : std::numeric_limits<double>::infinity();
  s.top1 = ours.id == ref.top[0].id;
  s.overlap = top_k_overlap(ref.top, ours.top);
  std::vector<float> ref_logits;
  for (const TopEntry& e : ref.top) ref_logits.push_back(e.logit);
  s.kl = kl_divergence(ref_logits, ours.at_ref);
  for (size_t i = 0; i < ref_logits.size() && i < ours.at_ref.size(); ++i)
    s.max_abs = std::max(s.max_abs, std::fabs(static_cast<double>(ours.at_ref[i]) - static_cast<double>(ref_logits[i])));
  s.limit = t.max_logit_diff + t.rel_logit_diff * std::fabs(static_cast<double>(ref.top[0].logit));
  return s;
}

}  // namespace

void compare_steps(const Golden& ref, std::span<const OurStep> ours, const Thresholds& t, const Naming& naming,
                   PromptReport& r) {
  if (r.tokens.checked && r.tokens.first_diff) {
    const size_t i = *r.tokens.first_diff;
    auto at = [&](const std::vector<TokenId>& v) { return i < v.size() ? fmt::to_string(v[i]) : std::string("(end)"); };
    r.failures.push_back(fmt::format("tokenization differs at index {}: ours {}, reference {}", i, at(r.tokens.ours),
                                     at(r.tokens.ref)));
  }
  const size_t n = std::min(ref.steps.size(), ours.size());
  r.n_steps = n;
  std::vector<TokenId> context = ref.prompt_ids;
  double sum_overlap = 0, sum_kl = 0;
  size_t n_top1 = 0;
  const StepReport* worst_abs = nullptr;
  for (size_t k = 0; k < n; ++k) {
    const GoldenStep& g = ref.steps[k];
    StepReport s = measure(g, ours[k], t, k);
    if (s.our_id == g.id) {
      ++r.n_match;
    } else {
      Mismatch m;
      m.step = k;
      m.ref_id = g.id;
      m.our_id = s.our_id;
      m.ref_piece = naming.piece ? naming.piece(g.id) : g.piece;  // a golden's piece is informative only
      m.our_piece = naming.piece ? naming.piece(s.our_id) : "";
      m.text_before = naming.text ? naming.text(context) : "";
      m.ref_margin = s.ref_margin;
      m.near_tie = s.ref_margin < t.tie;
      r.mismatches.push_back(std::move(m));
    }
    n_top1 += s.top1 ? 1 : 0;
    sum_overlap += s.overlap;
    sum_kl += s.kl;
    if (s.kl > r.max_kl) {
      r.max_kl = s.kl;
      r.max_kl_step = k;
    }
    if (s.max_abs > r.max_abs) {
      r.max_abs = s.max_abs;
      r.max_abs_step = k;
    }
    r.steps.push_back(s);
    context.push_back(g.id);
  }
  if (n > 0) {
    r.top1_rate = static_cast<double>(n_top1) / static_cast<double>(n);
    r.mean_overlap = sum_overlap / static_cast<double>(n);
    r.mean_kl = sum_kl / static_cast<double>(n);
  }
  for (const StepReport& s : r.steps)
    if (s.max_abs > s.limit && (!worst_abs || s.max_abs - s.limit > worst_abs->max_abs - worst_abs->limit)) worst_abs = &s;

  size_t hard = 0;
  const Mismatch* first_hard = nullptr;
  for (const Mismatch& m : r.mismatches)
    if (!m.near_tie && hard++ == 0) first_hard = &m;
  if (first_hard)
    r.failures.push_back(fmt::format("greedy ids differ at step {}: reference {}, ours {} (reference top-2 margin {:.4g} >= "
                                     "tie threshold {:.4g}){}",
                                     first_hard->step, first_hard->ref_id, first_hard->our_id, first_hard->ref_margin, t.tie,
                                     hard > 1 ? fmt::format("; {} such steps", hard) : ""));
  if (r.top1_rate < t.min_top1)
    r.failures.push_back(fmt::format("top-1 agreement {:.3f} < {:.3f}", r.top1_rate, t.min_top1));
  if (worst_abs)
    r.failures.push_back(fmt::format("max |logit diff| {:.4g} at step {} > {:.4g}", worst_abs->max_abs, worst_abs->step,
                                     worst_abs->limit));
  if (r.max_kl > t.max_kl)
    r.failures.push_back(fmt::format("KL divergence {:.3g} at step {} > {:.3g}", r.max_kl, r.max_kl_step, t.max_kl));
  if (n < ref.steps.size())
    r.failures.push_back(fmt::format("compared {} of the reference's {} steps", n, ref.steps.size()));
}

}  // namespace bitnet::diag
