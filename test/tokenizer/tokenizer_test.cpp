// Tokenizer behaviour beyond the vector files: special tokens, BOS/EOS, EOG, offsets, pieces,
// decoding rules, vocabularies built from plain arrays, and load-time choices. Expected ids come
// from llama.cpp's vocab .out files or are derived by hand from the algorithms of SPEC.md 3.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/base/error.hpp"
#include "core/tokenizer/utf8.hpp"
#include "tokenizer/load.hpp"

namespace bitnet::tokenizer {
namespace {

using Ids = std::vector<TokenId>;

DecodeOptions unparse_special() {
  DecodeOptions o;
  o.unparse_special = true;
  return o;
}
DecodeOptions remove_special() {
  DecodeOptions o;
  o.remove_special = true;
  return o;
}

const Tokenizer& spm() { return test::fixture_tokenizer("vocab/ggml-vocab-llama-spm.gguf"); }
const Tokenizer& llama3() { return test::fixture_tokenizer("vocab/ggml-vocab-llama-bpe.gguf"); }

TEST(SpecialTokens, ParsedOnlyWhenAsked) {
  EXPECT_EQ(llama3().encode_ids("Hello world<|eot_id|>", false, true), (Ids{9906, 1917, 128009}));
  Ids plain = llama3().encode_ids("Hello world<|eot_id|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 128009u), 0);
  EXPECT_EQ(plain.front(), 9906u);
  // BOS from the vocabulary (llama3 pre-tokenization implies add_bos in llama.cpp).
  EXPECT_TRUE(llama3().vocab().add_bos);
  EXPECT_EQ(llama3().encode_ids("Hello world<|eot_id|>", true, true), (Ids{128000, 9906, 1917, 128009}));
}

TEST(SpecialTokens, SpmSpacePrefixFollowsSpecialTokens) {
  // The text after a special token gets SentencePiece's leading space, like the start of text.
  EXPECT_EQ(spm().encode_ids("<s>Hello", false, true), (Ids{1, 15043}));
  EXPECT_EQ(spm().encode_ids("<s>Hello", true, true), (Ids{1, 1, 15043}));
  Ids plain = spm().encode_ids("<s>Hello", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1u), 0);
  EXPECT_EQ(spm().encode_ids("", true, true), (Ids{1}));
  EXPECT_TRUE(spm().encode_ids("", false, true).empty());
}

TEST(SpecialTokens, EndOfGeneration) {
  const Tokenizer& t = llama3();
  EXPECT_EQ(t.vocab().eot, 128009u);  // found by its text, as llama.cpp does
  EXPECT_TRUE(t.is_eog(128001));
  EXPECT_TRUE(t.is_eog(128009));
  EXPECT_FALSE(t.is_eog(9906));
  EXPECT_FALSE(t.is_eog(128000));
  EXPECT_EQ(t.eog_ids(), (Ids{128001, 128009}));  // EOS, EOT (this LLaMA-3.0 vocab has no <|eom_id|>)
  EXPECT_TRUE(spm().is_eog(2));
  EXPECT_FALSE(spm().is_eog(1));
}

TEST(InvalidUtf8, BpeKeepsTheBytes) {
  // Deliberately lossless: llama.cpp would encode U+FFFD ("\xEF\xBF\xBD") for the 0xFF byte.
  EXPECT_EQ(llama3().encode_ids("a\xFF", false, false), (Ids{64, 187}));
  const std::string text = "x\xED\xA0\x80y\xC0\x80 \xFF\xFE";
  EXPECT_EQ(llama3().decode(llama3().encode_ids(text, true, false), {.clean_spaces = false}), text);
}

TEST(Offsets, SpansLocateInputBytes) {
  Encoding e = spm().encode("Hello world", {.add_special = true, .parse_special = true});
  EXPECT_EQ(e.ids, (Ids{1, 15043, 3186}));
  EXPECT_EQ(e.spans, (std::vector<TokenSpan>{{0, 0}, {0, 5}, {5, 11}}));
  Encoding b = llama3().encode("Hi<|eot_id|>!", {.add_special = false, .parse_special = true});
  EXPECT_EQ(b.spans, (std::vector<TokenSpan>{{0, 2}, {2, 12}, {12, 13}}));
}

TEST(Pieces, WhatEachTokenDecodesTo) {
  EXPECT_EQ(spm().token_piece(15043), " Hello");
  EXPECT_EQ(spm().token_piece(1), "<s>");
  EXPECT_EQ(spm().token_piece(1, false), "");
  EXPECT_EQ(spm().token_piece(13), "\n");  // <0x0A>
  EXPECT_EQ(llama3().token_piece(220), " ");
  EXPECT_EQ(llama3().token_piece(128009), "<|eot_id|>");
  EXPECT_EQ(llama3().token_piece(128009, false), "");
  EXPECT_THROW(spm().token_piece(32000), Error);
}

TEST(Decode, LeadingSpaceRule) {
  EXPECT_EQ(spm().decode(Ids{15043, 3186}), "Hello world");
  // A leading BOS takes the place of the stripped space, as in llama_detokenize.
  EXPECT_EQ(spm().decode(Ids{1, 15043, 3186}), " Hello world");
  EXPECT_EQ(spm().decode(Ids{1, 15043, 3186}, unparse_special()), "<s> Hello world");
  EXPECT_EQ(spm().decode(Ids{1, 15043, 3186, 2}, remove_special()), " Hello world");
  EXPECT_EQ(llama3().decode(Ids{128000, 9906, 1917}, remove_special()), "Hello world");
  EXPECT_THROW(llama3().decode(Ids{128256}), Error);
}

TEST(Decode, BpeCleanUpSpaces) {
  EXPECT_EQ(clean_up_spaces("Hello , world !"), "Hello, world!");
  EXPECT_EQ(clean_up_spaces("a ' b"), "a'b");
  EXPECT_EQ(clean_up_spaces("it 's we 're I 'm you 've"), "it's we're I'm you've");
  EXPECT_EQ(clean_up_spaces("don 't we 'll"), "don 't we 'll");
  // The skipped space of " ' " no longer counts as a space for the next character.
  EXPECT_EQ(clean_up_spaces("x ' ' y"), "x'' y");
  EXPECT_EQ(clean_up_spaces(""), "");
  Ids ids = llama3().encode_ids("Hello , world", false, false);
  EXPECT_EQ(llama3().decode(ids), "Hello, world");
  EXPECT_EQ(llama3().decode(ids, {.clean_spaces = false}), "Hello , world");
}

TEST(Decode, SpmByteFallbackRoundTrips) {
  const std::string text = "a\xFFxyz \xED\xA0\x80 \xF0\x9F\xA6\x99 \xC3(";
  Ids ids = spm().encode_ids(text, false, false);
  EXPECT_EQ(spm().decode(ids), text);
}

TEST(Decode, SpmLeadByteSwallowsFollowingSpace) {
  // llama.cpp sizes SPM symbols by the lead byte alone: 0xFF claims the next three bytes, which
  // here are the U+2581 standing for the space. They leave as byte tokens, so the space comes
  // back as U+2581. Reproduced as is.
  Ids ids = spm().encode_ids("\xFF a", false, false);
  EXPECT_EQ(ids, (Ids{29871, 258, 229, 153, 132, 29874}));
  EXPECT_EQ(spm().decode(ids), "\xFF\xE2\x96\x81" "a");
}

// A vocabulary needs no GGUF file: arrays are enough.
Vocab tiny_spm(float score_ab, float score_sa) {
  Vocab v;
  v.kind = VocabKind::spm;
  v.text = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab"};
  v.score = {0, 0, 0, -1, -2, -2, score_sa, score_ab};
  v.type = {TokenType::unknown, TokenType::control, TokenType::control, TokenType::normal,
            TokenType::normal,  TokenType::normal,  TokenType::normal,  TokenType::normal};
  v.bos = 1;
  v.eos = 2;
  v.unk = 0;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

TEST(VocabArrays, SpmMergesByScore) {
  Tokenizer ab_first(tiny_spm(-1.0f, -5.0f));
  EXPECT_EQ(ab_first.encode_ids("ab", true, false), (Ids{1, 3, 7}));  // <s> ▁ ab
  Tokenizer sa_first(tiny_spm(-5.0f, -1.0f));
  EXPECT_EQ(sa_first.encode_ids("ab", true, false), (Ids{1, 6, 5}));  // <s> ▁a b
  // No <0xXX> tokens: llama.cpp would abort; this engine falls back to <unk>.
  EXPECT_EQ(sa_first.encode_ids("c", false, false), (Ids{3, 0}));
  EXPECT_EQ(sa_first.decode(Ids{6, 5}), "ab");
}

Vocab tiny_bpe(std::vector<std::string> merges) {
  Vocab v;
  v.kind = VocabKind::bpe;
  v.pre = PreTokenizer::gpt2;
  for (int b = 0; b < 256; ++b) v.text.emplace_back(byte_to_unicode(static_cast<uint8_t>(b)));
  v.text.push_back("ab");                  // 256
  v.text.push_back("\xC4\xA0" "a");        // 257 "Ġa"
  v.text.push_back("<|end|>");             // 258
  v.type.assign(v.text.size(), TokenType::normal);
  v.type[258] = TokenType::control;
  v.merges = std::move(merges);
  v.eos = 258;
  v.clean_spaces = true;
  return v;
}

TEST(VocabArrays, BpeMergesByRank) {
  Tokenizer ab_first(tiny_bpe({"a b", "\xC4\xA0 a"}));
  EXPECT_EQ(ab_first.encode_ids(" ab", false, false), (Ids{' ', 256}));
  Tokenizer sa_first(tiny_bpe({"\xC4\xA0 a", "a b"}));
  EXPECT_EQ(sa_first.encode_ids(" ab", false, false), (Ids{257, 'b'}));
  // A merge whose result is not a token ends as the single-byte tokens of its text.
  Tokenizer odd(tiny_bpe({"x y"}));
  EXPECT_EQ(odd.encode_ids("xy", false, false), (Ids{'x', 'y'}));
  EXPECT_EQ(odd.decode(Ids{257, 'b'}), " ab");
  // "<|end|>" is recognised as end-of-turn by its text.
  EXPECT_EQ(odd.vocab().eot, 258u);
  EXPECT_TRUE(odd.is_eog(258));
}

TEST(VocabArrays, MalformedVocabulariesAreRejected) {
  Vocab nan = tiny_spm(-1, -1);
  nan.score[4] = std::nanf("");
  EXPECT_THROW(Tokenizer{std::move(nan)}, Error);
  Vocab bad_bos = tiny_spm(-1, -1);
  bad_bos.bos = 99;
  EXPECT_THROW(Tokenizer{std::move(bad_bos)}, Error);
  Vocab no_merges = tiny_bpe({});
  EXPECT_THROW(Tokenizer{std::move(no_merges)}, Error);
}

TEST(Loading, PreTokenizerChoice) {
  // No 'pre' key (like the official 2B-4T file): LLaMA-3 rules, as Hugging Face tokenizes.
  const Tokenizer& hf = test::fixture_tokenizer("models/bitnet-b158-tiny-bpe-f16.gguf");
  EXPECT_EQ(hf.vocab().pre, PreTokenizer::llama3);
  EXPECT_TRUE(hf.vocab().ignore_merges);
  const Tokenizer& compat = test::fixture_tokenizer("models/bitnet-b158-tiny-bpe-f16.gguf", "default");
  EXPECT_EQ(compat.vocab().pre, PreTokenizer::default_chain);
  EXPECT_FALSE(compat.vocab().ignore_merges);
  EXPECT_TRUE(compat.vocab().add_bos);  // from the file's add_bos_token key

  // The default chain splits "don't" at the apostrophe; LLaMA-3 keeps the contraction.
  const Tokenizer& dflt = test::fixture_tokenizer("vocab/ggml-vocab-llama-bpe.gguf", "default");
  EXPECT_NE(dflt.encode_ids("don't", false, false), llama3().encode_ids("don't", false, false));
  EXPECT_EQ(llama3().decode(dflt.encode_ids("don't", false, false)), "don't");

  try {
    test::fixture_tokenizer("vocab/ggml-vocab-llama-spm.gguf", "default");
    ADD_FAILURE() << "a pre-tokenizer for an SPM vocabulary must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::usage);
  }
  try {
    test::fixture_tokenizer("vocab/ggml-vocab-llama-bpe.gguf", "nope");
    ADD_FAILURE() << "an unknown pre-tokenizer must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::usage);
  }
}

TEST(Concurrency, OneTokenizerManyThreads) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91 1314151 ";
  const Tokenizer& tok = llama3();
  const Ids expected = tok.encode_ids(text, true, true);
  Ids a, b;
  std::thread ta([&] { a = tok.encode_ids(text, true, true); });
  std::thread tb([&] { b = tok.encode_ids(text, true, true); });
  ta.join();
  tb.join();
  EXPECT_EQ(a, expected);
  EXPECT_EQ(b, expected);
}

}  // namespace
}  // namespace bitnet::tokenizer
