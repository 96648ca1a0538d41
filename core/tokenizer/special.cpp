// Special-token partition of raw text.
#include "special.hpp"

#include <algorithm>
#include <bitset>

namespace bitnet::tokenizer {

SpecialTokens::SpecialTokens(const Vocab& v) : vocab_(v) {
  for (TokenId id = 0; static_cast<uint32_t>(id) < v.size(); ++id) {
    TokenType t = v.type[id];
    bool special = t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown;
    if (special && !v.text[id].empty()) ids_.push_back(id);  // an empty text would match everywhere
  }
  // llama.cpp sorts by length only (unstable); ties by id make the order reproducible.
  std::stable_sort(ids_.begin(), ids_.end(),
                   [&](TokenId a, TokenId b) { return v.text[a].size() > v.text[b].size(); });
}

std::vector<Fragment> SpecialTokens::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({false, 0, 0, text.size()});

  // Most special tokens cannot occur at all; skip them without scanning.
  std::bitset<256> present;
  for (char c : text) present.set(static_cast<uint8_t>(c));

  std::vector<Fragment> next;
  for (TokenId id : ids_) {
    TokenType t = vocab_.type[id];
    if (!parse_special && (t == TokenType::control || t == TokenType::unknown)) continue;
    const std::string& needle = vocab_.text[id];
    if (!present.test(static_cast<uint8_t>(needle[0]))) continue;

    next.clear();
    bool split = false;
    for (const Fragment& f : frags) {
      if (f.is_token) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.begin;
      std::string_view raw = text.substr(0, f.end);
      for (size_t hit; (hit = raw.find(needle, pos)) != std::string_view::npos;) {
        if (hit > pos) next.push_back({false, 0, pos, hit});
        next.push_back({true, id, hit, hit + needle.size()});
        pos = hit + needle.size();
        split = true;
      }
      if (pos < f.end) next.push_back({false, 0, pos, f.end});
    }
    if (split) frags.swap(next);
  }
  return frags;
}

}  // namespace bitnet::tokenizer
