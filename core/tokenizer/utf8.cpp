// UTF-8 helpers and the GPT-2 byte alphabet tables.
#include "utf8.hpp"

#include <array>

namespace bitnet::tokenizer {
namespace {

bool printable_byte(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

constexpr uint32_t kAlphabetEnd = 256 + 68;  // code points used: below U+0144

struct ByteAlphabet {
  std::array<uint32_t, 256> cp{};
  std::array<std::string, 256> utf8;
  std::array<int16_t, kAlphabetEnd> byte{};
  ByteAlphabet() {
    byte.fill(-1);
    uint32_t next = 256;  // the non-printable bytes take U+0100.. in increasing byte order
    for (int b = 0; b < 256; ++b) {
      cp[b] = printable_byte(b) ? static_cast<uint32_t>(b) : next++;
      append_utf8(utf8[b], cp[b]);
      byte[cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  auto put = [&](uint32_t v) { out.push_back(static_cast<char>(v)); };
  if (cp < 0x80) {
    put(cp);
  } else if (cp < 0x800) {
    put(0xC0 | (cp >> 6));
    put(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    put(0xE0 | (cp >> 12));
    put(0x80 | ((cp >> 6) & 0x3F));
    put(0x80 | (cp & 0x3F));
  } else {
    put(0xF0 | (cp >> 18));
    put(0x80 | ((cp >> 12) & 0x3F));
    put(0x80 | ((cp >> 6) & 0x3F));
    put(0x80 | (cp & 0x3F));
  }
}

std::optional<uint32_t> decode_utf8(std::string_view s, size_t i, size_t& len) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  uint32_t cp;
  size_t n;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return std::nullopt;
  }
  for (size_t k = 1; k < n; ++k) {
    if (!cont(i + k)) return std::nullopt;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  len = n;
  return cp;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    if (decode_utf8(s, i, len)) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string_view byte_to_unicode(uint8_t b) { return alphabet().utf8[b]; }

int unicode_to_byte(uint32_t cp) { return cp < kAlphabetEnd ? alphabet().byte[cp] : -1; }

}  // namespace bitnet::tokenizer
