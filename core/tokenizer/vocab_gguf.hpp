// GGUF metadata (tokenizer.* keys) -> Vocab, with llama.cpp's defaults. The only tokenizer file
// that knows about GGUF; it reads metadata only, never tensor data.
#pragma once

#include <optional>
#include <string>

#include "core/gguf/reader.hpp"
#include "core/tokenizer/vocab.hpp"

namespace bitnet::tokenizer {

struct VocabLoadOptions {
  // Use this pre-tokenizer instead of tokenizer.ggml.pre (e.g. "default" to tokenize like
  // bitnet.cpp does a file without the key). Byte-level BPE only.
  std::optional<std::string> pre;
};

// Throws bitnet::Error(invalid_input) for a missing or malformed vocabulary, and
// Error(usage) for an unknown or inapplicable pre-tokenizer override.
Vocab read_vocab(const gguf::GgufFile& f, const VocabLoadOptions& opt = {});

}  // namespace bitnet::tokenizer
