// The memory plan of a Session: its pool buffers (session_buffers.hpp, the list the constructor
// allocates from), the matmul scratch and the weight copy, so planned and tracked bytes can be
// compared exactly.
#include <algorithm>

#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"
#include "core/infer/session_buffers.hpp"

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

Session::BufferShape Session::buffer_shape(uint32_t n_ctx, uint32_t n_batch, const SessionOptions& opt) {
  return {n_ctx, n_batch, opt.pool ? static_cast<uint64_t>(opt.pool->size()) : 1, opt.kv_type};
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
  auto plan_one = [&]<typename T>(std::string_view tag, std::string_view name, uint64_t elements, PoolArray<T> Session::*) {
    add(tag, name, elements, sizeof(T));
  };
  Session::each_buffer(c, Session::buffer_shape(p.n_ctx, p.n_batch, opt), plan_one);
  const uint64_t B = p.n_batch;
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
  // The screen is built from the resident copy of the output matrix, which has its file type.
  const kernels::WeightView out = resident_weight(table, model.output());
  if (opt.screen == nullptr && opt.screen_output && kernels::OutputScreen::worth_building(table, out))
    add(kTagOutputScreen, "output_screen", kernels::OutputScreen::planned_bytes(out), 1);
  return p;
}

}  // namespace bitnet::infer
