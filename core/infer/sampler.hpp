// Token sampling, the chain llama.cpp users know: repeat penalty over the last N tokens, then
// top-k, top-p, min-p, temperature, and a seeded draw. temp <= 0 is greedy (argmax, ties to the
// lowest id).
#pragma once

#include <cstdint>
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
