// PCRE2 evaluation of llama.cpp's pre-tokenizer regexes (SPEC.md 3.3).
//
// llama.cpp runs the LLaMA-3 and GPT-2 patterns through hand-written matchers and the others
// through std::regex; both behave like an ordinary leftmost-first regex engine on these patterns,
// so PCRE2 reproduces them, with two adjustments written into the patterns below:
//  - `\s` is spelled out as the Unicode White_Space set llama.cpp uses (PCRE2's \s would also
//    take U+180E);
//  - the LLaMA-3 contractions are case-expanded ('[sS]) rather than (?i:...), because caseless
//    Unicode matching would also accept U+017F and the like, which llama.cpp does not.
#include "pretokenize.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "core/base/error.hpp"
#include "core/base/log.hpp"

namespace bitnet::tokenizer {
namespace {

// White_Space, the set llama.cpp's unicode tables flag as whitespace. For use inside [...].
#define BITNET_WS R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})"

// The HF original is (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
constexpr const char* kLlama3 =
    R"('[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+)"
    R"(|\p{N}{1,3})"
    R"(| ?[^)" BITNET_WS R"(\p{L}\p{N}]+[\r\n]*)"
    R"(|[)" BITNET_WS R"(]*[\r\n]+)"
    R"(|[)" BITNET_WS R"(]+(?![^)" BITNET_WS R"(]))"
    R"(|[)" BITNET_WS R"(]+)";

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+)"
    R"(| ?[^)" BITNET_WS R"(\p{L}\p{N}]+)"
    R"(|[)" BITNET_WS R"(]+(?![^)" BITNET_WS R"(]))";

constexpr const char* kPunct = R"([\p{P}\$\+<=>\^~\|]+)";
constexpr const char* kDigits = R"(\p{N}+)";
constexpr const char* kThreeAsciiDigits = R"([0-9][0-9][0-9])";

#undef BITNET_WS

std::vector<const char*> patterns(PreTokenizer pre) {
  switch (pre) {
    case PreTokenizer::llama3: return {kLlama3};
    case PreTokenizer::gpt2: return {kGpt2};
    case PreTokenizer::default_chain: return {kPunct, kGpt2, kDigits, kThreeAsciiDigits};
    case PreTokenizer::none: break;
  }
  BITNET_CHECK(false && "no regex for this pre-tokenizer");
  return {};
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof buf);
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

}  // namespace

struct PreTokenizerRegex::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizerRegex::PreTokenizerRegex(PreTokenizer pre) {
  static log::Logger& lg = log::get("tokenizer");
  for (const char* pattern : patterns(pre)) {
    auto c = std::make_unique<Compiled>();
    int err = 0;
    PCRE2_SIZE err_at = 0;
    // MATCH_INVALID_UTF: invalid UTF-8 in the subject is allowed and simply never matches.
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_at, nullptr);
    if (!c->code)
      throw make_error(ErrorCode::failure, "pre-tokenizer regex failed to compile at offset {}: {}", err_at,
                       pcre2_message(err));
    if (int rc = pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE); rc != 0) {
      jit_ = false;
      log::debug(lg, "PCRE2 JIT unavailable ({}); using the interpreter", pcre2_message(rc));
    }
    chain_.push_back(std::move(c));
  }
}

PreTokenizerRegex::~PreTokenizerRegex() = default;

namespace {

// Owns the per-call PCRE2 state, so one compiled chain can serve many threads.
class Matcher {
 public:
  explicit Matcher(const pcre2_code* code) : code_(code), md_(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (!md_) throw std::bad_alloc();
  }
  ~Matcher() {
    pcre2_match_data_free(md_);
    pcre2_match_context_free(ctx_);
    pcre2_jit_stack_free(stack_);
  }
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  // Next match in subject at or after `from`: true and [begin, end), or false when none.
  bool next(std::string_view subject, size_t from, size_t& begin, size_t& end) {
    for (;;) {
      int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), from, PCRE2_NOTEMPTY,
                           md_, ctx_);
      if (rc == PCRE2_ERROR_NOMATCH) return false;
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && grow_stack()) continue;
      if (rc < 0)
        throw make_error(ErrorCode::failure, "pre-tokenizer regex failed on a {}-byte piece: {}", subject.size(),
                         pcre2_message(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md_);
      begin = ov[0];
      end = ov[1];
      return true;
    }
  }

 private:
  // The default 32 KiB JIT stack is plenty for these patterns; grow it rather than fail if a
  // pathological input ever needs more.
  bool grow_stack() {
    size_t next = stack_size_ ? stack_size_ * 8 : size_t{1} << 20;
    if (next > (size_t{1} << 28)) return false;
    pcre2_jit_stack_free(stack_);
    stack_ = pcre2_jit_stack_create(32 * 1024, next, nullptr);
    if (!stack_) return false;
    if (!ctx_) ctx_ = pcre2_match_context_create(nullptr);
    if (!ctx_) return false;
    pcre2_jit_stack_assign(ctx_, nullptr, stack_);
    stack_size_ = next;
    return true;
  }

  const pcre2_code* code_;
  pcre2_match_data* md_;
  pcre2_match_context* ctx_ = nullptr;
  pcre2_jit_stack* stack_ = nullptr;
  size_t stack_size_ = 0;
};

}  // namespace

std::vector<Piece> PreTokenizerRegex::split(std::string_view text) const {
  std::vector<Piece> pieces;
  if (!text.empty()) pieces.push_back({0, text.size()});
  std::vector<Piece> next;
  for (const auto& c : chain_) {
    Matcher m(c->code);
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) {
      // Each piece is matched as a subject of its own, so lookaheads stop at its end, as with
      // llama.cpp's per-piece regex iterator.
      std::string_view sub = text.substr(p.begin, p.end - p.begin);
      size_t pos = 0, b = 0, e = 0;
      while (pos < sub.size() && m.next(sub, pos, b, e)) {
        if (b > pos) next.push_back({p.begin + pos, p.begin + b});
        next.push_back({p.begin + b, p.begin + e});
        pos = e;
      }
      if (pos < sub.size()) next.push_back({p.begin + pos, p.end});
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace bitnet::tokenizer
