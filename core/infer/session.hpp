// A Session is the mutable half of inference: the KV cache, activation buffers and position,
// over a shared const Model. Buffers are planned from the config and taken from a memory pool
// once, at construction, each under a tag its tracker counts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/memory_pool.hpp"
#include "core/infer/resident_weights.hpp"
#include "core/infer/taps.hpp"
#include "core/kernels/kernels.hpp"
#include "core/kernels/screen.hpp"
#include "core/model/model.hpp"

namespace bitnet::infer {

// The KV cache's element type. q8_0 (llama.cpp's -ctk/-ctv q8_0): each head's K and V rows as
// Q8_0 blocks, half the bytes of f16; needs a head size that is a multiple of 32.
enum class KvType { f16, f32, q8_0 };
std::string_view kv_type_name(KvType t);

struct SessionOptions {
  uint32_t n_ctx = 0;      // 0: the model's training context, capped at kDefaultMaxCtx
  uint32_t n_batch = 512;  // prompt tokens per forward pass
  KvType kv_type = KvType::f16;
  ThreadPool* pool = nullptr;  // matmul rows split across it; results do not depend on its size
  MemoryPool* memory = nullptr;  // where the buffers come from; nullptr: default_memory_pool()
  // The weight copy to multiply, shared with other sessions (it must be of the same model and
  // kernel table, and outlive the session); nullptr: the session makes its own.
  const ResidentWeights* weights = nullptr;
  // Build an output screen (kernels::OutputScreen, an int8 copy of the output matrix) so that
  // set_top_logits can ask for only the logits a sampler can pick. Off: every logit, always.
  bool screen_output = false;
  // A screen to use instead of building one (of this model's output matrix in the same kernel
  // table's copy, outliving the session): bench's sessions share one.
  const kernels::OutputScreen* screen = nullptr;
  // Test-only: damage one tap's values as the pass goes (crossval --layers must find it there).
  TapFault fault;
};
inline constexpr uint32_t kDefaultMaxCtx = 4096;

// The tags a session's buffers are counted under.
inline constexpr std::string_view kTagKvCache = "kv_cache";
inline constexpr std::string_view kTagActivations = "activations";
inline constexpr std::string_view kTagLogits = "logits";
inline constexpr std::string_view kTagScratch = "scratch";
inline constexpr std::string_view kTagWeights = "weights";
inline constexpr std::string_view kTagOutputScreen = kernels::kTagOutputScreen;

struct PlannedBuffer {
  std::string_view tag;
  std::string_view name;  // the member it becomes, e.g. "k" of the KV cache
  uint64_t elements = 0;
  uint64_t bytes = 0;     // as the pool holds it (pool_block_bytes)
};

// Every pool block a Session takes, computed from the config, the weight types and the options
// before anything is allocated. Logits are planned for one token: an eval with all_logits over
// more tokens grows them past the plan.
struct SessionMemoryPlan {
  uint32_t n_ctx = 0;
  uint32_t n_batch = 0;
  std::vector<PlannedBuffer> buffers;
  uint64_t bytes(std::string_view tag) const;  // one tag's sum
  uint64_t total() const;
  const PlannedBuffer& find(std::string_view name) const;  // an invariant that it exists
};
// `kernels` is the table the session will use (nullptr: the reference table); it decides the size
// of the session's copy of the weights (see resident_weight), planned unless opt.weights shares one.
SessionMemoryPlan plan_session_memory(const model::Model& model, const SessionOptions& opt = {},
                                      const kernels::KernelTable* kernels = nullptr);

class Session {
 public:
  Session(const model::Model& model, const kernels::KernelTable& kernels, const SessionOptions& opt = {});

  // Feeds tokens at positions n_past() ..; afterwards logits() holds the last token's logits, or
  // with all_logits, logits_at(i) those of every token of this call. Throws bitnet::Error
  // (invalid_input) for an id outside the vocabulary or when the context would overflow.
  void eval(std::span<const TokenId> tokens, bool all_logits = false);

  // Drops the n_discard tokens at positions [n_keep, n_keep + n_discard) from the KV cache and
  // moves the later ones down to n_keep (llama-cli's context shift): n_past() falls by
  // n_discard and the next eval continues from there. The moved keys, cached after RoPE, are
  // rotated back by n_discard positions; attention sees only the distance between query and key,
  // so they read as if evaluated where they now sit (an F16 key is rounded to F16 again). Values
  // move as they are; the last eval's logits stay. Throws bitnet::Error (invalid_input) when
  // n_keep + n_discard exceeds n_past(), changing nothing.
  void shift_context(uint32_t n_keep, uint32_t n_discard);

  // What the next evals' last-token logits must hold. top_k 0 (the default): every logit. top_k
  // >= 1 with a screen (SessionOptions::screen_output, a type it supports): the logits that can
  // be among the top_k largest and those of the `exact` ids, each bit-identical to the full
  // product, and -infinity for the rest (a sampler that may raise some tokens' logits, as a
  // repeat penalty below 1 does, lists them in `exact`). Kept until changed.
  void set_top_logits(int32_t top_k, std::span<const TokenId> exact = {});
  // Output rows the last eval computed exactly (n_vocab without screening), for reports.
  int64_t exact_output_rows() const { return exact_rows_; }
  bool screens_output() const { return screen_ != nullptr; }

  // Sees every tap (taps.hpp) of the evals that follow; an empty function turns them off.
  void set_tap_observer(TapObserver observer) { tap_observer_ = std::move(observer); }

