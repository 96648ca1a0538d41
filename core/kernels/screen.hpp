// Output screening: the logits a sampler can pick, exactly, without reading the whole output
// matrix. An int8 copy of the matrix (one scale per row) screens every row; a rigorous bound on
// the screen's error (the stored rounding error of each row, the activation's rounding, and the
// float summation of the exact product) gives each row an interval that holds its exact logit.
// Rows whose interval reaches the k-th best lower bound are computed with matmul's own entry,
// so those logits are bit-identical to the full product; every other row provably has at least
// k rows above it. docs/output-screening.md has the derivation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/memory_pool.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::kernels {

inline constexpr std::string_view kTagOutputScreen = "output_screen";

class OutputScreen {
 public:
  // Whether w's type can be screened (its dot is a plain sum of weight x activation products
  // and the table has the integer entry).
  static bool supports(const KernelTable& k, const WeightView& w);
  // Whether screening reads fewer bytes than the full product: the int8 copy is at most half the
  // matrix (F16, BF16, F32). A Q6_K or Q8_0 matrix is already about a byte per weight.
  static bool saves_bytes(const WeightView& w);
  // Both: the engine builds a screen only then (generate's session, its memory plan, bench).
  static bool worth_building(const KernelTable& k, const WeightView& w) { return supports(k, w) && saves_bytes(w); }
  // Bytes of the int8 copy and the per-row numbers, as the pool will hold them.
  static uint64_t planned_bytes(const WeightView& w);

  // Dequantizes every row of w exactly and rounds it to int8 (tag "output_screen" in memory).
  OutputScreen(const KernelTable& k, const WeightView& w, MemoryPool& memory, ThreadPool* pool = nullptr);

  // A caller's working buffers (one per session; the screen itself is read-only and shared).
  struct Work {
    std::vector<double> act;      // the activation as matmul sees it
    std::vector<int16_t> act16;   // its int16 copy
    std::vector<int32_t> isum;    // [rows] integer products
    std::vector<double> bounds;   // [rows][lower, upper]
    std::vector<int32_t> rows;    // the rows computed exactly
    std::vector<uint8_t> forced;  // [rows] listed in `exact`
  };

  // y[0, rows) for the activation x of one token: every row that can be among the top_k largest
  // values, and every row listed in `exact`, as matmul computes it (bit for bit); -infinity for
  // the rest. Rows in `exact` do not count towards the k (a sampler may change their values).
  // Returns how many rows were computed exactly. top_k must be >= 1.
  int64_t logits(const float* x, int32_t top_k, std::span<const int32_t> exact, float* y, Work& work,
                 MatmulScratch& scratch, ThreadPool* pool = nullptr) const;

  uint64_t bytes() const { return q_.capacity() + row_.capacity() * sizeof(RowNumbers); }

 private:
  struct RowNumbers {
    float scale;   // s: weight ~ s * q
    float q_norm;  // ||q||_2, rounded up
    float e_norm;  // ||w - s q||_2, rounded up
    float w_norm;  // ||w||_2, rounded up
  };
  static RowNumbers quantize_row(const float* v, int64_t n, int8_t* q);
  const KernelTable& k_;
  WeightView w_;
  PoolArray<int8_t> q_;        // [rows][cols]
  PoolArray<RowNumbers> row_;  // [rows]
};

}  // namespace bitnet::kernels
