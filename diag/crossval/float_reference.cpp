// The float oracle as a crossval and perplexity reference (float_reference.hpp).
#include "diag/crossval/float_reference.hpp"

#include <fmt/format.h>

#include "core/base/error.hpp"
#include "diag/crossval/compare.hpp"

namespace bitnet::diag {

FloatOracleOptions oracle_options(const ReferenceSpec& ref) {
  BITNET_CHECK(ref.kind == RefKind::float_oracle);
  FloatOracleOptions o;
  if (ref.activations == "q8_k") o.activations = OracleActivations::q8_k;
  else if (ref.activations == "i8") o.activations = OracleActivations::i8;
  else BITNET_CHECK(ref.activations == "exact");  // parse_reference refused anything else
  return o;
}

Golden oracle_generate(const model::Model& model, const std::vector<TokenId>& prompt_ids,
                       const std::optional<std::string>& prompt, size_t n_predict, size_t k,
                       const FloatOracleOptions& opt, const std::function<std::string(TokenId)>& piece,
                       const std::atomic<bool>* cancel) {
  Golden g;
  g.engine = fmt::format("float oracle ({} activations)", oracle_activations_name(opt.activations));
  g.prompt = prompt;
  g.prompt_ids = prompt_ids;
  std::vector<TokenId> seq = prompt_ids;
  const size_t n_vocab = model.config().n_vocab;
  for (size_t step = 0; step < n_predict; ++step) {
    if (cancel && cancel->load())
      throw make_error(ErrorCode::interrupted, "the float oracle was stopped at step {} of {}", step + 1, n_predict);
    const std::vector<float> rows = oracle_logits_from(model, seq, seq.size() - 1, opt);
    GoldenStep s;
    s.top = top_k(std::span<const float>(rows).first(n_vocab), k);
    s.id = s.top.front().id;
    s.piece = piece(s.id);
    g.steps.push_back(std::move(s));
    seq.push_back(g.steps.back().id);
  }
  return g;
}

std::vector<float> oracle_logits_from(const model::Model& model, std::span<const TokenId> tokens, size_t from,
                                      const FloatOracleOptions& opt) {
  BITNET_CHECK(from < tokens.size());
  std::vector<float> all = float_oracle_logits(model, tokens, opt);
  const size_t n_vocab = model.config().n_vocab;
  all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(from * n_vocab));
  return all;
}

}  // namespace bitnet::diag
