// The many-token (prefill) gemm entries of every optimised table against the reference dot, at
// the sizes where their blocking changes: row counts around the 16- and 32-row groups, token
// counts around the prefill threshold, the microkernel's register block (up to 14 tokens) and
// the 128 tokens packed at a time, I2_S widths with a last half chunk (n % 256 = 128), extreme
// activations (all -128 or 127) and all-2 codes, and y rows wider than n_rows.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"
#include "kernels/tables.hpp"

namespace bitnet::kernels {
namespace {

std::vector<const KernelTable*> gemm_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* k : optimised_tables())
    if (k->gemm_tq2_0_q8_k != nullptr || k->gemm_i2s_i8 != nullptr) out.push_back(k);
  return out;
}

enum class Fill { random, extreme, all_two };

std::vector<int8_t> activations(std::mt19937& rng, size_t n, Fill fill) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> q(n);
  for (auto& v : q) v = static_cast<int8_t>(fill == Fill::random ? d(rng) : (d(rng) & 1) ? -128 : 127);
  return q;
}

// Q8_K blocks with the given qs (d and bsums made consistent with them).
std::vector<BlockQ8K> q8k_blocks(std::mt19937& rng, const std::vector<int8_t>& qs) {
  std::uniform_real_distribution<float> d(1e-4f, 0.05f);
  std::vector<BlockQ8K> a(qs.size() / kQK_K);
  for (size_t b = 0; b < a.size(); ++b) {
    a[b].d = d(rng);
    for (int j = 0; j < kQK_K; ++j) a[b].qs[j] = qs[b * kQK_K + static_cast<size_t>(j)];
    for (int g = 0; g < kQK_K / 16; ++g) {
      int s = 0;
      for (int j = 0; j < 16; ++j) s += a[b].qs[16 * g + j];
      a[b].bsums[g] = static_cast<int16_t>(s);
    }
  }
  return a;
}

// Ternary values -1..1 (all +1, code 2, for all_two); I2_S may also see code 3 (value 2).
std::vector<int> weights(std::mt19937& rng, size_t n, Fill fill, int hi) {
  if (fill == Fill::all_two) return std::vector<int>(n, 1);
  return test::random_ints(rng, n, -1, hi);
}

void check_tq2_0(const KernelTable& k, std::mt19937& rng, int64_t n, int64_t rows, int64_t tokens, Fill fill) {
  SCOPED_TRACE(std::string(k.name) + " tq2_0 n=" + std::to_string(n) + " rows=" + std::to_string(rows) +
               " tokens=" + std::to_string(tokens) + " fill=" + std::to_string(static_cast<int>(fill)));
  const int64_t nb = n / kQK_K;
  std::vector<uint16_t> d = test::random_f16(rng, static_cast<size_t>(nb * rows), 0.001f, 2.0f);
  d[d.size() / 2] = 0;  // a zero-scale block
  const test::Bytes w = test::pack_tq2_0(weights(rng, static_cast<size_t>(n * rows), fill, 1), d);
  const std::vector<BlockQ8K> a = q8k_blocks(rng, activations(rng, static_cast<size_t>(n * tokens), fill));
  const int64_t y_stride = rows + 5;
  std::vector<float> y(static_cast<size_t>(y_stride * tokens), -7.0f);
  k.gemm_tq2_0_q8_k(w.data(), rows, a.data(), tokens, n, y.data(), y_stride);
  int bad = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < y_stride; ++r) {
      const float got = y[static_cast<size_t>(t * y_stride + r)];
      const float want = r < rows ? reference_table().dot_tq2_0_q8_k(w.data() + r * nb * 66, a.data() + t * nb, n) : -7.0f;
      if (got != want && ++bad <= 5) ADD_FAILURE() << "r=" << r << " t=" << t << " got " << got << " want " << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

void check_i2s(const KernelTable& k, std::mt19937& rng, int64_t n, int64_t rows, int64_t tokens, Fill fill) {
  SCOPED_TRACE(std::string(k.name) + " i2s n=" + std::to_string(n) + " rows=" + std::to_string(rows) +
               " tokens=" + std::to_string(tokens) + " fill=" + std::to_string(static_cast<int>(fill)));
  const test::Bytes w = test::pack_i2s(weights(rng, static_cast<size_t>(n * rows), fill, 2), 1.0f);
  const std::vector<int8_t> q = activations(rng, static_cast<size_t>(n * tokens), fill);
  const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
  const int64_t y_stride = rows + 5;
  std::vector<int32_t> y(static_cast<size_t>(y_stride * tokens), -7);
  k.gemm_i2s_i8(wb, rows, q.data(), tokens, n, y.data(), y_stride);
  int bad = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < y_stride; ++r) {
      const int32_t got = y[static_cast<size_t>(t * y_stride + r)];
      const int32_t want = r < rows ? reference_table().dot_i2s_i8(wb, r * n, q.data() + t * n, n) : -7;
      if (got != want && ++bad <= 5) ADD_FAILURE() << "r=" << r << " t=" << t << " got " << got << " want " << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

constexpr int64_t kRows[] = {1, 3, 15, 17, 33, 65};
constexpr int64_t kTokens[] = {1, 2, 3, 4, 7, 8, 13, 14, 15, 16, 17, 29, 31, 33, 129};

TEST(VnniGemm, AtLeastOneTableHasGemmEntries) { EXPECT_FALSE(gemm_tables().empty()); }

// Every row count x token count on short rows; random, extreme and all-two fills.
TEST(VnniGemm, Tq2_0EveryShapeIsBitExact) {
  std::mt19937 rng(11);
  for (const KernelTable* k : gemm_tables()) {
    if (k->gemm_tq2_0_q8_k == nullptr) continue;
    for (int64_t n : {256, 512})
      for (int64_t rows : kRows)
        for (int64_t tokens : kTokens)
          for (Fill fill : {Fill::random, Fill::extreme, Fill::all_two}) check_tq2_0(*k, rng, n, rows, tokens, fill);
  }
}

TEST(VnniGemm, I2sEveryShapeIsBitExact) {
  std::mt19937 rng(12);
  for (const KernelTable* k : gemm_tables()) {
    if (k->gemm_i2s_i8 == nullptr) continue;
    for (int64_t n : {128, 384, 512})
      for (int64_t rows : kRows)
        for (int64_t tokens : kTokens)
          for (Fill fill : {Fill::random, Fill::extreme, Fill::all_two}) check_i2s(*k, rng, n, rows, tokens, fill);
  }
}

// The model's widths (hidden 2560, FFN 6912), where int32 sums run long, on fewer shapes.
TEST(VnniGemm, ModelWidthsAreBitExact) {
  std::mt19937 rng(13);
  for (const KernelTable* k : gemm_tables()) {
    for (int64_t n : {2560, 6912}) {
      for (auto [rows, tokens] : {std::pair<int64_t, int64_t>{33, 17}, {17, 31}, {65, 14}, {15, 129}, {3, 8}}) {
        for (Fill fill : {Fill::random, Fill::extreme, Fill::all_two}) {
          if (k->gemm_tq2_0_q8_k != nullptr) check_tq2_0(*k, rng, n, rows, tokens, fill);
          if (k->gemm_i2s_i8 != nullptr) check_i2s(*k, rng, n, rows, tokens, fill);
        }
      }
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels
