// Token ids -> text: per-token pieces (U+2581 -> space, <0xXX> -> byte, GPT-2 alphabet -> bytes),
// SentencePiece's leading-space removal and llama.cpp's BPE space clean-up.
#include <charconv>

#include "core/base/error.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/tokenizer_impl.hpp"
#include "core/tokenizer/utf8.hpp"

namespace bitnet::tokenizer {
namespace {

std::string unescape_spm(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// "<0xE2>" -> 0xE2; nullopt for a malformed byte token.
std::optional<char> spm_byte(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return std::nullopt;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data() + 3, s.data() + 5, v, 16);
  if (ec != std::errc() || p != s.data() + 5) return std::nullopt;
  return static_cast<char>(v);
}

// GPT-2 alphabet text -> the bytes it stands for. A character outside the alphabet (only in odd
// vocabularies) is kept as its own UTF-8; llama.cpp writes an "[UNK_BYTE_0x..]" marker instead.
std::string unmap_bytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    auto cp = decode_utf8(s, i, len);
    int b = cp ? unicode_to_byte(*cp) : -1;
    if (b >= 0) out += static_cast<char>(b);
    else out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace

std::string Tokenizer::Impl::piece(TokenId id, bool special_text) const {
  const TokenType t = vocab.type[id];
  const std::string& text = vocab.text[id];
  if (t == TokenType::control || t == TokenType::unknown) return special_text ? text : std::string();
  if (t == TokenType::user_defined) return text;
  if (vocab.kind == VocabKind::spm) {
    if (t == TokenType::normal) return unescape_spm(text);
    if (t == TokenType::byte) {
      auto b = spm_byte(text);
      return b ? std::string(1, *b) : std::string();
    }
    return {};  // undefined, unused
  }
  if (t == TokenType::normal) return unmap_bytes(text);
  return {};  // byte, undefined, unused: llama.cpp renders nothing for these in BPE vocabularies
}

std::string Tokenizer::token_piece(TokenId id, bool special) const {
  if (id < 0 || static_cast<uint32_t>(id) >= n_tokens()) throw make_error(ErrorCode::invalid_input, "token id {} is outside the vocabulary of {} tokens", id, n_tokens());
  return impl_->piece(id, special);
}

std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions& opt) const {
  const Vocab& v = impl_->vocab;
  for (TokenId id : ids)
    if (id < 0 || static_cast<uint32_t>(id) >= v.size()) throw make_error(ErrorCode::invalid_input, "token id {} is outside the vocabulary of {} tokens", id, v.size());

  // SentencePiece's added space is taken off the first piece. llama.cpp keeps it when a leading
  // BOS is removed (remove_special); that is reproduced, odd as it is.
  bool remove_space = v.add_space_prefix;
  if (opt.remove_special && v.add_bos && !ids.empty() && ids.front() == *v.bos) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (opt.remove_special && v.add_eos && !ids.empty() && ids.back() == *v.eos) ids = ids.first(ids.size() - 1);

  std::string out;
  for (TokenId id : ids) {
    std::string p = impl_->piece(id, opt.unparse_special);
    size_t skip = remove_space && !p.empty() && p[0] == ' ' ? 1 : 0;
    out.append(p, skip);
    remove_space = false;  // only ever the very first token, even if it rendered nothing
  }
  if (opt.clean_spaces.value_or(v.clean_spaces)) out = clean_up_spaces(std::move(out));
  return out;
}

std::string clean_up_spaces(std::string t) {
  // Three in-place passes over the bytes, as llama.cpp's detokenizer does them. They read
  // t[i - 1] after earlier writes, so the in-place form matters (see pass 2).
  if (t.empty()) return t;
  size_t n = t.size(), total = 1;
  // 1: " ?" " !" " ." " ," lose the space.
  for (size_t i = 1; i < n; ++i) {
    const char x = t[i];
    if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    t[total++] = x;
  }
  // 2: " ' " becomes "'". The skipped space is overwritten with NUL, so the next character no
  // longer sees a space before it.
  n = total;
  total = 1;
  for (size_t i = 1; i < n; ++i) {
    const char x = t[i];
    if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
      --total;
      t[++i] = '\0';
    }
    t[total++] = x;
  }
  // 3: " 's" " 'm" " 're" " 've" lose the space (" 't" " 'd" " 'll" keep it).
  n = total;
  total = 1;
  for (size_t i = 1; i < n; ++i) {
    const char x = t[i];
    if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
      const char x1 = t[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < n) {
        const char x2 = t[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    t[total++] = x;
  }
  t.resize(total);
  return t;
}

}  // namespace bitnet::tokenizer
