// SentencePiece-style tokenizer as llama.cpp runs it (SPEC.md 3.2): score-driven merging of
// adjacent pieces, spaces as U+2581, byte fallback to <0xXX> tokens.
#pragma once

#include <array>
#include <optional>
#include <string_view>

#include "core/tokenizer/encoding.hpp"
#include "core/tokenizer/text_index.hpp"
#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

class SpmEncoder {
 public:
  SpmEncoder(const Vocab& v, const TextIndex& index);

  // Encodes one raw-text fragment, input bytes [begin, end) of text, appending to out. With
  // prefix_space a space is put in front first (it gets an empty span).
  void encode(std::string_view text, size_t begin, size_t end, bool prefix_space, Encoding& out) const;

 private:
  const Vocab& vocab_;
  const TextIndex& index_;
  std::array<std::optional<TokenId>, 256> byte_token_;  // byte fallback, resolved once
};

}  // namespace bitnet::tokenizer
