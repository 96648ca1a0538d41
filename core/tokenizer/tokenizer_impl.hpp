// Internal: what a Tokenizer owns, shared by the encode (tokenizer.cpp) and decode (decode.cpp)
// halves. Not part of the public interface.
#pragma once

#include <memory>
#include <optional>

#include "core/tokenizer/bpe.hpp"
#include "core/tokenizer/pretokenize.hpp"
#include "core/tokenizer/special.hpp"
#include "core/tokenizer/spm.hpp"
#include "core/tokenizer/text_index.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace bitnet::tokenizer {

struct Tokenizer::Impl {
  explicit Impl(Vocab v);

  Vocab vocab;  // owns the texts every index below points into; Impl never moves
  TextIndex index;
  SpecialTokens special;
  std::optional<SpmEncoder> spm;
  std::optional<BpeEncoder> bpe;
  std::unique_ptr<PreTokenizerRegex> pre;

  std::string piece(TokenId id, bool special_text) const;
};

}  // namespace bitnet::tokenizer
