// Tokenizer construction and encoding: special-token partition, then SPM or pre-tokenizer + BPE
// per raw fragment, with BOS/EOS around (llama.cpp's llama_vocab::impl::tokenize).
#include "tokenizer.hpp"

#include <algorithm>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/tokenizer/tokenizer_impl.hpp"

namespace bitnet::tokenizer {

namespace {
Vocab finished(Vocab v) {
  finish_vocab(v);
  return v;
}
}  // namespace

Tokenizer::Impl::Impl(Vocab v) : vocab(finished(std::move(v))), index(vocab.text), special(vocab) {
  if (vocab.kind == VocabKind::spm) {
    spm.emplace(vocab, index);
  } else {
    bpe.emplace(vocab, index);
    pre = std::make_unique<PreTokenizerRegex>(vocab.pre);
  }
}

Tokenizer::Tokenizer(Vocab vocab) : impl_(std::make_unique<Impl>(std::move(vocab))) {
  static log::Logger& lg = log::get("tokenizer");
  const Vocab& v = impl_->vocab;
  log::debug(lg, "{} tokenizer: {} tokens{}, bos {}, eos {}, eot {}, add_bos {}, add_eos {}{}",
             v.kind == VocabKind::spm ? "SPM" : "byte-level BPE", v.size(),
             v.kind == VocabKind::bpe ? fmt::format(", pre '{}'", pre_tokenizer_name(v.pre)) : std::string(),
             v.bos ? fmt::to_string(*v.bos) : "none", v.eos ? fmt::to_string(*v.eos) : "none",
             v.eot ? fmt::to_string(*v.eot) : "none", v.add_bos, v.add_eos,
             impl_->pre && !impl_->pre->jit() ? " (regex without JIT)" : "");
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

const Vocab& Tokenizer::vocab() const { return impl_->vocab; }

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  static log::Logger& lg = log::get("tokenizer");
  // Only a warning, past BITNET_SLOW_MS: a chat or a crossval encodes many short texts.
  log::Phase phase(lg, "tokenization", text.size(), /*quiet=*/text.size() < 4096);
  const Impl& m = *impl_;
  const Vocab& v = m.vocab;
  Encoding out;
  out.ids.reserve(text.size() / 3 + 4);
  out.spans.reserve(text.size() / 3 + 4);

  const bool add_bos = opt.add_special && v.add_bos;
  if (add_bos) out.push(*v.bos, 0, 0);

  // SentencePiece puts a space in front of the text and after every special token, which is
  // what "is_prev_special" tracks (the start counts as after a special token).
  bool prev_special = true;
  for (const Fragment& f : m.special.partition(text, opt.parse_special)) {
    if (f.is_token) {
      out.push(f.token, f.begin, f.end);
      prev_special = true;
      continue;
    }
    if (m.spm) {
      m.spm->encode(text, f.begin, f.end, v.add_space_prefix && prev_special, out);
    } else {
      for (const Piece& p : m.pre->split(text.substr(f.begin, f.end - f.begin)))
        m.bpe->encode(text, f.begin + p.begin, f.begin + p.end, out);
    }
    prev_special = false;
  }

  if (add_bos && out.ids.size() >= 2 && out.ids[1] == *v.bos)
    log::warn(lg, "the text starts with a BOS token and another was added: the prompt now has two");
  if (opt.add_special && v.add_eos) {
    if (!out.ids.empty() && out.ids.back() == *v.eos)
      log::warn(lg, "the text ends with an EOS token and another was added: the prompt now has two");
    out.push(*v.eos, text.size(), text.size());
  }
  return out;
}

std::vector<TokenId> Tokenizer::encode_ids(std::string_view text, bool add_special, bool parse_special) const {
  return encode(text, {.add_special = add_special, .parse_special = parse_special}).ids;
}

bool Tokenizer::is_eog(TokenId id) const {
  const Vocab& v = impl_->vocab;
  return (v.eos && id == *v.eos) || (v.eot && id == *v.eot) || (v.eom && id == *v.eom);
}

std::vector<TokenId> Tokenizer::eog_ids() const {
  std::vector<TokenId> out;
  const Vocab& v = impl_->vocab;
  for (auto id : {v.eos, v.eot, v.eom})
    if (id && std::find(out.begin(), out.end(), *id) == out.end()) out.push_back(*id);
  return out;
}

}  // namespace bitnet::tokenizer
