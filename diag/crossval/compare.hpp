// Crossval maths and verdicts: given a reference's run (a Golden) and what our engine computed
// teacher-forced on the same tokens, per-step agreement (top-1, top-k overlap, KL over the
// reference's top-k, max |logit diff|), the first greedy mismatch and pass/fail against thresholds.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "diag/crossval/golden.hpp"

namespace bitnet::diag {

// What our engine computed at one step, teacher-forced (fed the reference's tokens).
struct OurStep {
  TokenId id = 0;               // our greedy choice (argmax, ties to the lower id)
  std::vector<TopEntry> top;    // our top-k
  std::vector<float> at_ref;    // our logits at the reference's top ids, in its order
};

struct Thresholds {
  std::string kind;             // "float" or "quantized": which defaults these are
  double max_logit_diff = 0;    // per step: max |ours - ref| over the reference's top-k must be
  double rel_logit_diff = 0;    //   <= max_logit_diff + rel_logit_diff * |reference top-1 logit|
  double max_kl = 0;            // per step, KL(ref || ours) over the reference's top-k ids
  double min_top1 = 0;          // fraction of steps whose top-1 ids agree
  double tie = 0;               // a reference top-2 margin under this is a near-tie
};

// Defaults by model type (tolerances of test/infer/golden_test.cpp, explained there and in
// docs/crossval.md): float weights agree to ~1e-3 relative; ternary/quantized formats quantize
// activations per engine, which moves logits by up to ~0.1.
Thresholds default_thresholds(bool quantized);

// --- the maths, on plain inputs (unit-tested) ---
// k best (id, logit), logit descending, ties to the lower id.
std::vector<TopEntry> top_k(std::span<const float> logits, size_t k);
// |a ∩ b| / max(|a|, |b|) over ids (1 when both are empty).
double top_k_overlap(std::span<const TopEntry> a, std::span<const TopEntry> b);
// KL(p || q) in nats, p = softmax(ref), q = softmax(ours), both over the same ids.
double kl_divergence(std::span<const float> ref_logits, std::span<const float> our_logits);
// First index where the lists differ (the shorter length when one is a prefix; nullopt if equal).
std::optional<size_t> first_difference(std::span<const TokenId> a, std::span<const TokenId> b);

struct StepReport {
  size_t step = 0;
  TokenId ref_id = 0;
  TokenId our_id = 0;
  double ref_margin = 0;   // reference top-1 minus top-2 logit
  bool top1 = false;       // our argmax == the reference's top-1
  double overlap = 0;
  double kl = 0;
  double max_abs = 0;
  double limit = 0;        // the max |diff| allowed at this step
};

struct Mismatch {
  size_t step = 0;
  TokenId ref_id = 0, our_id = 0;
  std::string ref_piece, our_piece;
  std::string text_before;  // the prompt and reference continuation before this step
  double ref_margin = 0;
  bool near_tie = false;    // the reference itself nearly chose otherwise: reported, not a failure
};

struct TokenizationCheck {
  bool checked = false;     // false when the reference did not say what the prompt text was
  // The reference gave ids only (checked stays false): `ours` is our tokenizer re-reading their
  // decoded text. A difference is shown as a hint, not a failure: ids from another model's
  // vocabulary differ, but so do a same-model golden's made with another pre-tokenizer.
  bool from_ids = false;
  std::vector<TokenId> ours, ref;
  std::optional<size_t> first_diff;
  bool ok() const { return !first_diff; }
};

struct PromptReport {
  std::string prompt;       // text, or "" when the reference gave only ids
  TokenizationCheck tokens;
  size_t n_steps = 0;
  size_t n_match = 0;       // steps where our greedy id equals the reference's
  std::vector<Mismatch> mismatches;   // every step where the ids differ, in order
  std::vector<StepReport> steps;
  double top1_rate = 1, mean_overlap = 1, mean_kl = 0, max_kl = 0, max_abs = 0;
  size_t max_kl_step = 0, max_abs_step = 0;
  double seconds_ref = 0, seconds_ours = 0;
  std::string ref_stderr;   // what the reference printed on stderr (tail)
  std::vector<std::string> failures;  // one line per broken threshold; empty = pass
  bool pass() const { return failures.empty(); }
};

// How the report names tokens: `piece` one id, `text` a sequence (prompt + continuation).
struct Naming {
  std::function<std::string(TokenId)> piece;
  std::function<std::string(std::span<const TokenId>)> text;
};
// Fills everything about one prompt except the tokenization check and timings (the caller's),
// and adds the failures of the tokenization check when it was made.
void compare_steps(const Golden& ref, std::span<const OurStep> ours, const Thresholds& t, const Naming& naming,
                   PromptReport& report);

}  // namespace bitnet::diag
