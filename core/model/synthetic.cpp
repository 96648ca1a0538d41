// Synthetic model generation. Every value comes from a counter-based generator (splitmix64 of
// seed, tensor name and element index), so any chunk can be made independently, in parallel,
// and the bytes never depend on the thread count or the chunking.
#include "core/model/synthetic.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/kernels.hpp"
#include "core/kernels/ternary.hpp"
#include "core/model/tensor_names.hpp"
#include "core/model/ternary.hpp"

namespace bitnet::model {
namespace {

using gguf::GgmlType;

struct Shape {
  std::string_view name;
  std::string_view arch;
  SyntheticTokenizer tokenizer;
  uint32_t n_vocab, n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv;
  float rope_freq_base;
};
constexpr Shape kShapes[] = {
    // Like the tiny fixtures (fixtures/README.md).
    {"tiny", "bitnet", SyntheticTokenizer::spm, 512, 256, 256, 4, 512, 4, 2, 500000.0f},
    // 1bitLLM/bitnet_b1_58-large (SPEC.md 2.7): LLaMA-2 vocabulary padded to 32002.
    {"700m", "bitnet", SyntheticTokenizer::spm, 32002, 2048, 1536, 24, 4096, 16, 16, 10000.0f},
    // microsoft/bitnet-b1.58-2B-4T (SPEC.md 2.2).
    {"2b4t", "bitnet-b1.58", SyntheticTokenizer::bpe, 128256, 4096, 2560, 30, 6912, 20, 5, 500000.0f},
};
constexpr std::string_view kArchs[] = {"bitnet", "bitnet-b1.58", "bitnet-25"};
constexpr uint32_t kMaxVocab = 1u << 20;
constexpr int64_t kUnit = 256;           // elements per generated unit (a TQ block, two I2_S groups)
constexpr int64_t kChunkUnits = 16384;   // units per chunk handed to the writer (4 Mi elements)

[[noreturn]] void usage(std::string_view model, const std::string& why) {
  throw make_error(ErrorCode::usage, "'{}': {} (form: synthetic:SHAPE[:TYPE][:arch=A][:vocab=N][:tok=spm|bpe][:seed=N]; "
                   "SHAPE tiny, 700m, 2b4t; TYPE i2_s, tq2_0, tq1_0, f16, f32)", model, why);
}

template <typename T>
T parse_number(std::string_view model, std::string_view key, std::string_view text, T max) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > max)
    usage(model, fmt::format("'{}={}' is not a number up to {}", key, text, max));
  return v;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

// ---- the generator ----

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
// Random word i of the stream `key` (splitmix64 at position i).
inline uint64_t word(uint64_t key, uint64_t i) { return mix64(key + (i + 1) * kGamma); }
inline double unit_double(uint64_t r) { return static_cast<double>(r >> 11) * 0x1p-53; }

uint64_t tensor_key(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return mix64(seed ^ mix64(h));
}

// Codes (value + 1: 0, 1, 2) of elements [first, first + n) (multiples of 8): one random byte
// b each, code (3b) >> 8, so -1/0/+1 come with probabilities 85/86/85 in 256. Computed for all
// eight bytes of a word at once in 16-bit lanes (3b < 2^10 never carries into the next lane).
void gen_codes(uint64_t key, int64_t first, int64_t n, uint8_t* c) {
  constexpr uint64_t kEven = 0x00ff00ff00ff00ffull, kTwoBits = 0x0003000300030003ull;
  for (int64_t w = first / 8; w < (first + n) / 8; ++w, c += 8) {
    const uint64_t r = word(key, static_cast<uint64_t>(w));
    const uint64_t even = (((r & kEven) * 3) >> 8) & kTwoBits;         // bytes 0, 2, 4, 6
    const uint64_t odd = ((((r >> 8) & kEven) * 3) >> 8) & kTwoBits;   // bytes 1, 3, 5, 7
    const uint64_t codes = even | odd << 8;
    std::memcpy(c, &codes, 8);  // little-endian: byte k of r -> element 8w + k
  }
}

// Embedding values: roughly normal with std 0.1, as the sum of four random bytes (Irwin-Hall,
// 1021 levels, +-3.45 std at most), centred and scaled. The F16 of each sum comes from a table,
// so a value costs a few integer operations: two values per random word.
struct EmbeddingTable {
  uint16_t h[1021];
  EmbeddingTable() {
    constexpr double kStd = 256.0 * 0.5773502691896258;  // std of the sum: 256 * sqrt(4/12)
    for (int s = 0; s < 1021; ++s) h[s] = kernels::f32_to_f16(static_cast<float>((s - 510) * (0.1 / kStd)));
  }
};

// Byte sums of the two 32-bit halves of r.
inline void byte_sums(uint64_t r, uint32_t& lo, uint32_t& hi) {
  const uint64_t pairs = (r & 0x00ff00ff00ff00ffull) + ((r >> 8) & 0x00ff00ff00ff00ffull);
  const uint64_t quads = (pairs & 0x0000ffff0000ffffull) + ((pairs >> 16) & 0x0000ffff0000ffffull);
  lo = static_cast<uint32_t>(quads & 0xffff);
  hi = static_cast<uint32_t>(quads >> 32);
}

// The tensor scale: about 1/sqrt(2/3 * n_in), so a row's output has unit size for unit inputs
// (two thirds of the weights are nonzero), varied per tensor, and exact in F16.
float weight_scale(uint64_t key, int64_t n_in) {
  const double base = 1.0 / std::sqrt(2.0 / 3.0 * static_cast<double>(n_in));
  const double jitter = 0.75 + 0.5 * unit_double(mix64(key ^ 0x5ca1eull));
  return kernels::f16_to_f32(kernels::f32_to_f16(static_cast<float>(base * jitter)));
}

// Bytes of `type` per unit of 256 elements.
int64_t unit_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::I2_S: return 64;
    case GgmlType::TQ2_0: return 66;
    case GgmlType::TQ1_0: return 54;
    case GgmlType::F16: return 512;
    case GgmlType::F32: return 1024;
    default: BITNET_CHECK(false); return 0;
  }
}

