// `synthetic:SHAPE[:TYPE][:KEY=VALUE...]` models: deterministic seeded ternary models at real
// shapes (tiny, 700m = bitnet_b1_58-large, 2b4t = BitNet b1.58 2B-4T), written once as a GGUF
// file into a cache directory so every command, and other engines, use the very same bytes.
// Weights are ternary times a per-tensor scale that F16 holds exactly, identical for every TYPE
// (so i2_s and tq2_0 variants of a shape hold the same values); embeddings are small (std ~0.1).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/gguf/types.hpp"
#include "core/gguf/writer.hpp"
#include "core/model/synthetic_vocab.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::model {

inline constexpr std::string_view kSyntheticPrefix = "synthetic:";
// Bump whenever the generator's output changes: it is part of the cache file name.
inline constexpr uint32_t kSyntheticFormat = 1;
inline constexpr uint64_t kSyntheticSeed = 1;

struct SyntheticSpec {
  std::string shape;                           // tiny, 700m, 2b4t
  std::string arch;                            // general.architecture
  gguf::GgmlType type = gguf::GgmlType::I2_S;  // of the ternary weights
  SyntheticTokenizer tokenizer = SyntheticTokenizer::spm;
  uint64_t seed = kSyntheticSeed;
  uint32_t n_vocab = 0, n_ctx = 0, n_embd = 0, n_layer = 0, n_ff = 0, n_head = 0, n_head_kv = 0;
  float rope_freq_base = 10000.0f;
};

bool is_synthetic(std::string_view model);

// "synthetic:2b4t", "synthetic:tiny:tq1_0", "synthetic:2b4t:tq2_0:arch=bitnet:vocab=32002:seed=7".
// Options: arch=bitnet|bitnet-b1.58|bitnet-25, vocab=N, tok=spm|bpe, seed=N. The default TYPE
// is i2_s for the bitnet-b1.58 architectures and tq2_0 for `bitnet`. Throws Error(usage).
SyntheticSpec parse_synthetic(std::string_view model);

// Cache file name, unique per generated content: "2b4t-i2_s-bitnet-b1.58-v128256-bpe-s1-f1.gguf".
std::string synthetic_file_name(const SyntheticSpec& spec);

// Adds the model to w: metadata now, tensors as producers that generate them while w writes
// (bounded memory; chunks spread over pool when given; same bytes for any thread count).
void add_synthetic_model(const SyntheticSpec& spec, gguf::GgufWriter& w, ThreadPool* pool = nullptr);

// dir / synthetic_file_name(spec), generated and written atomically first when missing (a set
// write.cancel stops that with Error(interrupted), leaving nothing behind).
std::filesystem::path synthetic_model_path(const SyntheticSpec& spec, const std::filesystem::path& dir,
                                           ThreadPool* pool = nullptr, const gguf::WriteOptions& write = {});

}  // namespace bitnet::model
