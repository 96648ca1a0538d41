// The forward pass (SPEC.md 2.4, 2.8): embeddings, per layer attention with a KV cache and the
// FFN, final norm and logits. Numerics follow ggml's CPU path: F16 KV cache by default, the
// query and the attention weights rounded to F16 before their products with the cache (as
// ggml's F16 matmul converts its f32 operand), everything else in f32.
#include "session.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/ops.hpp"
#include "core/infer/session_buffers.hpp"

namespace bitnet::infer {

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::f16: return "f16";
    case KvType::f32: return "f32";
    case KvType::q8_0: return "q8_0";
  }
  return "?";
}

Session::Session(const model::Model& model, const kernels::KernelTable& kernels, const SessionOptions& opt)
    : model_(model), k_(kernels), c_(model.config()), kv_type_(opt.kv_type), pool_(opt.pool),
      memory_(opt.memory ? opt.memory : &default_memory_pool()), scratch_(*memory_, std::string(kTagScratch)) {
  if (kv_type_ == KvType::q8_0 && c_.head_dim() % kernels::kQK8_0 != 0)
    throw make_error(ErrorCode::invalid_input,
                     "a q8_0 KV cache needs a head size that is a multiple of {} (its blocks); this model's is {} "
                     "(use f16)", kernels::kQK8_0, c_.head_dim());
  // Everything the forward pass touches comes from the plan, so memcheck can hold the two side by side.
  const SessionMemoryPlan plan = plan_session_memory(model, opt, &kernels);
  n_ctx_ = plan.n_ctx;
  n_batch_ = plan.n_batch;
  std::string_view taking, taking_name;  // the buffer being allocated, for the error below
  uint64_t taking_bytes = 0;
  try {
    each_buffer(c_, buffer_shape(n_ctx_, n_batch_, opt),
                [&]<typename T>(std::string_view tag, std::string_view name, uint64_t elements, PoolArray<T> Session::*member) {
                  taking = tag, taking_name = name, taking_bytes = elements * sizeof(T);
                  this->*member = PoolArray<T>(*memory_, tag, elements);
                });
  } catch (Error& e) {
    // Name the knob that made the buffer that large, and its value.
    if (taking == kTagKvCache)
      throw e.wrap(fmt::format("cannot allocate the KV cache ({}, {} bytes) for a context of {} tokens (-c {}); lower "
                               "-c (the model was trained on {}){}",
                               taking_name, taking_bytes, n_ctx_, n_ctx_, c_.n_ctx_train,
                               kv_type_ == KvType::q8_0 ? "" : " or use --kv-type q8_0 (about half the bytes)"));
    throw e.wrap(fmt::format("cannot allocate the session's '{}' buffer {} ({} bytes) for a context of {} tokens (-c) "
                             "and batches of {} tokens; lower -c or the batch size",
                             taking, taking_name, taking_bytes, n_ctx_, n_batch_));
  }
  logits_.set_size(0);
  if (opt.weights != nullptr) {
    if (&opt.weights->model() != &model || &opt.weights->kernels() != &kernels)
      throw make_error(ErrorCode::failure, "session: the shared weights were copied for another model or kernel table");
    w_ = opt.weights;
  } else {
    own_weights_ = std::make_unique<ResidentWeights>(model, kernels, *memory_, pool_);
    w_ = own_weights_.get();
  }
  if (const uint64_t s = plan.find("matmul").bytes; s > 0) scratch_.get(s);
  if (opt.screen != nullptr) {
    screen_ = opt.screen;
  } else if (opt.screen_output && kernels::OutputScreen::worth_building(k_, w_->output())) {
    own_screen_ = std::make_unique<kernels::OutputScreen>(k_, w_->output(), *memory_, pool_);
    screen_ = own_screen_.get();
  }
  fault_ = opt.fault;
}

