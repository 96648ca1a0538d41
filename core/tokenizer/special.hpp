// Splits special tokens (control, user-defined, unknown) out of raw text before the SPM or BPE
// algorithm sees it, as llama.cpp's tokenizer_st_partition does (SPEC.md 3.5).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

// Either raw text [begin, end) of the input or one special token found there.
struct Fragment {
  bool is_token = false;
  TokenId token = 0;
  size_t begin = 0;
  size_t end = 0;
};

class SpecialTokens {
 public:
  explicit SpecialTokens(const Vocab& v);

  // Longest special texts are taken first; within a stretch of raw text the leftmost occurrence
  // wins. With parse_special off, only user-defined tokens are split out (HF does the same).
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

 private:
  const Vocab& vocab_;
  std::vector<TokenId> ids_;  // by text length, longest first; ties by id
};

}  // namespace bitnet::tokenizer
