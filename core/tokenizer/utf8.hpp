// The small UTF-8 facts the tokenizers need: llama.cpp's lead-byte length rule, code point
// encoding, and GPT-2's reversible byte <-> code point alphabet for byte-level BPE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bitnet::tokenizer {

// Length of the UTF-8 sequence a lead byte announces, judged by its top four bits only (as
// llama.cpp does): continuation bytes count as 1, 0xF8-0xFF as 4. Never 0.
inline size_t utf8_len(char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(lead) >> 4];
}

// Appends the UTF-8 encoding of a code point (<= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

// Decodes one well-formed UTF-8 sequence at s[i] (no overlongs, surrogates or values past
// 0x10FFFF); nullopt if the bytes there are not one. On success `len` is its byte length.
std::optional<uint32_t> decode_utf8(std::string_view s, size_t i, size_t& len);

// Copies s, replacing every byte that is not part of well-formed UTF-8 with U+FFFD, for output
// that must be valid text (JSON strings).
std::string to_valid_utf8(std::string_view s);

// GPT-2 byte-level alphabet (SPEC.md 3.3): printable bytes map to themselves, the other 68 to
// U+0100.. in byte order, so every byte string becomes printable text and back.
// The UTF-8 text of byte b's code point (1 or 2 bytes).
std::string_view byte_to_unicode(uint8_t b);
// The byte whose code point is cp, or -1 if cp is not in the alphabet.
int unicode_to_byte(uint32_t cp);

}  // namespace bitnet::tokenizer