void Session::set_top_logits(int32_t top_k, std::span<const TokenId> exact) {
  top_k_ = std::max(top_k, 0);
  exact_ids_.clear();
  for (TokenId t : exact)
    if (t >= 0 && static_cast<uint32_t>(t) < c_.n_vocab) exact_ids_.push_back(t);
}

void Session::eval(std::span<const TokenId> tokens, bool all_logits) {
  for (int32_t t : tokens)
    if (t < 0 || static_cast<uint32_t>(t) >= c_.n_vocab)
      throw make_error(ErrorCode::invalid_input, "token id {} is outside the vocabulary (0..{})", t, c_.n_vocab - 1);
  if (tokens.size() > n_ctx_ - n_past_)
    throw make_error(ErrorCode::invalid_input,
                     "context full: {} tokens already in the context plus {} new exceed the context size {} (raise -c, "
                     "up to the model's {})", n_past_, tokens.size(), n_ctx_, c_.n_ctx_train);
  const size_t n_logits = all_logits ? tokens.size() * c_.n_vocab : c_.n_vocab;
  n_logits_ = 0;  // no stale logits() if the pool refuses the larger buffer below
  if (n_logits > logits_.capacity()) {
    logits_ = {};  // give the planned block back before taking the larger one
    logits_ = PoolArray<float>(*memory_, kTagLogits, n_logits);
  }
  logits_.set_size(n_logits);
  std::fill(logits_.begin(), logits_.end(), 0.0f);
  for (size_t i = 0; i < tokens.size(); i += n_batch_) {
    auto chunk = tokens.subspan(i, std::min<size_t>(n_batch_, tokens.size() - i));
    const bool last = i + chunk.size() == tokens.size();
    forward_batch(chunk, all_logits || last);
  }
}

std::span<const float> Session::logits() const {
  BITNET_CHECK(n_logits_ > 0);
  return {logits_.data() + (n_logits_ - 1) * c_.n_vocab, c_.n_vocab};
}

std::span<const float> Session::logits_at(size_t i) const {
  BITNET_CHECK(i < n_logits_);
  return {logits_.data() + i * c_.n_vocab, c_.n_vocab};
}

void Session::store_kv(uint32_t layer, int64_t T) {
  const size_t w = c_.n_embd_kv();
  if (kv_type_ == KvType::q8_0) {
    const int64_t hd = c_.head_dim();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t g = 0; g < c_.n_head_kv; ++g) {
        const size_t at = q8_row(layer, g, n_past_ + static_cast<size_t>(t)), cur = static_cast<size_t>(t) * w + g * hd;
        k_.quantize_q8_0(&k_cur_[cur], hd, &k8_[at]);
        k_.quantize_q8_0(&v_cur_[cur], hd, &v8_[at]);
      }
    return;
  }
  // V is kept transposed ([layer][channel][position]) so that attention's weighted sum over
  // positions is one contiguous dot product per channel.
  uint16_t* v16 = v_row_.data();
  for (int64_t t = 0; t < T; ++t) {
    const size_t pos = n_past_ + static_cast<size_t>(t);
    const size_t at = (size_t{layer} * n_ctx_ + pos) * w;
    const size_t vt = size_t{layer} * w * n_ctx_ + pos;
    const float* k = &k_cur_[static_cast<size_t>(t) * w];
    const float* v = &v_cur_[static_cast<size_t>(t) * w];
    if (kv_type_ == KvType::f16) {
      k_.to_f16(k, static_cast<int64_t>(w), &k16_[at]);
      k_.to_f16(v, static_cast<int64_t>(w), v16);
      for (size_t c = 0; c < w; ++c) v16_[vt + c * n_ctx_] = v16[c];
    } else {
      std::copy(k, k + w, &k32_[at]);
      for (size_t c = 0; c < w; ++c) v32_[vt + c * n_ctx_] = v[c];
    }
  }
}

