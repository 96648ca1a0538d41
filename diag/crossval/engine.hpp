// Our engine as crossval sees it: tokenize, run greedily to make a golden (--record, and the
// backend:NAME reference), or follow a reference's tokens (teacher forcing) and record our logits
// at each step, so every step compares logits over the same context.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/infer/resident_weights.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "diag/crossval/compare.hpp"
#include "diag/crossval/golden.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::diag {

// How the prompt is fed: one token per forward pass (bitnet.cpp's goldens) or all in one batch
// (llama.cpp's). The two differ by rounding, most visibly for I2_S (fixtures/README.md).
enum class PromptBatch { one, all };

class Engine {
 public:
  Engine(const model::Model& model, const tokenizer::Tokenizer& tok, const kernels::KernelTable& kernels,
         ThreadPool* pool, infer::KvType kv_type = infer::KvType::f16);
  ~Engine();

  // BOS as the vocabulary says, control tokens in the text parsed (as llama.cpp's adapter does).
  std::vector<TokenId> tokenize(std::string_view text) const;
  std::string piece(TokenId id) const;                  // "" for an id outside the vocabulary
  std::string text(std::span<const TokenId> ids) const; // decoded, ids outside the vocabulary skipped
  VocabFacts vocab_facts() const;
  std::string name() const;                             // "bitnet (reference kernels)"

  // Greedy for n_predict steps, past end-of-generation tokens (as the adapter does), as a golden.
  // `prompt` is the text of prompt_ids, when known (it is written into the golden).
  Golden generate(const std::vector<TokenId>& prompt_ids, const std::optional<std::string>& prompt, size_t n_predict,
                  size_t k, PromptBatch batch) const;
  // Teacher-forced along ref: step i's logits after the reference's prompt and its first i tokens.
  // Throws bitnet::Error(invalid_input) when the reference uses ids outside our vocabulary.
  std::vector<OurStep> follow(const Golden& ref, size_t k, PromptBatch batch) const;

 private:
  const model::Model& model_;
  const tokenizer::Tokenizer& tok_;
  const kernels::KernelTable& kernels_;
  ThreadPool* pool_;
  infer::KvType kv_type_;
  // One copy of the weights for every prompt's session, made on first use (a run that fails
  // before reaching our engine never pays for it).
  const infer::ResidentWeights& weights() const;
  mutable std::unique_ptr<infer::ResidentWeights> weights_;
};

// Whether any matrix of the model is stored in a quantized format (ternary or integer blocks):
// such models get the looser default thresholds.
bool has_quantized_weights(const model::Model& model);

}  // namespace bitnet::diag
