// The KL-divergence base file of `bitnet perplexity --kl-divergence-base FILE`: one engine's
// logits over a text's chunks, saved so that another model or engine can be compared with them
// later on the very same tokens (docs/perplexity.md, "Base files"). A zstd stream holding one JSON
// header line (the tokens, shapes and the vocabulary's fingerprint) and then every scored row's
// logits as little-endian f32, chunk after chunk: exact, so divergences at float-rounding level
// stay measurable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/base/temp_files.hpp"
#include "core/base/token_id.hpp"
#include "core/tokenizer/vocab.hpp"

namespace bitnet::diag {

struct KldBaseHeader {
  std::string model;         // the file it was made from, for messages
  std::string engine;        // "bitnet 0.1.0, avx512", for messages
  std::string vocab_sha256;  // vocab_fingerprint of that model
  uint32_t n_vocab = 0;
  uint32_t n_ctx = 0;        // tokens per chunk
  uint32_t first = 0;        // rows per chunk: positions first .. n_ctx - 1
  std::vector<TokenId> tokens;  // n_chunks * n_ctx, each chunk as evaluated (BOS first if any)
  size_t n_chunks() const { return n_ctx ? tokens.size() / n_ctx : 0; }
};

// SHA-256 over every token's text and type, in id order: two models that tokenize alike share it.
std::string vocab_fingerprint(const tokenizer::Vocab& v);

// Written under a temporary name, renamed over the path by commit(); a run that fails or is
// interrupted leaves nothing (and no half file) behind.
class KldBaseWriter {
 public:
  KldBaseWriter(const std::filesystem::path& path, const KldBaseHeader& header);
  ~KldBaseWriter();
  KldBaseWriter(const KldBaseWriter&) = delete;
  KldBaseWriter& operator=(const KldBaseWriter&) = delete;
  // One chunk's rows: [n_ctx - first][n_vocab]. Throws Error(failure) when the disk refuses.
  void add_chunk(const std::vector<float>& rows);
  void commit();  // after the header's every chunk

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a base file chunk by chunk (never whole into memory). Throws Error(invalid_input) naming the
// file for anything that is not a complete base file: not zstd, no header, a header that does not
// add up, fewer rows than it promises, bytes after them.
class KldBaseReader {
 public:
  explicit KldBaseReader(const std::filesystem::path& path);
  ~KldBaseReader();
  KldBaseReader(const KldBaseReader&) = delete;
  KldBaseReader& operator=(const KldBaseReader&) = delete;
  const KldBaseHeader& header() const;
  std::vector<float> next_chunk();  // [n_ctx - first][n_vocab]
  void expect_end();                // after the last chunk: nothing may follow

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bitnet::diag