// Causal attention for the T new tokens against everything in the cache (GQA: query head h
// reads kv head h / (n_head / n_head_kv)). Writes att_ [T][n_head * head_dim]. Work item =
// (token, KV head): the query heads sharing a KV head are done together, so with an F16 cache
// each K and V row is converted once for all of them (kernels::f16_products, the query heads as
// its tokens). Part p (one per thread, using workspace slot p) takes every parts-th item: a
// later token has more keys, so contiguous ranges would leave the last part most of the work
// of a causal prompt. Every result is computed by the same table code whichever thread runs
// it. With an F16 cache the query and the softmax weights are rounded to F16 first (ggml's F16
// matmul does the same); products of two F16 values are exact, and every table sums them in
// the same float lanes. With a Q8_0 cache the queries are quantized to Q8_0 (ggml's K x Q
// product does the same) and V rows are summed key by key with the float weights
// (weighted_sum_q8_0, as ggml's flash attention).
void Session::attention(uint32_t layer, int64_t T) {
  const int64_t hd = c_.head_dim(), n_head = c_.n_head, n_kv = c_.n_head_kv, group = n_head / n_kv;
  const int64_t nbh = hd / kernels::kQK8_0;
  const size_t W = c_.n_embd_kv();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool f16 = kv_type_ == KvType::f16, q8 = kv_type_ == KvType::q8_0;
  if (T == 1 && (f16 || q8) && pool_ != nullptr && pool_->size() > 1 && n_past_ + 1 >= kSplitKeys)
    return attention_one(layer);
  const size_t k_base = size_t{layer} * n_ctx_ * W, v_base = size_t{layer} * W * n_ctx_;
  const int64_t n_items = T * n_kv;
  const int64_t parts = pool_ ? std::min<int64_t>(pool_->size(), n_items) : 1;
  auto part = [&](int64_t p) {
    float* scores = scores_.data() + static_cast<size_t>(p * group) * n_ctx_;              // [group][n_ctx]
    uint16_t* p16 = f16 ? p16_.data() + static_cast<size_t>(p * group) * n_ctx_ : nullptr;  // [group][n_ctx]
    uint16_t* q16 = f16 ? q16_.data() + static_cast<size_t>(p * group * hd) : nullptr;      // [group][hd]
    kernels::BlockQ8_0* qb = q8 ? q8_.data() + static_cast<size_t>(p * group * nbh) : nullptr;  // [group][nbh]
    for (int64_t item = p; item < n_items; item += parts) {
      const int64_t t = item / n_kv, g = item % n_kv;
      const auto n_keys = static_cast<int64_t>(n_past_) + t + 1;
      const size_t first = static_cast<size_t>((t * n_head + g * group) * hd);  // the group's first query head
      const size_t kv_off = static_cast<size_t>(g * hd);
      if (f16) {
        k_.to_f16(&q_[first], group * hd, q16);
        kernels::f16_products(k_, &k16_[k_base + kv_off], static_cast<int64_t>(W), n_keys, q16, hd, group, hd, scores,
                              n_ctx_);
      } else if (q8) {
        k_.quantize_q8_0(&q_[first], group * hd, qb);
        kernels::q8_0_products(k_, &k8_[q8_row(layer, g, 0)], n_keys, qb, group, hd, scores, n_ctx_);
      } else {
        for (int64_t h = 0; h < group; ++h)
          for (int64_t j = 0; j < n_keys; ++j)
            scores[static_cast<size_t>(h) * n_ctx_ + static_cast<size_t>(j)] =
                k_.dot_f32_f32(&k32_[k_base + static_cast<size_t>(j) * W + kv_off], &q_[first + static_cast<size_t>(h * hd)], hd);
      }
      for (int64_t h = 0; h < group; ++h)
        k_.softmax_f32(scores + static_cast<size_t>(h) * n_ctx_, n_keys, scale,
                       f16 ? p16 + static_cast<size_t>(h) * n_ctx_ : nullptr);
      if (f16) {
        kernels::f16_products(k_, &v16_[v_base + kv_off * n_ctx_], n_ctx_, hd, p16, n_ctx_, group, n_keys, &att_[first],
                              hd);
      } else if (q8) {
        k_.weighted_sum_q8_0(&v8_[q8_row(layer, g, 0)], nbh, n_keys, scores, n_ctx_, group, hd, &att_[first], hd);
      } else {
        for (int64_t h = 0; h < group; ++h)
          for (int64_t i = 0; i < hd; ++i)
            att_[first + static_cast<size_t>(h * hd + i)] = k_.dot_f32_f32(
                &v32_[v_base + (kv_off + static_cast<size_t>(i)) * n_ctx_], scores + static_cast<size_t>(h) * n_ctx_, n_keys);
      }
    }
  };
  if (parts == 1) {
    part(0);
  } else {
    pool_->parallel_for(parts, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) part(p);
    });
  }
}

