// Token text -> id lookup without allocating a key per query (string_view keys into the vocab).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

class TextIndex {
 public:
  // The texts must outlive the index and stay put. When two ids share a text the last one
  // wins, as in llama.cpp's token_to_id.
  explicit TextIndex(const std::vector<std::string>& texts) {
    map_.reserve(texts.size());
    for (size_t id = 0; id < texts.size(); ++id) map_[texts[id]] = static_cast<TokenId>(id);
  }
  std::optional<TokenId> find(std::string_view s) const {
    auto it = map_.find(s);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::unordered_map<std::string_view, TokenId> map_;
};

}  // namespace bitnet::tokenizer
