// Vocab helpers: pre-tokenizer names and llama.cpp's text-based special-token conventions.
#include "vocab.hpp"

#include <cmath>
#include <limits>

#include "core/base/error.hpp"
#include "core/base/log.hpp"

namespace bitnet::tokenizer {
namespace {

struct PreName {
  std::string_view name;
  PreTokenizer pre;
};
// The names llama.cpp maps to the three regex sets implemented here.
constexpr PreName kPreNames[] = {
    {"default", PreTokenizer::default_chain},
    {"llama3", PreTokenizer::llama3},
    {"llama-bpe", PreTokenizer::llama3},
    {"llama-v3", PreTokenizer::llama3},
    {"falcon3", PreTokenizer::llama3},
    {"gpt-2", PreTokenizer::gpt2},
    {"gpt2", PreTokenizer::gpt2},
    {"phi-2", PreTokenizer::gpt2},
};

// llama.cpp recognises these texts as end-of-turn / end-of-message tokens when the file names
// none. Its scan order is a hash map's; here the first listed text present wins.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",  // DeepSeek's <｜end▁of▁sentence｜>
    "<end_of_utterance>",
};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};

[[noreturn]] void bad_vocab(const std::string& what) {
  throw Error(ErrorCode::invalid_input, "invalid vocabulary: " + what);
}

}  // namespace

std::string_view pre_tokenizer_name(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::none: return "none";
    case PreTokenizer::default_chain: return "default";
    case PreTokenizer::llama3: return "llama3";
    case PreTokenizer::gpt2: return "gpt-2";
  }
  return "?";
}

std::optional<PreTokenizer> pre_tokenizer_from_name(std::string_view name) {
  for (const auto& p : kPreNames)
    if (p.name == name) return p.pre;
  return std::nullopt;
}

std::string supported_pre_tokenizers() { return "default, llama3 (llama-bpe, llama-v3, falcon3), gpt-2 (gpt2, phi-2)"; }

void finish_vocab(Vocab& v) {
  static log::Logger& lg = log::get("tokenizer");
  const size_t n = v.text.size();
  if (n == 0) bad_vocab("no tokens");
  // Ids are TokenId (int32_t) everywhere past the tokenizer.
  if (n > static_cast<size_t>(std::numeric_limits<TokenId>::max())) bad_vocab(fmt::format("{} tokens is too many", n));
  if (v.type.empty()) v.type.assign(n, TokenType::normal);  // llama.cpp's default without token_type
  if (v.score.empty()) v.score.assign(n, 0.0f);
  if (v.type.size() != n) bad_vocab(fmt::format("{} token types for {} tokens", v.type.size(), n));
  if (v.score.size() != n) bad_vocab(fmt::format("{} scores for {} tokens", v.score.size(), n));
  for (size_t i = 0; i < n; ++i) {
    // A NaN priority would break the strict ordering the SPM merge heap relies on.
    if (std::isnan(v.score[i])) bad_vocab(fmt::format("score of token {} is NaN", i));
    if (static_cast<uint8_t>(v.type[i]) > 6) bad_vocab(fmt::format("token {} has type {}", i, static_cast<int>(v.type[i])));
  }
  for (auto* id : {&v.bos, &v.eos, &v.unk, &v.eot, &v.eom, &v.pad, &v.sep})
    if (*id && (**id < 0 || static_cast<size_t>(**id) >= n)) bad_vocab(fmt::format("special token id {} is outside the {} tokens", **id, n));
  if (v.kind == VocabKind::bpe && v.pre == PreTokenizer::none) bad_vocab("byte-level BPE needs a pre-tokenizer");
  if (v.add_bos && !v.bos) bad_vocab("add_bos is set but there is no BOS token");
  if (v.add_eos && !v.eos) bad_vocab("add_eos is set but there is no EOS token");

  // One pass over the texts; for a text held by several ids the last wins, as in llama.cpp.
  auto find_text = [&](std::string_view t) -> std::optional<TokenId> {
    for (TokenId id = static_cast<TokenId>(n); id-- > 0;)
      if (v.text[id] == t) return id;
    return std::nullopt;
  };
  auto detect = [&](std::optional<TokenId>& slot, std::span<const std::string_view> texts, std::string_view what) {
    if (slot) return;
    for (std::string_view t : texts) {
      if (auto id = find_text(t)) {
        slot = id;
        log::debug(lg, "{} token detected by its text: {} '{}'", what, *id, t);
        return;
      }
    }
  };
  detect(v.eot, kEotTexts, "end-of-turn");
  detect(v.eom, kEomTexts, "end-of-message");
  for (auto id : {v.eot, v.eom}) {
    if (id && v.type[*id] != TokenType::control) {
      log::debug(lg, "token {} '{}' looks like a control token; treating it as one", *id, v.text[*id]);
      v.type[*id] = TokenType::control;
    }
  }
}

}  // namespace bitnet::tokenizer