// One token against a long cache (decode): the work by key range and by channel range instead of
// by KV head, so that both threads stream the cache whatever the head count (5 KV heads split
// 3:2 by head). Three passes: every head's scores over a share of the keys, softmax per head,
// then the weighted sums over a share of each head's V channels (with a Q8_0 cache, whole
// blocks). Each score and each output is the same table product as in attention()'s loop, only
// computed on another thread, so the results are identical bit for bit; only the two extra
// hand-overs cost, which is why short contexts stay with the per-head split (kSplitKeys).
void Session::attention_one(uint32_t layer) {
  const int64_t hd = c_.head_dim(), n_head = c_.n_head, n_kv = c_.n_head_kv, group = n_head / n_kv;
  const int64_t nbh = hd / kernels::kQK8_0;
  const auto W = static_cast<int64_t>(c_.n_embd_kv()), ctx = static_cast<int64_t>(n_ctx_);
  const auto n_keys = static_cast<int64_t>(n_past_) + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool q8 = kv_type_ == KvType::q8_0;
  const uint16_t* kl = q8 ? nullptr : &k16_[size_t{layer} * n_ctx_ * c_.n_embd_kv()];
  const uint16_t* vl = q8 ? nullptr : &v16_[size_t{layer} * c_.n_embd_kv() * n_ctx_];
  float* scores = scores_.data();                 // [n_head][n_ctx]
  uint16_t* p16 = q8 ? nullptr : p16_.data();     // [n_head][n_ctx]
  uint16_t* q16 = q8 ? nullptr : q16_.data();     // [n_head][hd]
  kernels::BlockQ8_0* qb = q8 ? q8_.data() : nullptr;  // [n_head][nbh]
  if (q8) k_.quantize_q8_0(q_.data(), n_head * hd, qb);
  else k_.to_f16(q_.data(), n_head * hd, q16);
  const int64_t shares = pool_->size(), units = shares * n_kv;
  pool_->parallel_for(shares, [&](int64_t b, int64_t e) {  // share i: keys [j0, j1), every head
    for (int64_t i = b; i < e; ++i) {
      const int64_t j0 = n_keys * i / shares, j1 = n_keys * (i + 1) / shares;
      if (q8) {  // a head's rows are one stretch of the cache: one stream per head
        for (int64_t g = 0; g < n_kv; ++g)
          kernels::q8_0_products(k_, &k8_[q8_row(layer, g, static_cast<size_t>(j0))], j1 - j0, qb + g * group * nbh,
                                 group, hd, scores + g * group * ctx + j0, ctx);
        continue;
      }
      for (int64_t j = j0; j < j1; j += kKeyBlock) {
        const int64_t nj = std::min<int64_t>(kKeyBlock, j1 - j);
        for (int64_t g = 0; g < n_kv; ++g)
          kernels::f16_products(k_, kl + j * W + g * hd, W, nj, q16 + g * group * hd, hd, group, hd,
                                scores + g * group * ctx + j, ctx);
      }
    }
  });
  pool_->parallel_for(n_head, [&](int64_t b, int64_t e) {
    for (int64_t h = b; h < e; ++h) k_.softmax_f32(scores + h * ctx, n_keys, scale, q8 ? nullptr : p16 + h * ctx);
  });
  // Unit u = share * n_kv + g: the pool's contiguous ranges give each thread whole shares.
  pool_->parallel_for(units, [&](int64_t b, int64_t e) {
    for (int64_t u = b; u < e; ++u) {
      const int64_t i = u / n_kv, g = u % n_kv;
      float* y = &att_[static_cast<size_t>(g * group * hd)];
      if (q8) {
        const int64_t b0 = nbh * i / shares, b1 = nbh * (i + 1) / shares;
        if (b1 > b0)
          k_.weighted_sum_q8_0(&v8_[q8_row(layer, g, 0) + static_cast<size_t>(b0)], nbh, n_keys, scores + g * group * ctx,
                               ctx, group, (b1 - b0) * kernels::kQK8_0, y + b0 * kernels::kQK8_0, hd);
      } else {
        const int64_t c0 = hd * i / shares, c1 = hd * (i + 1) / shares;
        kernels::f16_products(k_, vl + (g * hd + c0) * ctx, ctx, c1 - c0, p16 + g * group * ctx, ctx, group, n_keys,
                              y + c0, hd);
      }
    }
  });
}