// Streams n_units units to out in chunks; fill(u0, u1, dst) writes units [u0, u1) at dst.
template <typename Fill>
void stream_units(gguf::ByteSink& out, int64_t n_units, int64_t bytes_per_unit, ThreadPool* pool, const Fill& fill) {
  std::vector<std::byte> buf(static_cast<size_t>(std::min(n_units, kChunkUnits) * bytes_per_unit));
  for (int64_t c0 = 0; c0 < n_units; c0 += kChunkUnits) {
    const int64_t c1 = std::min(n_units, c0 + kChunkUnits);
    auto* base = reinterpret_cast<uint8_t*>(buf.data());
    auto part = [&](int64_t a, int64_t b) { fill(c0 + a, c0 + b, base + a * bytes_per_unit); };
    if (pool) pool->parallel_for(c1 - c0, part, 64);
    else part(0, c1 - c0);
    out.write({buf.data(), static_cast<size_t>((c1 - c0) * bytes_per_unit)});
  }
}

struct TernaryTensor {
  uint64_t key;
  int64_t n;
  float scale;
  GgmlType type;
};

void produce_ternary(const TernaryTensor& tt, gguf::ByteSink& out, ThreadPool* pool) {
  const uint16_t s16 = kernels::f32_to_f16(tt.scale);
  stream_units(out, tt.n / kUnit, unit_bytes(tt.type), pool, [&](int64_t u0, int64_t u1, uint8_t* dst) {
    const int64_t n = (u1 - u0) * kUnit;
    const auto codes = std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(n));
    uint8_t* c = codes.get();
    gen_codes(tt.key, u0 * kUnit, n, c);
    switch (tt.type) {
      case GgmlType::I2_S:
        kernels::pack_i2s_codes(c, n, dst);
        return;
      case GgmlType::TQ2_0:
      case GgmlType::TQ1_0: {
        std::vector<uint16_t> d(static_cast<size_t>(u1 - u0));
        for (size_t b = 0; b < d.size(); ++b) {
          const uint8_t* blk = c + b * kUnit;
          d[b] = std::any_of(blk, blk + kUnit, [](uint8_t v) { return v != 1; }) ? s16 : uint16_t{0};
        }
        if (tt.type == GgmlType::TQ2_0) kernels::pack_tq2_0_codes(c, u1 - u0, d.data(), dst);
        else kernels::pack_tq1_0_codes(c, u1 - u0, d.data(), dst);
        return;
      }
      case GgmlType::F16: {
        const uint16_t h[3] = {static_cast<uint16_t>(s16 ^ 0x8000u), 0, s16};
        for (int64_t i = 0; i < n; ++i) std::memcpy(dst + 2 * i, &h[c[i]], 2);
        return;
      }
      case GgmlType::F32: {
        const float v[3] = {-tt.scale, 0.0f, tt.scale};
        for (int64_t i = 0; i < n; ++i) std::memcpy(dst + 4 * i, &v[c[i]], 4);
        return;
      }
      default:
        BITNET_CHECK(false);
    }
  });
  if (tt.type == GgmlType::I2_S) {
    uint8_t tail[kernels::kI2sTailBytes];
    kernels::pack_i2s_tail(tt.scale, tail);
    out.write(std::as_bytes(std::span<const uint8_t>(tail)));
  }
}

