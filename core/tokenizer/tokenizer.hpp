// The tokenizer facade: text <-> token ids for SPM and byte-level BPE vocabularies, behaving like
// llama.cpp's llama_tokenize / llama_token_to_piece / llama_detokenize. Immutable after
// construction; one instance may serve many threads.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer/encoding.hpp"
#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

struct EncodeOptions {
  bool add_special = true;     // BOS / EOS as the vocabulary asks (add_bos, add_eos)
  bool parse_special = false;  // split control tokens written in the text ("<|eot_id|>" -> 128009)
};

struct DecodeOptions {
  bool remove_special = false;   // drop a leading BOS / trailing EOS the vocabulary would add
  bool unparse_special = false;  // render control and unknown tokens as their text
  // BPE clean-up of " ," " 's" and the like; nullopt = the vocabulary's setting (llama.cpp's).
  std::optional<bool> clean_spaces;
};

class Tokenizer {
 public:
  // Validates and completes the vocabulary (finish_vocab), builds the lookup and merge tables
  // and compiles the pre-tokenizer. Throws bitnet::Error(invalid_input) for a malformed vocab.
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  const Vocab& vocab() const;
  uint32_t n_tokens() const { return vocab().size(); }

  // Any byte string is accepted; invalid UTF-8 never throws. SPM sends such bytes to <0xXX>
  // tokens, as llama.cpp does. Byte-level BPE keeps them too, as pieces of their own, so BPE
  // is lossless; llama.cpp instead replaces each invalid byte with U+FFFD before BPE (and reads
  // 3-byte surrogates as characters). Valid UTF-8 is unaffected by this difference.
  Encoding encode(std::string_view text, const EncodeOptions& opt = {}) const;
  std::vector<TokenId> encode_ids(std::string_view text, bool add_special, bool parse_special) const;

  // Throws bitnet::Error(invalid_input) for an id outside the vocabulary.
  std::string decode(std::span<const TokenId> ids, const DecodeOptions& opt = {}) const;
  // What one token contributes to decoded text (llama_token_to_piece). With special false,
  // control and unknown tokens give "".
  std::string token_piece(TokenId id, bool special = true) const;

  // End of generation: EOS, EOT or EOM.
  bool is_eog(TokenId id) const;
  std::vector<TokenId> eog_ids() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// llama.cpp's BPE detokenizer clean-up, exposed for tests: removes the space before ? ! . ,
// around a lone ', and before 's 'm 're 've.
std::string clean_up_spaces(std::string text);

}  // namespace bitnet::tokenizer