namespace {

// Moves the m entries at [from, from + m) down to `to` in every layer's K rows
// ([layer][pos][W]) and V columns ([layer][W][pos]).
template <typename T>
void move_kv(T* k, T* v, uint32_t n_layer, size_t n_ctx, size_t W, size_t to, size_t from, size_t m) {
  for (uint32_t l = 0; l < n_layer; ++l) {
    T* kl = k + size_t{l} * n_ctx * W;
    std::memmove(kl + to * W, kl + from * W, m * W * sizeof(T));
    T* vl = v + size_t{l} * W * n_ctx;
    for (size_t c = 0; c < W; ++c) std::memmove(vl + c * n_ctx + to, vl + c * n_ctx + from, m * sizeof(T));
  }
}

}  // namespace

void Session::shift_context(uint32_t n_keep, uint32_t n_discard) {
  if (uint64_t{n_keep} + n_discard > n_past_)
    throw make_error(ErrorCode::invalid_input,
                     "context shift: keeping {} tokens and dropping the next {} needs {} in the context, which "
                     "holds {}", n_keep, n_discard, uint64_t{n_keep} + n_discard, n_past_);
  if (n_discard == 0) return;
  const size_t W = c_.n_embd_kv(), from = size_t{n_keep} + n_discard, m = n_past_ - from;
  const bool f16 = kv_type_ == KvType::f16, q8 = kv_type_ == KvType::q8_0;
  const auto nbh = static_cast<size_t>(c_.head_dim() / kernels::kQK8_0);
  if (f16) {
    move_kv(k16_.data(), v16_.data(), c_.n_layer, n_ctx_, W, n_keep, from, m);
  } else if (q8) {
    for (uint32_t l = 0; l < c_.n_layer; ++l)
      for (int64_t g = 0; g < c_.n_head_kv; ++g)
        for (auto* cache : {&k8_, &v8_})
          std::memmove(&(*cache)[q8_row(l, g, n_keep)], &(*cache)[q8_row(l, g, from)], m * nbh * sizeof(kernels::BlockQ8_0));
  } else {
    move_kv(k32_.data(), v32_.data(), c_.n_layer, n_ctx_, W, n_keep, from, m);
  }
  n_past_ -= n_discard;

  // Keys are cached after RoPE, at the position they were evaluated at. Rotations by the angles
  // of two positions compose into those of their sum, so rotating by position -n_discard moves a
  // key to where it now sits (llama.cpp's K-shift does the same through ggml_rope_ext).
  float* cs = rope_.data();  // row 0 of the batch's angles, free between evals
  rope_angles(c_.n_rot, -static_cast<int32_t>(n_discard), c_.rope_freq_base, cs);
  const auto rope = c_.rope == model::RopeType::neox ? rope_neox : rope_norm;
  const int64_t hd = c_.head_dim(), n_items = static_cast<int64_t>(c_.n_layer * m);
  // Part p uses row p of k_cur_ to hold an F16 or Q8_0 key in f32 (rotated, then rounded or
  // quantized back as store_kv does); every key is rotated by the same code whichever part takes it.
  const int64_t parts = pool_ ? std::min<int64_t>({pool_->size(), n_batch_, n_items}) : 1;
  auto part = [&](int64_t p) {
    float* buf = k_cur_.data() + static_cast<size_t>(p) * W;
    for (int64_t item = p; item < n_items; item += parts) {
      const size_t l = static_cast<size_t>(item) / m, pos = n_keep + static_cast<size_t>(item) % m;
      const size_t at = (l * n_ctx_ + pos) * W;
      if (q8) {
        for (int64_t h = 0; h < c_.n_head_kv; ++h) {
          kernels::BlockQ8_0* row = &k8_[q8_row(static_cast<uint32_t>(l), h, pos)];
          kernels::dequantize(gguf::GgmlType::Q8_0, reinterpret_cast<const std::byte*>(row), 0, hd, buf);
          rope(buf, c_.n_rot, cs);
          k_.quantize_q8_0(buf, hd, row);
        }
        continue;
      }
      float* key = f16 ? buf : &k32_[at];
      if (f16)
        for (size_t c = 0; c < W; ++c) buf[c] = kernels::f16_to_f32(k16_[at + c]);
      for (int64_t h = 0; h < c_.n_head_kv; ++h) rope(key + h * hd, c_.n_rot, cs);
      if (f16) k_.to_f16(buf, static_cast<int64_t>(W), &k16_[at]);
    }
  };
  if (parts <= 1) {
    if (n_items > 0) part(0);
  } else {
    pool_->parallel_for(parts, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) part(p);
    });
  }
}

