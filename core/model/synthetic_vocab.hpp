// Made-up but valid vocabularies for synthetic models, written as tokenizer.* GGUF keys:
// SentencePiece (`llama`) like LLaMA-2's (control tokens, 256 <0xXX> byte tokens, pieces with
// falling scores) and byte-level BPE (`gpt2`) like LLaMA-3's (256 byte tokens, merges building
// the rest, special tokens at the end). Deterministic; no randomness at all.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/gguf/writer.hpp"

namespace bitnet::model {

enum class SyntheticTokenizer { spm, bpe };

// Smallest vocabulary each kind can be built with (its fixed tokens plus one piece).
uint32_t min_synthetic_vocab(SyntheticTokenizer kind);

// Adds tokenizer.ggml.* keys for a vocabulary of exactly n_tokens tokens
// (n_tokens >= min_synthetic_vocab(kind)).
void add_synthetic_vocab(SyntheticTokenizer kind, uint32_t n_tokens, gguf::GgufWriter& w);

}  // namespace bitnet::model
