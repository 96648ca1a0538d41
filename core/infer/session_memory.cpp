// The memory plan of a Session: the one place that knows how big each of its buffers is. The
// constructor allocates exactly these, so planned and tracked bytes can be compared exactly.
#include <algorithm>

#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"

namespace bitnet::infer {

uint64_t SessionMemoryPlan::bytes(std::string_view tag) const {
  uint64_t sum = 0;
  for (const PlannedBuffer& b : buffers)
    if (b.tag == tag) sum += b.bytes;
  return sum;
}

uint64_t SessionMemoryPlan::total() const {
  uint64_t sum = 0;
  for (const PlannedBuffer& b : buffers) sum += b.bytes;
  return sum;
}

const PlannedBuffer& SessionMemoryPlan::find(std::string_view name) const {
  for (const PlannedBuffer& b : buffers)
    if (b.name == name) return b;
  BITNET_CHECK(false && "a session buffer missing from its plan");
  return buffers.front();
}

SessionMemoryPlan plan_session_memory(const model::Model& model, const SessionOptions& opt,
                                      const kernels::KernelTable* kernels) {
  const model::ModelConfig& c = model.config();
  SessionMemoryPlan p;
  p.n_ctx = opt.n_ctx ? opt.n_ctx : std::min(c.n_ctx_train, kDefaultMaxCtx);
  p.n_batch = std::max<uint32_t>(1, std::min(opt.n_batch, p.n_ctx));
  auto add = [&](std::string_view tag, std::string_view name, uint64_t elements, uint64_t elem_bytes) {
    p.buffers.push_back({tag, name, elements, pool_block_bytes(elements * elem_bytes)});
  };
  const uint64_t kv = uint64_t{c.n_layer} * p.n_ctx * c.n_embd_kv();
  const uint64_t kv_elem = opt.kv_type == KvType::f16 ? 2 : 4;
  add(kTagKvCache, "k", kv, kv_elem);
  add(kTagKvCache, "v", kv, kv_elem);
  const uint64_t B = p.n_batch, q_width = uint64_t{c.head_dim()} * c.n_head;
  add(kTagActivations, "x", B * c.n_embd, 4);
  add(kTagActivations, "h", B * std::max<uint64_t>(c.n_embd, q_width), 4);
  add(kTagActivations, "q", B * q_width, 4);
  add(kTagActivations, "k_cur", B * c.n_embd_kv(), 4);
  add(kTagActivations, "v_cur", B * c.n_embd_kv(), 4);
  add(kTagActivations, "att", B * q_width, 4);
  add(kTagActivations, "g", B * c.n_ff, 4);
  add(kTagActivations, "u", B * c.n_ff, 4);
  add(kTagActivations, "tmp", B * c.n_embd, 4);
  add(kTagActivations, "rope", B * c.n_rot, 4);
  // Attention: one slot per thread (the work is split into that many parts).
  const uint64_t threads = opt.pool ? static_cast<uint64_t>(opt.pool->size()) : 1;
  // Each slot holds the query heads sharing one KV head; the f16 copies only with an F16 cache.
  const uint64_t group = c.n_head_kv ? c.n_head / c.n_head_kv : 1;
  add(kTagActivations, "scores", threads * group * p.n_ctx, 4);
  add(kTagActivations, "p16", opt.kv_type == KvType::f16 ? threads * group * p.n_ctx : 0, 2);
  add(kTagActivations, "q16", opt.kv_type == KvType::f16 ? threads * group * c.head_dim() : 0, 2);
  add(kTagActivations, "v_row", opt.kv_type == KvType::f16 ? c.n_embd_kv() : 0, 2);
  add(kTagLogits, "logits", c.n_vocab, 4);
  // The largest matmul workspace of any weight for a full batch (the output matmul sees at most
  // one batch of tokens too).
  uint64_t scratch = kernels::matmul_scratch_bytes(model.output(), B);
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    const model::LayerWeights& L = model.layer(l);
    for (const kernels::WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down})
      scratch = std::max<uint64_t>(scratch, kernels::matmul_scratch_bytes(*w, B));
  }
  add(kTagScratch, "matmul", scratch, 1);
  // A session that shares a copy (opt.weights) takes no block of its own.
  const kernels::KernelTable& table = kernels != nullptr ? *kernels : kernels::reference_table();
  add(kTagWeights, "weights", opt.weights != nullptr ? 0 : resident_total_bytes(model, table), 1);
  return p;
}

}  // namespace bitnet::infer
