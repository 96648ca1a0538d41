// Synthetic vocabularies. Pieces are enumerated breadth-first over a small alphabet ("a", "b",
// ..., "ab", ..., "▁ab"...), so every piece longer than one character is a shorter piece plus
// one letter: SPM can reach it by merging, and BPE gets exactly that merge.
#include "core/model/synthetic_vocab.hpp"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/base/error.hpp"

namespace bitnet::model {
namespace {

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;
constexpr uint32_t kSpmFixed = 3 + 256;  // <unk> <s> </s> and the byte tokens

// Appends pieces until `out` holds `want` strings: level 1 is every start symbol and letter,
// level k+1 extends each level-k piece by one letter. `space` starts words only.
void enumerate_pieces(std::string_view space, size_t want, std::vector<std::string>& out,
                      std::vector<std::string>* merges) {
  std::vector<std::string> level;
  level.emplace_back(space);
  for (char c = 'a'; c <= 'z'; ++c) level.emplace_back(1, c);
  for (const auto& p : level) {
    if (out.size() == want) return;
    out.push_back(p);
  }
  while (out.size() < want) {
    std::vector<std::string> next;
    for (const auto& p : level) {
      for (char c = 'a'; c <= 'z'; ++c) {
        if (out.size() == want) return;
        std::string piece = p + c;
        if (merges) merges->push_back(p + " " + std::string(1, c));
        out.push_back(piece);
        next.push_back(std::move(piece));
      }
    }
    level = std::move(next);
  }
}

void add_spm(uint32_t n, gguf::GgufWriter& w) {
  std::vector<std::string> text = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> type = {kUnknown, kControl, kControl};
  for (int b = 0; b < 256; ++b) {
    text.push_back(fmt::format("<0x{:02X}>", b));
    type.push_back(kByte);
  }
  // "▁" (U+2581) is SentencePiece's space.
  enumerate_pieces("\xe2\x96\x81", n, text, nullptr);
  std::vector<float> score(n, 0.0f);
  type.resize(n, kNormal);
  for (uint32_t i = kSpmFixed; i < n; ++i) score[i] = -static_cast<float>(i - kSpmFixed);  // shorter first
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_strings("tokenizer.ggml.tokens", text);
  w.set_array("tokenizer.ggml.scores", gguf::ValueType::f32, score);
  w.set_array("tokenizer.ggml.token_type", gguf::ValueType::i32, type);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

// GPT-2's byte -> code point table, in the order LLaMA-3's vocabulary lists the byte tokens:
// printable bytes keep their code point, the other 68 map to 256, 257, ... in byte order.
std::vector<std::string> byte_tokens() {
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return s;
  };
  auto printable = [](uint32_t b) { return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae; };
  std::vector<std::string> out;
  for (uint32_t b = 0; b < 256; ++b)
    if (printable(b)) out.push_back(utf8(b));
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b)
    if (!printable(b)) out.push_back(utf8(next++));
  return out;
}

// LLaMA-3's special tokens: 256 of them for a full-size vocabulary, else only BOS and EOS.
std::vector<std::string> special_tokens(uint32_t n) {
  if (n < 4096) return {"<|begin_of_text|>", "<|end_of_text|>"};
  std::vector<std::string> out;
  int reserved = 0;
  for (int i = 0; i < 256; ++i) {
    switch (i) {
      case 0: out.emplace_back("<|begin_of_text|>"); break;
      case 1: out.emplace_back("<|end_of_text|>"); break;
      case 6: out.emplace_back("<|start_header_id|>"); break;
      case 7: out.emplace_back("<|end_header_id|>"); break;
      case 9: out.emplace_back("<|eot_id|>"); break;
      default: out.push_back(fmt::format("<|reserved_special_token_{}|>", reserved++)); break;
    }
  }
  return out;
}

void add_bpe(uint32_t n, gguf::GgufWriter& w) {
  const std::vector<std::string> special = special_tokens(n);
  std::vector<std::string> text = byte_tokens();
  std::vector<std::string> merges;
  // The pieces start after the byte tokens, whose single letters and "Ġ" (space) already exist:
  // enumerate from the start and drop level 1.
  std::vector<std::string> pieces;
  const size_t n_pieces = n - special.size() - text.size();
  enumerate_pieces("\xc4\xa0", n_pieces + 27, pieces, &merges);
  text.insert(text.end(), pieces.begin() + 27, pieces.end());
  std::vector<int32_t> type(text.size(), kNormal);
  const auto bos = static_cast<uint32_t>(text.size());
  text.insert(text.end(), special.begin(), special.end());
  type.resize(text.size(), kControl);
  BITNET_CHECK(text.size() == n && merges.size() == n_pieces);
  w.set_string("tokenizer.ggml.model", "gpt2");  // no 'pre' key, like the official 2B-4T file
  w.set_strings("tokenizer.ggml.tokens", text);
  w.set_array("tokenizer.ggml.token_type", gguf::ValueType::i32, type);
  w.set_strings("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.bos_token_id", bos);
  w.set_u32("tokenizer.ggml.eos_token_id", bos + 1);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
}

}  // namespace

uint32_t min_synthetic_vocab(SyntheticTokenizer kind) { return kind == SyntheticTokenizer::spm ? kSpmFixed + 1 : 256 + 2 + 1; }

void add_synthetic_vocab(SyntheticTokenizer kind, uint32_t n_tokens, gguf::GgufWriter& w) {
  BITNET_CHECK(n_tokens >= min_synthetic_vocab(kind));
  if (kind == SyntheticTokenizer::spm) add_spm(n_tokens, w);
  else add_bpe(n_tokens, w);
}

}  // namespace bitnet::model
