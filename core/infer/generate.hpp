// The generation loop: prefill the prompt, then sample and feed one token at a time until
// n tokens, an end-of-generation token, a stop string, a full context (unless shifting it makes
// room) or an interrupt.
// Text is streamed with two holds: an incomplete UTF-8 sequence at the end, and any tail that
// could still become a stop string (which is never printed).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/token_id.hpp"
#include "core/infer/sampler.hpp"
#include "core/infer/session.hpp"

namespace bitnet::infer {

struct GenerateOptions {
  int32_t n_predict = 128;  // < 0: until end of generation (or a full context without shifting)
  std::vector<std::string> stop;
  bool ignore_eos = false;
  SamplerOptions sampling;
  // A full context: shift it (make_room) and go on, rather than stop (StopReason::ctx) or, for a
  // prompt that does not fit, fail in Session::eval.
  bool context_shift = false;
  uint32_t n_keep = 0;  // tokens at the start of the context a shift keeps (BOS, a system prompt)
  // Every logit of every step, even where the sampler looks only at the largest few (a session
  // with an output screen otherwise computes only those: the same tokens, fewer bytes read).
  bool exact_logits = false;
};

struct GenerateEvents {
  std::function<std::string(TokenId)> piece;                  // token -> text bytes (required)
  // Each generated token and its piece, when its text is released (held back like the text while
  // it may begin a stop string); the tokens of a stop string are not reported.
  std::function<void(TokenId, std::string_view)> on_token;
  std::function<void(std::string_view)> on_text;              // text safe to show, in order
  std::function<void(uint32_t kept, uint32_t dropped)> on_shift;  // after each context shift
};

enum class StopReason { n, eos, stop, ctx, interrupt };
// "n", "eos", "stop", "ctx", "interrupt" (the JSON "reason" of CLI.md).
std::string_view stop_reason_name(StopReason r);

struct GenerateResult {
  StopReason reason = StopReason::n;
  std::vector<TokenId> tokens;  // generated ids (a stop string's tokens included)
  std::string text;             // the text shown (stop string excluded)
  double prefill_seconds = 0;
  // The evals of generated tokens fed back (every generated token but the last, the first one
  // coming from the prompt's logits) and their time: decode speed is the one over the other.
  size_t n_decode_evals = 0;
  double decode_seconds = 0;
  double first_token_seconds = 0;
  size_t n_prompt = 0;
  size_t n_shifts = 0;  // context shifts (make_room) during this call
  // Output rows computed exactly over the evals of this call (with an output screen, the rows
  // the sampler could pick; else the vocabulary each time), and those evals.
  uint64_t exact_output_rows = 0;
  size_t n_evals = 0;
};

// `eog`: ids that end generation (EOS, EOT). The prompt is evaluated in the session after
// whatever it already holds (chat turns keep their cache).
GenerateResult generate(Session& session, std::span<const TokenId> prompt, std::span<const TokenId> eog,
                        const GenerateOptions& opt, const GenerateEvents& ev,
                        const std::atomic<bool>* interrupt = nullptr);

// llama-cli's context shift: when n_new more tokens do not fit in the session and
// opt.context_shift is on, keeps the first opt.n_keep tokens (at most n_past()) and drops half of
// the rest, or more if n_new needs it, with Session::shift_context. Returns the tokens dropped: 0
// when they fit, shifting is off, or even dropping every token after the kept ones would not
// make room (an eval then fails, or generation stops, as without shifting).
struct ShiftResult {
  uint32_t kept = 0, dropped = 0;
};
ShiftResult make_room(Session& session, size_t n_new, const GenerateOptions& opt);

// Bytes at the end of s that start an incomplete UTF-8 sequence (0 when s ends cleanly).
size_t incomplete_utf8_tail(std::string_view s);

}  // namespace bitnet::infer