  std::span<const float> logits() const;
  std::span<const float> logits_at(size_t i) const;
  uint32_t n_past() const { return n_past_; }
  // Keys from which one token's attention is split over the pool by key range rather than by KV
  // head (the same results either way).
  static constexpr uint32_t kSplitKeys = 256;
  uint32_t n_ctx() const { return n_ctx_; }
  const model::Model& model() const { return model_; }
  void reset() { n_past_ = 0; }
  // Keeps positions [0, n_past) and forgets the later ones, which the next evals overwrite (as
  // reset() forgets all): bench times a test again and again after one untimed context of
  // n_past tokens. The last eval's logits stay. Throws bitnet::Error (invalid_input) when n_past
  // exceeds n_past(), changing nothing.
  void rewind(uint32_t n_past) {
    if (n_past > n_past_)
      throw make_error(ErrorCode::invalid_input, "rewind to position {}: the context holds only {} tokens", n_past,
                       n_past_);
    n_past_ = n_past;
  }

 private:
  void forward_batch(std::span<const TokenId> tokens, bool all_logits);
  void for_each_token(int64_t T, const std::function<void(int64_t)>& fn);
  void for_each_range(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
  void attention(uint32_t layer, int64_t n_tokens);
  void attention_one(uint32_t layer);
  // Keys whose K rows attention_one reads for every KV head before moving on: one stretch of
  // the cache at a time instead of a pass per head, each reading a fifth of every row.
  static constexpr int64_t kKeyBlock = 64;
  void store_kv(uint32_t layer, int64_t n_tokens);

  // What the buffers' sizes depend on besides the model.
  struct BufferShape {
    uint32_t n_ctx = 0, n_batch = 0;
    uint64_t threads = 1;
    KvType kv = KvType::f16;
  };
  static BufferShape buffer_shape(uint32_t n_ctx, uint32_t n_batch, const SessionOptions& opt);
  // The one list of the pool buffers below (session_buffers.hpp).
  template <typename F>
  static void each_buffer(const model::ModelConfig& c, const BufferShape& s, F&& f);
  friend SessionMemoryPlan plan_session_memory(const model::Model&, const SessionOptions&, const kernels::KernelTable*);

  const model::Model& model_;
  const kernels::KernelTable& k_;
  const model::ModelConfig& c_;
  uint32_t n_ctx_ = 0;
  uint32_t n_batch_ = 0;
  KvType kv_type_;
  ThreadPool* pool_;
  uint32_t n_past_ = 0;
  MemoryPool* memory_;
  kernels::MatmulScratch scratch_;  // sized for the largest matmul at construction

  // KV cache, f16 bits or f32 (only the pair in use is allocated): K [n_layer][n_ctx][n_embd_kv],
  // V transposed [n_layer][n_embd_kv][n_ctx]. Or Q8_0, K and V alike [n_layer][n_head_kv][n_ctx]
  // [head_dim / 32 blocks]: a head's rows are consecutive, as the Q8_0 products take them.
  PoolArray<uint16_t> k16_, v16_;
  PoolArray<float> k32_, v32_;
  PoolArray<kernels::BlockQ8_0> k8_, v8_;
  size_t q8_row(uint32_t layer, int64_t head, size_t pos) const {
    return ((size_t{layer} * c_.n_head_kv + static_cast<size_t>(head)) * n_ctx_ + pos) * (c_.head_dim() / kernels::kQK8_0);
  }
  // Activations for one batch: [n_batch][width].
  PoolArray<float> x_, h_, q_, k_cur_, v_cur_, att_, g_, u_, tmp_;
  PoolArray<float> rope_;  // [n_batch][n_rot]: each token's RoPE cos/sin pairs (rope_angles)
  // Attention workspace, one slot per thread of the pool (or per KV head, if more, for
  // attention_one): scores [slots][group][n_ctx], their f16 copies, the f16 query
  // [slots][group][head_dim]; v_row_ [n_embd_kv] for store_kv.
  PoolArray<float> scores_;
  PoolArray<uint16_t> p16_, q16_, v_row_;
  PoolArray<kernels::BlockQ8_0> q8_;  // the Q8_0 cache's queries, [slots][group][head_dim / 32]
  PoolArray<float> logits_;       // [n_out][n_vocab]
  std::unique_ptr<ResidentWeights> own_weights_;  // when the options share none
  const ResidentWeights* w_ = nullptr;            // the matrices multiplied: own_weights_ or shared
  size_t n_logits_ = 0;
  std::unique_ptr<kernels::OutputScreen> own_screen_;  // with SessionOptions::screen_output
  const kernels::OutputScreen* screen_ = nullptr;      // own_screen_ or the shared one
  kernels::OutputScreen::Work screen_work_;
  int32_t top_k_ = 0;
  std::vector<int32_t> exact_ids_;
  int64_t exact_rows_ = 0;
  TapObserver tap_observer_;
  TapFault fault_;
  std::vector<float> tap_scaled_;  // a tap's rows times its matrix scale, only while observed
  // Hands tap `name` of `layer`, rows [T][width] of `data`, to the observer (times `scale`, the
  // per-matrix multiplier the buffer does not hold yet), after applying a planted fault.
  void tap(std::string_view name, int32_t layer, float* data, int64_t T, int64_t width, float scale = 1.0f,
           uint32_t pos0 = UINT32_MAX);
};

}  // namespace bitnet::infer
