// Test helper: tokenizers built from fixture GGUF files, loaded once per test process.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/gguf/reader.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "support/fixtures.hpp"

namespace bitnet::test {

// fixture_tokenizer("vocab/ggml-vocab-llama-bpe.gguf"); pre overrides tokenizer.ggml.pre.
inline const tokenizer::Tokenizer& fixture_tokenizer(const std::string& rel, const std::string& pre = "") {
  static std::map<std::string, std::unique_ptr<tokenizer::Tokenizer>> cache;
  auto& slot = cache[rel + "|" + pre];
  if (!slot) {
    gguf::GgufFile f = gguf::GgufFile::open(fixture_file(rel));
    tokenizer::VocabLoadOptions opt;
    if (!pre.empty()) opt.pre = pre;
    slot = std::make_unique<tokenizer::Tokenizer>(tokenizer::read_vocab(f, opt));
  }
  return *slot;
}

}  // namespace bitnet::test
