// The matrices the forward pass multiplies, copied once per (model, kernel table) into huge
// pages and shared read-only by every session that runs that pair (crossval's session per prompt,
// bench's per repetition), instead of a copy per session.
#pragma once

#include <cstdint>
#include <vector>

#include "core/base/memory_pool.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/model.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::infer {

// A layer's matrices as the forward pass reads them.
struct LayerMatrices {
  kernels::WeightView wq, wk, wv, wo, gate, up, down;
};

// The copy is in the file's type except TQ1_0, which is rewritten as TQ2_0 when the table has a
// TQ2_0 GEMM (exact: the same values and scales, and one dot definition). resident_weight is w as
// the copy holds it (data still the file's); resident_bytes its size in the copy.
bool repacks_at_load(const kernels::KernelTable& k, const kernels::WeightView& w);
kernels::WeightView resident_weight(const kernels::KernelTable& k, const kernels::WeightView& w);
uint64_t resident_bytes(const kernels::KernelTable& k, const kernels::WeightView& w);
// The whole copy's size: what plan_session_memory books under the "weights" tag.
uint64_t resident_total_bytes(const model::Model& model, const kernels::KernelTable& k);

class ResidentWeights {
 public:
  // Copies every layer matrix and the output matrix into one pool block (tag "weights") advised
  // MADV_HUGEPAGE, over `pool` when given, dropping each source's file pages from the RSS as it
  // goes. Logs one debug line per copy ("weights: copied ...").
  ResidentWeights(const model::Model& model, const kernels::KernelTable& k, MemoryPool& memory,
                  ThreadPool* pool = nullptr);
  ResidentWeights(const ResidentWeights&) = delete;
  ResidentWeights& operator=(const ResidentWeights&) = delete;

  const model::Model& model() const { return model_; }
  const kernels::KernelTable& kernels() const { return k_; }
  const LayerMatrices& layer(uint32_t l) const { return mats_[l]; }
  const kernels::WeightView& output() const { return output_; }
  uint64_t bytes() const { return data_.size(); }

 private:
  const model::Model& model_;
  const kernels::KernelTable& k_;
  PoolArray<uint8_t> data_;
  std::vector<LayerMatrices> mats_;  // [n_layer], views of data_
  kernels::WeightView output_;
};

}  // namespace bitnet::infer
