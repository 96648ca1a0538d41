// Token text -> id lookup: an open-addressing table of ids over the vocabulary's own strings, so
// building it for 128k tokens allocates one array and a query allocates nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

class TextIndex {
 public:
  // The texts must outlive the index and stay put. When two ids share a text the last one
  // wins, as in llama.cpp's token_to_id.
  explicit TextIndex(const std::vector<std::string>& texts) : texts_(texts) {
    size_t cap = 16;
    while (cap < texts.size() * 2) cap <<= 1;
    slots_.resize(cap);
    mask_ = cap - 1;
    for (size_t id = 0; id < texts.size(); ++id) {
      const size_t h = hash(texts[id]);
      size_t i = h & mask_;
      while (slots_[i].id1 != 0 && !(slots_[i].tag == tag(h) && texts_[slots_[i].id1 - 1] == texts[id])) i = (i + 1) & mask_;
      slots_[i] = {tag(h), static_cast<uint32_t>(id + 1)};
    }
  }

  std::optional<TokenId> find(std::string_view s) const {
    const size_t h = hash(s);
    for (size_t i = h & mask_; slots_[i].id1 != 0; i = (i + 1) & mask_)
      if (slots_[i].tag == tag(h) && texts_[slots_[i].id1 - 1] == s) return slots_[i].id1 - 1;
    return std::nullopt;
  }

 private:
  struct Slot {
    uint32_t tag = 0;  // high hash bits: most mismatches are rejected without comparing text
    uint32_t id1 = 0;  // id + 1; 0 marks an empty slot
  };
  static size_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }
  static uint32_t tag(size_t h) { return static_cast<uint32_t>(static_cast<uint64_t>(h) >> 32); }

  const std::vector<std::string>& texts_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace bitnet::tokenizer