void produce_embedding(uint64_t key, int64_t n, gguf::ByteSink& out, ThreadPool* pool) {
  static const EmbeddingTable table;
  stream_units(out, n / kUnit, unit_bytes(GgmlType::F16), pool, [&](int64_t u0, int64_t u1, uint8_t* dst) {
    for (int64_t w = u0 * kUnit / 2; w < u1 * kUnit / 2; ++w, dst += 4) {
      uint32_t lo, hi;
      byte_sums(word(key, static_cast<uint64_t>(w)), lo, hi);
      std::memcpy(dst, &table.h[lo], 2);
      std::memcpy(dst + 2, &table.h[hi], 2);
    }
  });
}

// Norm weights: F32 in [0.9, 1.1].
std::vector<float> norm_values(uint64_t key, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = static_cast<float>(0.9 + 0.2 * unit_double(word(key, static_cast<uint64_t>(i))));
  return v;
}

std::string canonical(const SyntheticSpec& s) {
  return fmt::format("synthetic:{}:{}:arch={}:vocab={}:tok={}:seed={}", s.shape, lower(gguf::type_name(s.type)), s.arch,
                     s.n_vocab, s.tokenizer == SyntheticTokenizer::spm ? "spm" : "bpe", s.seed);
}

}  // namespace

bool is_synthetic(std::string_view model) { return model.starts_with(kSyntheticPrefix); }

SyntheticSpec parse_synthetic(std::string_view model) {
  BITNET_CHECK(is_synthetic(model));
  std::vector<std::string_view> parts;
  for (std::string_view rest = model.substr(kSyntheticPrefix.size());;) {
    const size_t colon = rest.find(':');
    parts.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  const Shape* shape = nullptr;
  for (const Shape& s : kShapes)
    if (s.name == parts[0]) shape = &s;
  if (!shape) usage(model, fmt::format("unknown shape '{}'", parts[0]));
  SyntheticSpec spec;
  spec.shape = std::string(shape->name);
  spec.arch = std::string(shape->arch);
  spec.tokenizer = shape->tokenizer;
  spec.n_vocab = shape->n_vocab;
  spec.n_ctx = shape->n_ctx;
  spec.n_embd = shape->n_embd;
  spec.n_layer = shape->n_layer;
  spec.n_ff = shape->n_ff;
  spec.n_head = shape->n_head;
  spec.n_head_kv = shape->n_head_kv;
  spec.rope_freq_base = shape->rope_freq_base;
  bool have_type = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string_view p = parts[i];
    const size_t eq = p.find('=');
    if (eq == std::string_view::npos) {
      auto type = gguf::type_from_name(p);
      if (have_type) usage(model, fmt::format("a second TYPE '{}'", p));
      if (!type || !(*type == GgmlType::I2_S || *type == GgmlType::TQ2_0 || *type == GgmlType::TQ1_0 ||
                     *type == GgmlType::F16 || *type == GgmlType::F32))
        usage(model, fmt::format("unknown TYPE '{}'", p));
      spec.type = *type;
      have_type = true;
      continue;
    }
    const std::string_view key = p.substr(0, eq), value = p.substr(eq + 1);
    if (key == "arch") {
      if (std::find(std::begin(kArchs), std::end(kArchs), value) == std::end(kArchs))
        usage(model, fmt::format("unknown arch '{}' (bitnet, bitnet-b1.58, bitnet-25)", value));
      spec.arch = std::string(value);
    } else if (key == "vocab") {
      spec.n_vocab = parse_number<uint32_t>(model, key, value, kMaxVocab);
    } else if (key == "tok") {
      if (value != "spm" && value != "bpe") usage(model, fmt::format("unknown tok '{}' (spm, bpe)", value));
      spec.tokenizer = value == "spm" ? SyntheticTokenizer::spm : SyntheticTokenizer::bpe;
    } else if (key == "seed") {
      spec.seed = parse_number<uint64_t>(model, key, value, UINT64_MAX);
    } else {
      usage(model, fmt::format("unknown option '{}'", key));
    }
  }
  if (!have_type) spec.type = spec.arch == "bitnet" ? GgmlType::TQ2_0 : GgmlType::I2_S;
  if (spec.n_vocab < min_synthetic_vocab(spec.tokenizer))
    usage(model, fmt::format("vocab={} is too small for a {} vocabulary (at least {})", spec.n_vocab,
                             spec.tokenizer == SyntheticTokenizer::spm ? "spm" : "bpe", min_synthetic_vocab(spec.tokenizer)));
  return spec;
}

