// A Session's pool buffers, listed once. plan_session_memory sizes its plan from this list (the
// bytes from each member's element type) and the Session constructor allocates from it, so what
// memcheck plans and what a session takes cannot drift apart. Internal to core/infer.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/infer/session.hpp"

namespace bitnet::infer {

// Calls f(tag, name, elements, &Session::member) for every PoolArray member the forward pass
// uses, in allocation order. Shapes: [n_batch][width] for activations, one attention slot per
// thread of the pool (the work is split into that many parts).
template <typename F>
void Session::each_buffer(const model::ModelConfig& c, const BufferShape& s, F&& f) {
  const uint64_t kv = uint64_t{c.n_layer} * s.n_ctx * c.n_embd_kv();
  if (s.kv == KvType::f16) {
    f(kTagKvCache, "k", kv, &Session::k16_);
    f(kTagKvCache, "v", kv, &Session::v16_);
  } else if (s.kv == KvType::q8_0) {
    f(kTagKvCache, "k", kv / kernels::kQK8_0, &Session::k8_);
    f(kTagKvCache, "v", kv / kernels::kQK8_0, &Session::v8_);
  } else {
    f(kTagKvCache, "k", kv, &Session::k32_);
    f(kTagKvCache, "v", kv, &Session::v32_);
  }
  const uint64_t B = s.n_batch, q_width = uint64_t{c.head_dim()} * c.n_head;
  f(kTagActivations, "x", B * c.n_embd, &Session::x_);
  f(kTagActivations, "h", B * std::max<uint64_t>(c.n_embd, q_width), &Session::h_);
  f(kTagActivations, "q", B * q_width, &Session::q_);
  f(kTagActivations, "k_cur", B * c.n_embd_kv(), &Session::k_cur_);
  f(kTagActivations, "v_cur", B * c.n_embd_kv(), &Session::v_cur_);
  f(kTagActivations, "att", B * q_width, &Session::att_);
  f(kTagActivations, "g", B * c.n_ff, &Session::g_);
  f(kTagActivations, "u", B * c.n_ff, &Session::u_);
  f(kTagActivations, "tmp", B * c.n_embd, &Session::tmp_);
  f(kTagActivations, "rope", B * c.n_rot, &Session::rope_);
  // Each attention slot holds the query heads sharing one KV head; the f16 copies only with an
  // F16 cache, the Q8_0 queries only with a Q8_0 one. A decode step with several threads uses one
  // slot per KV head (attention_one).
  const uint64_t group = c.n_head_kv ? c.n_head / c.n_head_kv : 1;
  const bool f16 = s.kv == KvType::f16, q8 = s.kv == KvType::q8_0;
  const uint64_t slots = s.threads > 1 && s.kv != KvType::f32 ? std::max<uint64_t>(s.threads, c.n_head_kv) : s.threads;
  f(kTagActivations, "scores", slots * group * s.n_ctx, &Session::scores_);
  f(kTagActivations, "p16", f16 ? slots * group * s.n_ctx : 0, &Session::p16_);
  f(kTagActivations, "q16", f16 ? slots * group * c.head_dim() : 0, &Session::q16_);
  f(kTagActivations, "v_row", f16 ? c.n_embd_kv() : 0, &Session::v_row_);
  f(kTagActivations, "q8", q8 ? slots * group * c.head_dim() / kernels::kQK8_0 : 0, &Session::q8_);
  f(kTagLogits, "logits", c.n_vocab, &Session::logits_);
}

}  // namespace bitnet::infer
