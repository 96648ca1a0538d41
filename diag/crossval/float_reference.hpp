// The float oracle (diag/oracle) as a reference: `crossval --reference float[:SCHEME]` and
// `perplexity --reference float[:SCHEME]`.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model/model.hpp"
#include "diag/crossval/golden.hpp"
#include "diag/crossval/reference.hpp"
#include "diag/oracle/float_model.hpp"

namespace bitnet::diag {

// The oracle's options for a float[:exact|q8_k|i8] reference.
FloatOracleOptions oracle_options(const ReferenceSpec& ref);

// Greedy from prompt_ids for n_predict steps, each step's k best logits (ties to the lower id), as a
// golden. The oracle keeps no KV cache: every step evaluates the whole sequence again, so the time
// grows with the square of its length. Throws Error(interrupted) when cancel is set between steps.
Golden oracle_generate(const model::Model& model, const std::vector<TokenId>& prompt_ids,
                       const std::optional<std::string>& prompt, size_t n_predict, size_t k,
                       const FloatOracleOptions& opt, const std::function<std::string(TokenId)>& piece,
                       const std::atomic<bool>* cancel);

// Logits of positions from.. of `tokens` evaluated from position 0: [tokens.size() - from][n_vocab].
std::vector<float> oracle_logits_from(const model::Model& model, std::span<const TokenId> tokens, size_t from,
                                      const FloatOracleOptions& opt);

}  // namespace bitnet::diag
