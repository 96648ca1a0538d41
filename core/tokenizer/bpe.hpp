// Byte-level BPE on one pre-token (SPEC.md 3.3): bytes become GPT-2 alphabet symbols, then the
// adjacent pair with the lowest merge rank merges, ties to the leftmost, until none applies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer/encoding.hpp"
#include "core/tokenizer/text_index.hpp"
#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

class BpeEncoder {
 public:
  // Builds the merge table from v.merges. Throws bitnet::Error(invalid_input) if it has none.
  BpeEncoder(const Vocab& v, const TextIndex& index);
  ~BpeEncoder();

  // Encodes input bytes [begin, end) of text as one pre-token, appending to out.
  void encode(std::string_view text, size_t begin, size_t end, Encoding& out) const;

  size_t n_merges() const;

 private:
  // Strings that take part in merges are interned as small integers: a token's text is its id,
  // any other merge side gets an id past the vocabulary. Merging then compares integers, not
  // strings. A merge result is interned when it happens, not when the table is built.
  uint32_t intern_result(std::string_view s) const;

  struct MergeTable;
  const Vocab& vocab_;
  const TextIndex& index_;
  std::unique_ptr<MergeTable> merges_;
  std::unordered_map<std::string, uint32_t> extra_ids_;  // non-token merge sides
  std::array<uint32_t, 256> byte_symbol_{};              // interned id of each byte's alphabet character
};

}  // namespace bitnet::tokenizer
