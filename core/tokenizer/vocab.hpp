// The vocabulary as plain data: token texts, scores and types by id, BPE merges, special ids and
// the flags that steer tokenization. Built from arrays (see vocab_gguf.hpp for the GGUF side), so
// tests and synthetic models can make one without a file.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/token_id.hpp"

namespace bitnet::tokenizer {

using bitnet::TokenId;

// tokenizer.ggml.token_type values (SPEC.md 3.1).
enum class TokenType : uint8_t { undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

enum class VocabKind { spm, bpe };

// Which regex chain splits text before byte-level BPE (SPEC.md 3.3).
enum class PreTokenizer {
  none,           // SPM: no pre-tokenizer
  default_chain,  // llama.cpp's "default": what bitnet.cpp uses when a file has no 'pre' key
  llama3,         // LLaMA-3 / HF regex ("llama3", "llama-bpe", ...)
  gpt2,           // plain GPT-2 regex
};

std::string_view pre_tokenizer_name(PreTokenizer p);
// "llama-bpe" -> llama3 etc.; nullopt for names this engine does not implement.
std::optional<PreTokenizer> pre_tokenizer_from_name(std::string_view name);
// "default, llama3 (llama-bpe, llama-v3, falcon3), gpt-2 (phi-2)" for messages.
std::string supported_pre_tokenizers();

struct Vocab {
  VocabKind kind = VocabKind::spm;
  std::vector<std::string> text;   // by id; BPE texts are in the GPT-2 byte-to-unicode alphabet
  std::vector<float> score;        // by id; SPM merge priority (higher merges first)
  std::vector<TokenType> type;     // by id
  std::vector<std::string> merges; // BPE only: "left right", rank = index

  PreTokenizer pre = PreTokenizer::none;
  std::optional<TokenId> bos, eos, unk, eot, eom, pad, sep;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: prepend " " to the first text fragment; strip it on decode
  bool ignore_merges = false;     // BPE (llama3): a pre-token that is itself a token skips merging
  bool clean_spaces = false;      // BPE decode: llama.cpp's " ," -> "," clean-up

  uint32_t size() const { return static_cast<uint32_t>(text.size()); }
};

// Applies llama.cpp's load-time conventions that depend on token texts: finds the end-of-turn
// token ("<|eot_id|>", "<|im_end|>", ...) and end-of-message token when no id was given, and
// marks such tokens CONTROL, as llama.cpp does (it changes how they split and decode).
// Checks array sizes and special ids; throws bitnet::Error(invalid_input) on a malformed vocab.
void finish_vocab(Vocab& v);

}  // namespace bitnet::tokenizer
