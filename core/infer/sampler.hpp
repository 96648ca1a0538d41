// Token sampling, the chain llama.cpp users know: repeat penalty over the last N tokens, then
// top-k, top-p, min-p, temperature, and a seeded draw. temp <= 0 is greedy (argmax, ties to the
// lowest id).
#pragma once

#include <cstdint>
#include <algorithm>
#include <deque>
#include <random>
#include <span>
#include <vector>

#include "core/base/token_id.hpp"

namespace bitnet::infer {

struct SamplerOptions {
  float temp = 0.8f;
  int32_t top_k = 40;         // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& opt);
  // Picks the next token from logits (copied; the input is not modified).
  TokenId sample(std::span<const float> logits);
  // Records a token (prompt or generated) for the repeat penalty.
  void accept(TokenId token);
  // The tokens whose logits the next sample() changes before choosing (the repeat penalty's
  // window, when the penalty is on), each once.
  std::vector<TokenId> penalized() const;
  // How many of the largest logits the next sample() can choose from, after the tokens above
  // are changed: 1 when greedy, top_k, or 0 when it looks at all of them.
  int32_t needs_top() const { return opt_.temp <= 0.0f ? 1 : std::max(opt_.top_k, 0); }

 private:
  struct Candidate {
    TokenId id;
    float logit;
    float p;
  };
  SamplerOptions opt_;
  std::mt19937_64 rng_;
  std::deque<TokenId> recent_;
  std::vector<Candidate> cand_;
};

TokenId argmax(std::span<const float> logits);

}  // namespace bitnet::infer
