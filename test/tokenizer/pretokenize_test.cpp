// Pre-tokenizer splits and the GPT-2 byte alphabet, against hand-derived expectations from the
// regexes of SPEC.md 3.3 as llama.cpp evaluates them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/tokenizer/pretokenize.hpp"
#include "core/tokenizer/utf8.hpp"

namespace bitnet::tokenizer {
namespace {

std::vector<std::string> split(PreTokenizer pre, const std::string& text) {
  PreTokenizerRegex re(pre);
  std::vector<std::string> out;
  for (const Piece& p : re.split(text)) out.push_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizer, Llama3Words) {
  EXPECT_EQ(split(PreTokenizer::llama3, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "   Hello"), (V{"  ", " Hello"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "Hello, world!"), (V{"Hello", ",", " world", "!"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "' era"), (V{"'", " era"}));
}

TEST(PreTokenizer, Llama3DigitsInThrees) {
  EXPECT_EQ(split(PreTokenizer::llama3, "3333333"), (V{"333", "333", "3"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "w048 7tuijk"), (V{"w", "048", " ", "7", "tuijk"}));
}

TEST(PreTokenizer, Llama3ContractionsAnyCase) {
  EXPECT_EQ(split(PreTokenizer::llama3, "DON'T we'LL"), (V{"DON", "'T", " we", "'LL"}));
  // U+017F (long s) folds to 's' under Unicode caseless matching, but llama.cpp compares
  // against s/S only: the apostrophe then prefixes the letter run.
  EXPECT_EQ(split(PreTokenizer::llama3, "x'\xC5\xBF"), (V{"x", "'\xC5\xBF"}));
}

TEST(PreTokenizer, Llama3Whitespace) {
  // \s*[\r\n]+ ends at the last newline; \s+(?!\S) leaves the last space for the next word.
  EXPECT_EQ(split(PreTokenizer::llama3, "a\n\n b"), (V{"a", "\n\n", " b"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "x  \ty"), (V{"x", "  ", "\ty"}));
  EXPECT_EQ(split(PreTokenizer::llama3, "x   "), (V{"x", "   "}));
  EXPECT_EQ(split(PreTokenizer::llama3, "    Hello\n    Hello"), (V{"   ", " Hello", "\n", "   ", " Hello"}));
  // Punctuation takes trailing newlines along.
  EXPECT_EQ(split(PreTokenizer::llama3, "!!\n\nx"), (V{"!!\n\n", "x"}));
}

TEST(PreTokenizer, WhitespaceIsUnicodeWhiteSpace) {
  // U+3000 is White_Space: it separates like a space.
  EXPECT_EQ(split(PreTokenizer::llama3, "a\xE3\x80\x80\xE3\x80\x80" "b"), (V{"a", "\xE3\x80\x80", "\xE3\x80\x80" "b"}));
  // U+180E is not (PCRE2's \s would say it is): llama.cpp treats it as a symbol, so it joins the
  // punctuation run around it.
  EXPECT_EQ(split(PreTokenizer::llama3, "!\xE1\xA0\x8E!"), (V{"!\xE1\xA0\x8E!"}));
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split(PreTokenizer::gpt2, "Hello  world"), (V{"Hello", " ", " world"}));
  EXPECT_EQ(split(PreTokenizer::gpt2, "it's 12345"), (V{"it", "'s", " 12345"}));
  // A lone whitespace before a word matches no alternative and stays a piece of its own.
  EXPECT_EQ(split(PreTokenizer::gpt2, "a\tb"), (V{"a", "\t", "b"}));
  // Case-sensitive contractions.
  EXPECT_EQ(split(PreTokenizer::gpt2, "IT'S"), (V{"IT", "'", "S"}));
}

TEST(PreTokenizer, DefaultChain) {
  // Punctuation split first, then GPT-2, then digit runs, then ASCII digit triples.
  EXPECT_EQ(split(PreTokenizer::default_chain, "Hello, world! 12345"), (V{"Hello", ",", " world", "!", " ", "123", "45"}));
  EXPECT_EQ(split(PreTokenizer::default_chain, "don't"), (V{"don", "'", "t"}));
}

TEST(PreTokenizer, InvalidUtf8FormsItsOwnPieces) {
  EXPECT_EQ(split(PreTokenizer::llama3, "ab\xFF\xFE" "cd"), (V{"ab", "\xFF\xFE", "cd"}));
  // A UTF-16 surrogate encoded in 3 bytes is not UTF-8.
  EXPECT_EQ(split(PreTokenizer::llama3, "a\xED\xA0\x80" "b"), (V{"a", "\xED\xA0\x80", "b"}));
  EXPECT_EQ(split(PreTokenizer::gpt2, "\xC3"), (V{"\xC3"}));
  EXPECT_TRUE(split(PreTokenizer::default_chain, "").empty());
}

TEST(PreTokenizer, LongRunsSplitWithoutError) {
  std::string spaces(200000, ' ');
  EXPECT_EQ(split(PreTokenizer::llama3, spaces + "x"), (V{std::string(199999, ' '), " x"}));
  std::string digits(300000, '7');
  auto pieces = split(PreTokenizer::llama3, digits);
  ASSERT_EQ(pieces.size(), 100000u);
  EXPECT_EQ(pieces.front(), "777");
  EXPECT_EQ(split(PreTokenizer::default_chain, digits).size(), 100000u);
}

TEST(ByteAlphabet, GptTwoMapping) {
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(byte_to_unicode('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(byte_to_unicode('a'), "a");
  EXPECT_EQ(byte_to_unicode(0xAD), "\xC5\x83");  // the 68th remapped byte: U+0143
  for (int b = 0; b < 256; ++b) {
    size_t len = 0;
    std::string_view s = byte_to_unicode(static_cast<uint8_t>(b));
    auto cp = decode_utf8(s, 0, len);
    ASSERT_TRUE(cp.has_value());
    EXPECT_EQ(len, s.size());
    EXPECT_EQ(unicode_to_byte(*cp), b);
  }
  EXPECT_EQ(unicode_to_byte(0x20), -1);
  EXPECT_EQ(unicode_to_byte(0x144), -1);
}

TEST(Utf8, DecodeRejectsMalformed) {
  size_t len = 0;
  EXPECT_FALSE(decode_utf8("\xC0\x80", 0, len));          // overlong
  EXPECT_FALSE(decode_utf8("\xED\xA0\x80", 0, len));      // surrogate
  EXPECT_FALSE(decode_utf8("\xF4\x90\x80\x80", 0, len));  // past U+10FFFF
  EXPECT_FALSE(decode_utf8("\xE2\x96", 0, len));          // truncated
  EXPECT_EQ(decode_utf8("\xE2\x96\x81", 0, len), 0x2581u);
  EXPECT_EQ(to_valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
}

}  // namespace
}  // namespace bitnet::tokenizer