std::string synthetic_file_name(const SyntheticSpec& s) {
  return fmt::format("{}-{}-{}-v{}-{}-s{}-f{}.gguf", s.shape, lower(gguf::type_name(s.type)), s.arch, s.n_vocab,
                     s.tokenizer == SyntheticTokenizer::spm ? "spm" : "bpe", s.seed, kSyntheticFormat);
}

void add_synthetic_model(const SyntheticSpec& s, gguf::GgufWriter& w, ThreadPool* pool) {
  const std::string a = s.arch + ".";
  w.set_string("general.architecture", s.arch);
  w.set_string("general.name", canonical(s));
  w.set_u32(a + "vocab_size", s.n_vocab);
  w.set_u32(a + "context_length", s.n_ctx);
  w.set_u32(a + "embedding_length", s.n_embd);
  w.set_u32(a + "block_count", s.n_layer);
  w.set_u32(a + "feed_forward_length", s.n_ff);
  w.set_u32(a + "attention.head_count", s.n_head);
  w.set_u32(a + "attention.head_count_kv", s.n_head_kv);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32(a + "rope.freq_base", s.rope_freq_base);
  w.set_u32(a + "rope.dimension_count", s.n_embd / s.n_head);
  w.set_u32("general.file_type", file_type_of(s.type));
  w.set_u32("general.quantization_version", 2);
  add_synthetic_vocab(s.tokenizer, s.n_vocab, w);

  const int64_t embd = s.n_embd, ff = s.n_ff, head_dim = s.n_embd / s.n_head;
  const int64_t kv = head_dim * s.n_head_kv;
  const uint64_t seed = s.seed;
  auto norm = [&](const std::string& name, int64_t n) {
    auto v = std::make_shared<std::vector<float>>(norm_values(tensor_key(seed, name), n));
    w.add_tensor(name, GgmlType::F32, {n}, [v](gguf::ByteSink& out) { out.write(std::as_bytes(std::span<const float>(*v))); });
  };
  auto ternary = [&](const std::string& name, int64_t n_in, int64_t n_out) {
    const uint64_t key = tensor_key(seed, name);
    TernaryTensor tt{key, n_in * n_out, weight_scale(key, n_in), s.type};
    w.add_tensor(name, s.type, {n_in, n_out}, [tt, pool](gguf::ByteSink& out) { produce_ternary(tt, out, pool); });
  };
  {
    const std::string name = tensor_name(Tensor::token_embd);
    const uint64_t key = tensor_key(seed, name);
    const int64_t n = embd * s.n_vocab;
    w.add_tensor(name, GgmlType::F16, {embd, static_cast<int64_t>(s.n_vocab)},
                 [key, n, pool](gguf::ByteSink& out) { produce_embedding(key, n, out, pool); });
  }
  for (uint32_t l = 0; l < s.n_layer; ++l) {
    auto n = [l](Tensor t) { return tensor_name(t, l); };
    norm(n(Tensor::attn_norm), embd);
    ternary(n(Tensor::attn_q), embd, embd);
    ternary(n(Tensor::attn_k), embd, kv);
    ternary(n(Tensor::attn_v), embd, kv);
    ternary(n(Tensor::attn_output), embd, embd);
    norm(n(Tensor::attn_sub_norm), embd);
    norm(n(Tensor::ffn_norm), embd);
    ternary(n(Tensor::ffn_gate), embd, ff);
    ternary(n(Tensor::ffn_up), embd, ff);
    ternary(n(Tensor::ffn_down), ff, embd);
    norm(n(Tensor::ffn_sub_norm), ff);
  }
  norm(tensor_name(Tensor::output_norm), embd);
}

std::filesystem::path synthetic_model_path(const SyntheticSpec& spec, const std::filesystem::path& dir, ThreadPool* pool,
                                           const gguf::WriteOptions& write) {
  static log::Logger& lg = log::get("model");
  std::filesystem::path path = dir / synthetic_file_name(spec);
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return path;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw make_error(ErrorCode::failure, "cannot create the synthetic model cache {}: {}", dir.string(), ec.message());
  log::info(lg, "generating {} into {}", canonical(spec), path.string());
  const auto t0 = std::chrono::steady_clock::now();
  gguf::GgufWriter w;
  add_synthetic_model(spec, w, pool);
  w.write(path, write);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  log::info(lg, "generated {} in {:.2f} s", path.filename().string(), dt.count());
  return path;
}

}  // namespace bitnet::model
