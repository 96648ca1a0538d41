// A Session is the mutable half of inference: the KV cache, activation buffers and position,
// over a shared const Model. Buffers are sized once from the config at construction.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"

namespace bitnet::infer {

enum class KvType { f16, f32 };

struct SessionOptions {
  uint32_t n_ctx = 0;      // 0: the model's training context, capped at kDefaultMaxCtx
  uint32_t n_batch = 512;  // prompt tokens per forward pass
  KvType kv_type = KvType::f16;
  ThreadPool* pool = nullptr;  // matmul rows split across it; results do not depend on its size
};
inline constexpr uint32_t kDefaultMaxCtx = 4096;

class Session {
 public:
  Session(const model::Model& model, const kernels::KernelTable& kernels, const SessionOptions& opt = {});

  // Feeds tokens at positions n_past() ..; afterwards logits() holds the last token's logits, or
  // with all_logits, logits_at(i) those of every token of this call. Throws bitnet::Error
  // (invalid_input) for an id outside the vocabulary or when the context would overflow.
  void eval(std::span<const int32_t> tokens, bool all_logits = false);

  std::span<const float> logits() const;
  std::span<const float> logits_at(size_t i) const;
  uint32_t n_past() const { return n_past_; }
  uint32_t n_ctx() const { return n_ctx_; }
  const model::Model& model() const { return model_; }
  void reset() { n_past_ = 0; }

 private:
  void forward_batch(std::span<const int32_t> tokens, bool all_logits);
  void attention(uint32_t layer, int64_t n_tokens);
  void store_kv(uint32_t layer, int64_t n_tokens);

  const model::Model& model_;
  const kernels::KernelTable& k_;
  const model::ModelConfig& c_;
  uint32_t n_ctx_ = 0;
  uint32_t n_batch_ = 0;
  KvType kv_type_;
  ThreadPool* pool_;
  uint32_t n_past_ = 0;
  kernels::MatmulScratch scratch_;

  // KV cache, f16 bits or f32: K [n_layer][n_ctx][n_embd_kv], V transposed [n_layer][n_embd_kv][n_ctx].
  std::vector<uint16_t> k16_, v16_;
  std::vector<float> k32_, v32_;
  // Activations for one batch: [n_batch][width].
  std::vector<float> x_, h_, q_, k_cur_, v_cur_, att_, g_, u_, tmp_;
  std::vector<float> logits_;     // [n_out][n_vocab]
  size_t n_logits_ = 0;
};

}  // namespace bitnet::infer
