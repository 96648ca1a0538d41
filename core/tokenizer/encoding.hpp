// The result of encoding: token ids and, for each, the bytes of the input it came from.
#pragma once

#include <cstddef>
#include <vector>

#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

// Input bytes [begin, end) a token stands for. Tokens with no input of their own (an added BOS,
// SPM's added leading space) have begin == end.
struct TokenSpan {
  size_t begin = 0;
  size_t end = 0;
  bool operator==(const TokenSpan&) const = default;
};

struct Encoding {
  std::vector<TokenId> ids;
  std::vector<TokenSpan> spans;  // one per id

  void push(TokenId id, size_t begin, size_t end) {
    ids.push_back(id);
    spans.push_back({begin, end});
  }
};

}  // namespace bitnet::tokenizer
