// Property tests on random byte strings (valid and invalid UTF-8, 3-byte surrogates, overlongs,
// long whitespace and digit runs, special-token texts): encoding never fails, ids are in range,
// spans tile the input, and decoding restores the input where the tokenizer is lossless
// (byte-level BPE always; SPM up to its U+2581 = space convention).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include <fmt/format.h>

#include "core/tokenizer/utf8.hpp"
#include "tokenizer/load.hpp"

namespace bitnet::tokenizer {
namespace {

// Pieces chosen to hit every branch of the pre-tokenizers and the byte fallback.
const std::vector<std::string> kAtoms = {
    "a", "Z", "hello", " world", "'s", "'LL", "'t", "don't", " ", "  ", "\t", "\n", "\r\n", "\n\n",
    "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xE1\xA0\x8E", "\xC2\x85",  // NBSP, ideographic space, LS, U+180E, NEL
    "0", "42", "1234567", "\xD9\xA3", "\xE2\x85\xA7",  // Arabic-Indic 3, Roman numeral VIII
    ",", ".", "!?", "$+<=>^~|", "(", "\xE3\x80\x82", "\xE2\x80\x94",
    "\xC3\xA9", "\xD0\xBD\xD0\xB5", "\xE6\x88\x91\xE6\x83\xB3", "\xE1\x9E\x80\xE1\x9E\xB6",  // é, не, 我想, Khmer
    "\xF0\x9F\xA6\x99", "\xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F",            // llama, ZWJ sequence
    "\xE2\x96\x81",  // U+2581, SentencePiece's space
    "<s>", "</s>", "<unk>", "<|eot_id|>", "<|begin_of_text|>", "<|endoftext|>", "<0x41>",
    "\xED\xA0\x80", "\xED\xBF\xBF", "\xC0\x80", "\xE0\x80\x80", "\xF4\x90\x80\x80",  // surrogates, overlongs, > U+10FFFF
    "\x80", "\xBF", "\xC3", "\xE2\x96", "\xF0\x9F\xA6", "\xF8", "\xFE", "\xFF", std::string(1, '\0'), "\x7F", "\x1B",
};

std::string random_text(std::mt19937& rng, size_t max_atoms) {
  std::uniform_int_distribution<size_t> n_atoms(0, max_atoms), atom(0, kAtoms.size() - 1), byte(0, 255), coin(0, 9);
  std::string s;
  size_t n = n_atoms(rng);
  for (size_t i = 0; i < n; ++i) {
    if (coin(rng) == 0) s += static_cast<char>(byte(rng));  // any byte at all
    else s += kAtoms[atom(rng)];
  }
  return s;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

std::string hex(std::string_view s) {
  std::string o;
  for (unsigned char c : s) o += fmt::format("{:02x}", c);
  return o;
}

void check_one(const Tokenizer& tok, const std::string& text, const std::string& name) {
  SCOPED_TRACE(name + " input hex " + hex(text.substr(0, 200)));
  // Raw text (parse_special off): the full set of invariants.
  Encoding e = tok.encode(text, {.add_special = false, .parse_special = false});
  ASSERT_EQ(e.ids.size(), e.spans.size());
  size_t at = 0;
  for (size_t i = 0; i < e.ids.size(); ++i) {
    ASSERT_LT(e.ids[i], tok.n_tokens());
    ASSERT_EQ(e.spans[i].begin, at) << "spans must tile the input (token " << i << ")";
    ASSERT_LE(e.spans[i].begin, e.spans[i].end);
    at = e.spans[i].end;
  }
  ASSERT_EQ(at, text.size());
  if (tok.vocab().kind == VocabKind::bpe) {
    EXPECT_EQ(tok.decode(e.ids, {.clean_spaces = false}), text);
    std::string pieces;
    for (TokenId id : e.ids) pieces += tok.token_piece(id);
    EXPECT_EQ(pieces, text);
  } else {
    // SPM writes spaces as U+2581 and decodes U+2581 as space; byte-fallback bytes come back
    // raw. Equal once both sides spell U+2581 as a space.
    EXPECT_EQ(replace_all(tok.decode(e.ids), "\xE2\x96\x81", " "), replace_all(text, "\xE2\x96\x81", " "));
  }
  // With special tokens parsed and BOS/EOS: only range and no-throw.
  for (TokenId id : tok.encode_ids(text, true, true)) ASSERT_LT(id, tok.n_tokens());
}

struct PropertyCase {
  std::string model;
  std::string pre;
};

// Keeps ctest names readable (gtest would otherwise print the struct's bytes).
void PrintTo(const PropertyCase& c, std::ostream* os) { *os << c.model << (c.pre.empty() ? "" : " pre=" + c.pre); }

class TokenizerProperties : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(TokenizerProperties, RandomStrings) {
  const auto& p = GetParam();
  const Tokenizer& tok = test::fixture_tokenizer(p.model, p.pre);
  std::mt19937 rng(20240611);
  for (int i = 0; i < 400; ++i) {
    check_one(tok, random_text(rng, 40), p.model);
    if (HasFatalFailure()) return;
  }
}

TEST_P(TokenizerProperties, LongRuns) {
  const auto& p = GetParam();
  const Tokenizer& tok = test::fixture_tokenizer(p.model, p.pre);
  std::mt19937 rng(7);
  const std::vector<std::string> runs = {
      std::string(20000, ' '),
      std::string(20000, ' ') + "x",
      std::string(5000, '\n') + std::string(5000, ' ') + "\t",
      std::string(30000, '9'),
      replace_all(std::string(4000, '#'), "#", "\xE3\x80\x80"),
      replace_all(std::string(4000, '#'), "#", "\xD9\xA3"),
      replace_all(std::string(4000, '#'), "#", "\xED\xA0\x80"),
      std::string(10000, '\xFF'),
      replace_all(std::string(3000, '#'), "#", "a "),
      random_text(rng, 3000),
  };
  for (const auto& r : runs) {
    check_one(tok, r, p.model);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerProperties,
                         ::testing::Values(PropertyCase{"vocab/ggml-vocab-llama-spm.gguf", ""},
                                           PropertyCase{"vocab/ggml-vocab-llama-bpe.gguf", ""},
                                           PropertyCase{"vocab/ggml-vocab-llama-bpe.gguf", "default"},
                                           PropertyCase{"vocab/ggml-vocab-gpt-2.gguf", ""},
                                           PropertyCase{"models/stories260K.gguf", ""},
                                           PropertyCase{"models/bitnet-b158-tiny-bpe-f16.gguf", ""},
                                           PropertyCase{"models/bitnet-b158-tiny-bpe-f16.gguf", "default"}),
                         [](const auto& param_info) { return "case" + std::to_string(param_info.index); });

}  // namespace
}  // namespace bitnet::tokenizer
