// Vocab from GGUF keys (SPEC.md 3.1). Validation of types and counts is model::read_tokenizer_info's;
// this file adds llama.cpp's defaults and the choice of pre-tokenizer.
#include "vocab_gguf.hpp"

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/model/metadata.hpp"

namespace bitnet::tokenizer {
namespace {

// llama.cpp keeps its default when an id key is absent, "none" (-1) or out of range.
std::optional<TokenId> or_default(std::optional<uint32_t> from_file, std::optional<TokenId> fallback, uint32_t n) {
  if (from_file) return *from_file;
  if (fallback && *fallback >= 0 && static_cast<uint32_t>(*fallback) < n) return fallback;
  return std::nullopt;
}

PreTokenizer choose_pre(const gguf::GgufFile& f, const model::TokenizerInfo& info, const VocabLoadOptions& opt) {
  static log::Logger& lg = log::get("tokenizer");
  if (opt.pre) {
    auto p = pre_tokenizer_from_name(*opt.pre);
    if (!p) throw make_error(ErrorCode::usage, "unknown pre-tokenizer '{}' (supported: {})", *opt.pre, supported_pre_tokenizers());
    log::debug(lg, "pre-tokenizer '{}' chosen by the caller (file says '{}')", pre_tokenizer_name(*p), info.pre);
    return *p;
  }
  if (info.pre.empty()) {
    // The official BitNet b1.58 2B-4T file has no 'pre' key. Its vocabulary is LLaMA-3's, so the
    // LLaMA-3 rules tokenize it as Hugging Face does; bitnet.cpp/llama.cpp fall back to 'default'.
    log::debug(lg, "{}: no 'tokenizer.ggml.pre' key: using the LLaMA-3 pre-tokenizer (as Hugging Face does); "
                   "'--pre default' tokenizes like bitnet.cpp", f.path().string());
    return PreTokenizer::llama3;
  }
  auto p = pre_tokenizer_from_name(info.pre);
  if (!p)
    throw make_error(ErrorCode::invalid_input, "{}'tokenizer.ggml.pre' is '{}', which this engine does not implement (supported: {})",
                     f.where(), info.pre, supported_pre_tokenizers());
  return *p;
}

}  // namespace

Vocab read_vocab(const gguf::GgufFile& f, const VocabLoadOptions& opt) {
  const model::TokenizerInfo info = model::read_tokenizer_info(f);
  Vocab v;
  if (info.model == "llama") {
    v.kind = VocabKind::spm;
  } else if (info.model == "gpt2") {
    v.kind = VocabKind::bpe;
  } else {
    throw make_error(ErrorCode::invalid_input, "{}tokenizer '{}' is not supported (supported: llama (SentencePiece), gpt2 (byte-level BPE))",
                     f.where(), info.model);
  }
  const uint32_t n = info.n_tokens;

  const gguf::ArrayView* tokens = f.get_array("tokenizer.ggml.tokens");
  v.text.assign(tokens->strings.begin(), tokens->strings.end());
  if (const auto* scores = f.get_array("tokenizer.ggml.scores")) {
    v.score.resize(n);
    for (uint32_t i = 0; i < n; ++i) v.score[i] = scores->element<float>(i);
  }
  if (const auto* types = f.get_array("tokenizer.ggml.token_type")) {
    v.type.resize(n);
    for (uint32_t i = 0; i < n; ++i) v.type[i] = static_cast<TokenType>(types->element<int32_t>(i));
  }

  const bool spm = v.kind == VocabKind::spm;
  if (spm) {
    if (opt.pre)
      throw make_error(ErrorCode::usage, "a pre-tokenizer applies only to byte-level BPE ('gpt2') vocabularies; {} uses "
                       "SentencePiece ('llama')", f.path().string());
    v.pre = PreTokenizer::none;
  } else {
    const gguf::ArrayView* merges = f.get_array("tokenizer.ggml.merges");
    v.merges.assign(merges->strings.begin(), merges->strings.end());
    v.pre = choose_pre(f, info, opt);
    v.ignore_merges = v.pre == PreTokenizer::llama3;
    v.clean_spaces = true;
  }

  // llama.cpp's defaults per tokenizer model, overridden by the file's keys.
  v.bos = or_default(info.bos, spm ? 1u : 11u, n);
  v.eos = or_default(info.eos, spm ? 2u : 11u, n);
  v.unk = or_default(info.unk, spm ? std::optional<TokenId>(0u) : std::nullopt, n);
  v.eot = info.eot;
  v.pad = info.pad;
  v.sep = info.sep;
  if (auto eom = f.get_uint("tokenizer.ggml.eom_token_id"); eom && *eom < n) v.eom = static_cast<TokenId>(*eom);
  // LLaMA-3 pre-tokenization implies add_bos in llama.cpp unless the file says otherwise.
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(spm || v.pre == PreTokenizer::llama3);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(spm);
  return v;
}

}  // namespace bitnet::tokenizer
