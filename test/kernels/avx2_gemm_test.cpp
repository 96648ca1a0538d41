// The AVX2 table's many-token entries against the reference dot, pair by pair, at the edges of
// their register blocks: 16-row groups (rows 1..65 leave 0..15 rows to the four-row path), 6-token
// blocks (1..13 tokens and a 129-token tail), the four-token switch between the decode and the
// prefill kernels, 128- and 256-element runs (n = 256 .. 6912, I2_S 384 too), extreme
// activations (all -128 / 127) and extreme codes (all 2, and 3 which files never hold but the
// int16 bounds must survive). Every float must be bit-identical.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"

namespace bitnet::kernels {
namespace {

const KernelTable* avx2_table_if_supported() {
  backends::register_all();
  for (const Backend& b : registered_backends())
    if (b.name == "avx2" && b.supported()) return &b.table();
  return nullptr;
}

enum class Fill { random, extreme, all_two, with_three };

// Q8_K activations with consistent bsums; `extreme` draws q from {-128, 127} only.
std::vector<BlockQ8K> activations(std::mt19937& rng, int64_t n, bool extreme) {
  std::uniform_int_distribution<int> q(-128, 127);
  std::uniform_real_distribution<float> d(0.001f, 0.1f);
  std::vector<BlockQ8K> a(static_cast<size_t>(n / kQK_K));
  for (BlockQ8K& b : a) {
    b.d = d(rng);
    for (int k = 0; k < kQK_K; ++k) {
      const int v = q(rng);
      b.qs[k] = static_cast<int8_t>(extreme ? (v & 1 ? -128 : 127) : v);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      int s = 0;
      for (int k = 0; k < 16; ++k) s += b.qs[16 * j + k];
      b.bsums[j] = static_cast<int16_t>(s);
    }
  }
  return a;
}

// Ternary values (code - 1) for `count` weights.
std::vector<int> weights(std::mt19937& rng, size_t count, Fill fill) {
  switch (fill) {
    case Fill::all_two: return std::vector<int>(count, 1);
    case Fill::with_three: return test::random_ints(rng, count, -1, 2);
    default: return test::random_ints(rng, count, -1, 1);
  }
}

struct Shape {
  int64_t rows, tokens;
};

// Row counts around the 16-row groups and 64-row unpack chunks, token counts around the 6-token
// blocks and the 4-token switch.
const std::vector<Shape>& shapes(int64_t n) {
  static const std::vector<Shape> all = {{1, 1},  {3, 5},   {7, 6},   {9, 7},   {15, 12}, {17, 13}, {33, 2},
                                         {16, 3}, {16, 4},  {32, 1},  {48, 5},  {64, 6},  {65, 129}, {80, 11},
                                         {16, 12}, {31, 9}, {64, 128}, {128, 8}};
  static const std::vector<Shape> wide = {{17, 13}, {64, 7}, {33, 4}, {16, 1}};
  return n <= 512 ? all : wide;
}

TEST(Avx2Gemm, Tq2_0IsBitExact) {
  const KernelTable* k = avx2_table_if_supported();
  if (k == nullptr) GTEST_SKIP() << "no AVX2 here";
  ASSERT_NE(k->gemm_tq2_0_q8_k, nullptr);
  std::mt19937 rng(11);
  for (int64_t n : {256, 512, 2560, 6912}) {
    for (Fill fill : {Fill::random, Fill::extreme, Fill::all_two, Fill::with_three}) {
      for (const Shape& s : shapes(n)) {
        SCOPED_TRACE("n=" + std::to_string(n) + " rows=" + std::to_string(s.rows) + " tokens=" + std::to_string(s.tokens) +
                     " fill=" + std::to_string(static_cast<int>(fill)));
        const int64_t nb = n / kQK_K;
        std::vector<uint16_t> d = test::random_f16(rng, static_cast<size_t>(nb * s.rows), 0.001f, 2.0f);
        test::Bytes w = test::pack_tq2_0(weights(rng, static_cast<size_t>(n * s.rows), fill), d);
        std::vector<BlockQ8K> a = activations(rng, n * s.tokens, fill != Fill::random);
        const int64_t y_stride = s.rows + 5;
        std::vector<float> y(static_cast<size_t>(y_stride * s.tokens), -7.0f);
        k->gemm_tq2_0_q8_k(w.data(), s.rows, a.data(), s.tokens, n, y.data(), y_stride);
        for (int64_t t = 0; t < s.tokens; ++t) {
          for (int64_t r = 0; r < s.rows; ++r) {
            const float want =
                reference_table().dot_tq2_0_q8_k(w.data() + r * nb * 66, a.data() + t * nb, n);
            ASSERT_EQ(y[static_cast<size_t>(t * y_stride + r)], want) << "r=" << r << " t=" << t;
          }
          for (int64_t r = s.rows; r < y_stride; ++r) ASSERT_EQ(y[static_cast<size_t>(t * y_stride + r)], -7.0f);
        }
      }
    }
  }
}

TEST(Avx2Gemm, I2sIsBitExact) {
  const KernelTable* k = avx2_table_if_supported();
  if (k == nullptr) GTEST_SKIP() << "no AVX2 here";
  ASSERT_NE(k->gemm_i2s_i8, nullptr);
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> qd(-128, 127);
  for (int64_t n : {256, 384, 512, 2560, 6912}) {
    for (Fill fill : {Fill::random, Fill::extreme, Fill::all_two, Fill::with_three}) {
      for (const Shape& s : shapes(n)) {
        SCOPED_TRACE("n=" + std::to_string(n) + " rows=" + std::to_string(s.rows) + " tokens=" + std::to_string(s.tokens) +
                     " fill=" + std::to_string(static_cast<int>(fill)));
        test::Bytes w = test::pack_i2s(weights(rng, static_cast<size_t>(n * s.rows), fill), 1.0f);
        const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
        std::vector<int8_t> q(static_cast<size_t>(n * s.tokens));
        for (auto& v : q) {
          const int x = qd(rng);
          v = static_cast<int8_t>(fill == Fill::random ? x : (x & 1 ? -128 : 127));
        }
        const int64_t y_stride = s.rows + 5;
        std::vector<int32_t> y(static_cast<size_t>(y_stride * s.tokens), -7);
        k->gemm_i2s_i8(wb, s.rows, q.data(), s.tokens, n, y.data(), y_stride);
        for (int64_t t = 0; t < s.tokens; ++t) {
          for (int64_t r = 0; r < s.rows; ++r)
            ASSERT_EQ(y[static_cast<size_t>(t * y_stride + r)], reference_table().dot_i2s_i8(wb, r * n, q.data() + t * n, n))
                << "r=" << r << " t=" << t;
          for (int64_t r = s.rows; r < y_stride; ++r) ASSERT_EQ(y[static_cast<size_t>(t * y_stride + r)], -7);
        }
      }
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels
