// The generation loop: prefill the prompt, then sample and feed one token at a time until
// n tokens, an end-of-generation token, a stop string, a full context or an interrupt.
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
  int32_t n_predict = 128;  // < 0: until end of generation or a full context
  std::vector<std::string> stop;
  bool ignore_eos = false;
  SamplerOptions sampling;
};

struct GenerateEvents {
  std::function<std::string(TokenId)> piece;                  // token -> text bytes (required)
  // Each generated token and its piece, when its text is released (held back like the text while
  // it may begin a stop string); the tokens of a stop string are not reported.
  std::function<void(TokenId, std::string_view)> on_token;
  std::function<void(std::string_view)> on_text;              // text safe to show, in order
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
};

// `eog`: ids that end generation (EOS, EOT). The prompt is evaluated in the session after
// whatever it already holds (chat turns keep their cache).
GenerateResult generate(Session& session, std::span<const TokenId> prompt, std::span<const TokenId> eog,
                        const GenerateOptions& opt, const GenerateEvents& ev,
                        const std::atomic<bool>* interrupt = nullptr);

// Bytes at the end of s that start an incomplete UTF-8 sequence (0 when s ends cleanly).
size_t incomplete_utf8_tail(std::string_view s);

}  // namespace bitnet::infer
