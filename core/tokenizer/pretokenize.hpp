// Byte-level BPE pre-tokenizer: splits raw text into pieces with the regex chain llama.cpp uses
// for a vocabulary's 'pre' type, evaluated by PCRE2 (UTF + UCP, JIT when available).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

// A piece of the text: bytes [begin, end).
struct Piece {
  size_t begin = 0;
  size_t end = 0;
};

class PreTokenizerRegex {
 public:
  // Compiles the chain for `pre` (not PreTokenizer::none). Throws bitnet::Error on a PCRE2 failure.
  explicit PreTokenizerRegex(PreTokenizer pre);
  ~PreTokenizerRegex();
  PreTokenizerRegex(const PreTokenizerRegex&) = delete;
  PreTokenizerRegex& operator=(const PreTokenizerRegex&) = delete;

  // Splits text into consecutive pieces covering all of it. Each regex of the chain runs inside
  // the pieces of the previous one; matches and the stretches between them both become pieces.
  // Bytes that are not valid UTF-8 never match, so they end up in the in-between stretches.
  // Safe to call from several threads at once.
  std::vector<Piece> split(std::string_view text) const;

  bool jit() const { return jit_; }

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> chain_;
  bool jit_ = true;
};

}  // namespace bitnet::tokenizer