namespace {
void scale_rows(float* y, int64_t n, float s) {
  if (s == 1.0f) return;
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

// x += s * d (d scaled in place first, as two separate roundings).
void add_scaled(float* x, float* d, int64_t n, float s) {
  scale_rows(d, n, s);
  for (int64_t i = 0; i < n; ++i) x[i] += d[i];
}
}  // namespace

// The per-token work between the matmuls (norms, RoPE, activations, residuals): independent per
// token, so a batch is split over the pool; each token's values come from the same code on
// whichever thread, so the results do not depend on the thread count.
void Session::for_each_token(int64_t T, const std::function<void(int64_t)>& fn) {
  if (pool_ == nullptr || T == 1) {
    for (int64_t t = 0; t < T; ++t) fn(t);
    return;
  }
  pool_->parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) fn(t);
  });
}

// Elementwise work over n values: fn(begin, end) on ranges of at least 256 across the pool.
void Session::for_each_range(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool_ == nullptr) return fn(0, n);
  pool_->parallel_for(n, fn, 256);
}

void Session::tap(std::string_view name, int32_t layer, float* data, int64_t T, int64_t width, float scale,
                  uint32_t pos0) {
  if (fault_.hits(name, layer))
    for (int64_t t = 0; t < T; ++t) data[t * width] += fault_.delta;
  if (!tap_observer_) return;
  const float* rows = data;
  if (scale != 1.0f) {
    tap_scaled_.resize(static_cast<size_t>(T * width));
    for (int64_t i = 0; i < T * width; ++i) tap_scaled_[static_cast<size_t>(i)] = data[i] * scale;
    rows = tap_scaled_.data();
  }
  tap_observer_(Tap{name, layer, pos0 == UINT32_MAX ? n_past_ : pos0, T, width, rows, width});
}

void Session::forward_batch(std::span<const TokenId> tokens, bool want_logits) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t E = c_.n_embd, hd = c_.head_dim(), QW = hd * c_.n_head, KW = c_.n_embd_kv(), F = c_.n_ff;
  const auto at = [](auto& v, int64_t t, int64_t width) { return &v[static_cast<size_t>(t * width)]; };
  for (int64_t t = 0; t < T; ++t) model_.embedding(tokens[static_cast<size_t>(t)], at(x_, t, E));
  for_each_token(T, [&](int64_t t) {
    rope_angles(c_.n_rot, static_cast<int32_t>(n_past_ + static_cast<uint32_t>(t)), c_.rope_freq_base, at(rope_, t, c_.n_rot));
  });

  // Per-layer times at trace level only: one relaxed load per layer otherwise.
  static log::Logger& lg = log::get("infer");
  const bool trace = lg.enabled(log::Level::trace);
  auto t_layer = trace ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  for (uint32_t l = 0; l < c_.n_layer; ++l) {
    if (trace && l > 0) {
      const auto now = std::chrono::steady_clock::now();
      log::trace(lg, "layer {}: {} tokens from position {} in {:.3f} ms", l - 1, T, n_past_,
                 std::chrono::duration<double, std::milli>(now - t_layer).count());
      t_layer = now;
    }
    const model::LayerWeights& L = model_.layer(l);
    const LayerMatrices& M = w_->layer(l);
    const auto il = static_cast<int32_t>(l);
    for_each_token(T, [&](int64_t t) { rms_norm(at(x_, t, E), L.attn_norm.data(), E, c_.rms_eps, at(h_, t, E)); });
    tap("attn_norm", il, h_.data(), T, E);
    const kernels::MatmulTarget qkv[] = {{&M.wq, q_.data(), QW}, {&M.wk, k_cur_.data(), KW}, {&M.wv, v_cur_.data(), KW}};
    kernels::matmul_group(k_, qkv, h_.data(), E, T, scratch_, pool_);
    for_each_token(T, [&](int64_t t) {
      float* q = at(q_, t, QW);
      float* k = at(k_cur_, t, KW);
      scale_rows(q, QW, L.wq_scale);
      scale_rows(k, KW, L.wk_scale);
      scale_rows(at(v_cur_, t, KW), KW, L.wv_scale);
      const float* cs = at(rope_, t, c_.n_rot);
      auto rope = c_.rope == model::RopeType::neox ? rope_neox : rope_norm;
      for (int64_t h = 0; h < c_.n_head; ++h) rope(q + h * hd, c_.n_rot, cs);
      for (int64_t h = 0; h < c_.n_head_kv; ++h) rope(k + h * hd, c_.n_rot, cs);
    });
    tap("Qcur", il, q_.data(), T, QW);
    tap("Kcur", il, k_cur_.data(), T, KW);
    tap("Vcur", il, v_cur_.data(), T, KW);
    store_kv(l, T);
    attention(l, T);
    tap("kqv_out", il, att_.data(), T, QW);
    if (c_.sub_norms) {
      for_each_token(T, [&](int64_t t) { rms_norm(at(att_, t, QW), L.attn_sub_norm.data(), QW, c_.rms_eps, at(att_, t, QW)); });
      tap("attn_sub_norm", il, att_.data(), T, QW);
    }
    kernels::matmul(k_, M.wo, att_.data(), QW, T, tmp_.data(), E, scratch_, pool_);
    tap("attn_out", il, tmp_.data(), T, E, L.wo_scale);
    for_each_token(T, [&](int64_t t) {
      add_scaled(at(x_, t, E), at(tmp_, t, E), E, L.wo_scale);
      rms_norm(at(x_, t, E), L.ffn_norm.data(), E, c_.rms_eps, at(h_, t, E));
    });
    tap("ffn_inp", il, x_.data(), T, E);
    tap("ffn_norm", il, h_.data(), T, E);
    const kernels::MatmulTarget gate_up[] = {{&M.gate, g_.data(), F}, {&M.up, u_.data(), F}};
    kernels::matmul_group(k_, gate_up, h_.data(), E, T, scratch_, pool_);
    // The activation is elementwise over the whole [T][F] batch, so it splits over the pool by
    // elements (a single decode token too) rather than by token; the sub-norm is per token.
    const auto scale_gate_up = [&](int64_t b, int64_t e) {
      scale_rows(g_.data() + b, e - b, L.gate_scale);
      scale_rows(u_.data() + b, e - b, L.up_scale);
    };
    const auto activate = [&](int64_t b, int64_t e) {
      if (c_.ffn_act == model::FfnAct::relu2) relu2_mul(g_.data() + b, u_.data() + b, e - b);
      else silu_mul(k_, g_.data() + b, u_.data() + b, e - b);
    };
    if (tap_observer_ || fault_.active()) {  // the products are seen before the activation
      for_each_range(T * F, scale_gate_up);
      tap("ffn_gate", il, g_.data(), T, F);
      tap("ffn_up", il, u_.data(), T, F);
      for_each_range(T * F, activate);
    } else {
      for_each_range(T * F, [&](int64_t b, int64_t e) { scale_gate_up(b, e), activate(b, e); });
    }
    if (c_.sub_norms) {
      for_each_token(T, [&](int64_t t) { rms_norm(at(g_, t, F), L.ffn_sub_norm.data(), F, c_.rms_eps, at(g_, t, F)); });
      tap("ffn_sub_norm", il, g_.data(), T, F);
    }
    kernels::matmul(k_, M.down, g_.data(), F, T, tmp_.data(), E, scratch_, pool_);
    tap("ffn_out", il, tmp_.data(), T, E, L.down_scale);
    for_each_token(T, [&](int64_t t) { add_scaled(at(x_, t, E), at(tmp_, t, E), E, L.down_scale); });
    tap("l_out", il, x_.data(), T, E);
  }
  if (trace)
    log::trace(lg, "layer {}: {} tokens from position {} in {:.3f} ms", c_.n_layer - 1, T, n_past_,
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_layer).count());
  n_past_ += static_cast<uint32_t>(T);
  if (!want_logits) return;

  // Logits: every token of the batch when all were asked for, else only the last one.
  const bool all = logits_.size() > c_.n_vocab;
  const int64_t first = all ? 0 : T - 1;
  const int64_t n_out = T - first;
  for (int64_t t = first; t < T; ++t)
    rms_norm(&x_[static_cast<size_t>(t * E)], model_.output_norm().data(), E, c_.rms_eps,
             &h_[static_cast<size_t>((t - first) * E)]);
  const auto pos_first = static_cast<uint32_t>(n_past_ - static_cast<uint32_t>(T - first));
  tap("result_norm", -1, h_.data(), n_out, E, 1.0f, pos_first);
  float* dst = all ? &logits_[n_logits_ * c_.n_vocab] : logits_.data();
  if (!all && top_k_ > 0 && screen_ != nullptr) {
    exact_rows_ = screen_->logits(h_.data(), top_k_, exact_ids_, dst, screen_work_, scratch_, pool_);
  } else {
    kernels::matmul(k_, w_->output(), h_.data(), E, n_out, dst, c_.n_vocab, scratch_, pool_);
    exact_rows_ = static_cast<int64_t>(c_.n_vocab);
  }
  tap("result_output", -1, dst, n_out, c_.n_vocab, 1.0f, pos_first);
  n_logits_ = all ? n_logits_ + static_cast<size_t>(n_out) : 1;
}

}  // namespace bitnet::infer
