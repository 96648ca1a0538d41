// Every optimised kernel table this CPU can run, entry by entry, against the scalar reference:
// random inputs, odd sizes and tails, code 3 in I2_S, extreme activations. Integer dots and the
// ternary x Q8_K dots (same per-block float order) and the f16 dot (same float lanes) must be
// bit-exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backends/register.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"
#include "kernels/tables.hpp"

namespace bitnet::kernels {
namespace {

std::vector<int8_t> random_q(std::mt19937& rng, size_t n, bool extreme) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> q(n);
  for (auto& v : q) v = static_cast<int8_t>(extreme ? (d(rng) & 1 ? -128 : 127) : d(rng));
  return q;
}

std::vector<BlockQ8K> q8k_of(std::mt19937& rng, int64_t n) {
  std::vector<float> x = test::random_floats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
  std::vector<BlockQ8K> a(static_cast<size_t>(n / kQK_K));
  reference_table().quantize_q8_k(x.data(), n, a.data());
  return a;
}

TEST(Backends, AtLeastOneOptimisedTableRunsHere) {
  // The CI and development machines are x86-64 with AVX2; a silently empty list would make every
  // test below vacuous.
  EXPECT_FALSE(optimised_tables().empty());
}

TEST(Backends, I2sDotIsBitExact) {
  std::mt19937 rng(1);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : {128, 256, 384, 640, 2560, 6912, 128 * 33}) {
      for (bool extreme : {false, true}) {
        // Codes 0..3: files never hold 3, but the kernels must agree on it anyway.
        std::vector<int> codes = test::random_ints(rng, static_cast<size_t>(n) * 3, -1, 2);
        test::Bytes w = test::pack_i2s(codes, 1.0f);
        std::vector<int8_t> q = random_q(rng, static_cast<size_t>(n), extreme);
        const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
        for (int64_t first : {int64_t{0}, n, 2 * n, int64_t{64}, n + 32}) {  // aligned and mid-group starts
          if (first + n > static_cast<int64_t>(codes.size())) continue;
          EXPECT_EQ(k->dot_i2s_i8(wb, first, q.data(), n), reference_table().dot_i2s_i8(wb, first, q.data(), n))
              << k->name << " n=" << n << " first=" << first;
        }
      }
    }
  }
}

TEST(Backends, TernaryQ8kDotsAreBitExact) {
  std::mt19937 rng(2);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : {256, 512, 2560, 6912}) {
      std::vector<int> t = test::random_ints(rng, static_cast<size_t>(n), -1, 1);
      std::vector<uint16_t> d = test::random_f16(rng, static_cast<size_t>(n / 256), 0.001f, 2.0f);
      d[0] = 0;  // an all-zero scale block
      std::vector<BlockQ8K> a = q8k_of(rng, n);
      test::Bytes tq2 = test::pack_tq2_0(t, d), tq1 = test::pack_tq1_0(t, d);
      EXPECT_EQ(k->dot_tq2_0_q8_k(tq2.data(), a.data(), n), reference_table().dot_tq2_0_q8_k(tq2.data(), a.data(), n))
          << k->name << " n=" << n;
      EXPECT_EQ(k->dot_tq1_0_q8_k(tq1.data(), a.data(), n), reference_table().dot_tq1_0_q8_k(tq1.data(), a.data(), n))
          << k->name << " n=" << n;
      // One dot definition for both formats: what rewriting TQ1_0 as TQ2_0 at load relies on.
      EXPECT_EQ(reference_table().dot_tq1_0_q8_k(tq1.data(), a.data(), n), reference_table().dot_tq2_0_q8_k(tq2.data(), a.data(), n))
          << "n=" << n;
    }
  }
}

// The many-token entries give each (row, token) exactly what the reference dot gives: 4x4 tiles,
// their row and token tails, and a zero-scale block.
TEST(Backends, GemmEntriesAreBitExact) {
  std::mt19937 rng(5);
  size_t checked = 0;
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : {256, 768, 2560}) {
      for (auto [rows, tokens] : {std::pair<int64_t, int64_t>{4, 4}, {5, 7}, {9, 1}, {3, 9}, {13, 6}, {16, 8}, {35, 19}, {33, 4},
                                    {64, 48}, {48, 33}, {17, 16}, {32, 37}, {24, 2}, {13, 3}, {37, 1}, {8, 1}}) {
        SCOPED_TRACE(std::string(k->name) + " n=" + std::to_string(n) + " rows=" + std::to_string(rows) +
                     " tokens=" + std::to_string(tokens));
        std::vector<int> t = test::random_ints(rng, static_cast<size_t>(n * rows), -1, 1);
        std::vector<BlockQ8K> a = q8k_of(rng, n * tokens);
        const int64_t y_stride = rows + 3;
        if (k->gemm_tq2_0_q8_k != nullptr) {
          std::vector<uint16_t> d = test::random_f16(rng, static_cast<size_t>(n / 256 * rows), 0.001f, 2.0f);
          d[1 % d.size()] = 0;
          test::Bytes w = test::pack_tq2_0(t, d);
          std::vector<float> y(static_cast<size_t>(y_stride * tokens), -7.0f);
          k->gemm_tq2_0_q8_k(w.data(), rows, a.data(), tokens, n, y.data(), y_stride);
          const size_t row_bytes = static_cast<size_t>(n / 256 * 66);
          for (int64_t tk = 0; tk < tokens; ++tk) {
            for (int64_t r = 0; r < rows; ++r) {
              EXPECT_EQ(y[static_cast<size_t>(tk * y_stride + r)],
                        reference_table().dot_tq2_0_q8_k(w.data() + static_cast<size_t>(r) * row_bytes,
                                                         a.data() + tk * (n / 256), n))
                  << "tq2_0 r=" << r << " t=" << tk;
              ++checked;
            }
          }
        }
        if (k->gemm_i2s_i8 != nullptr) {
          std::vector<int> codes = test::random_ints(rng, static_cast<size_t>(n * rows), -1, 2);  // code 3 too
          test::Bytes w = test::pack_i2s(codes, 1.0f);
          std::vector<int8_t> q = random_q(rng, static_cast<size_t>(n * tokens), tokens % 2 == 1);
          std::vector<int32_t> y(static_cast<size_t>(y_stride * tokens), -7);
          const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
          k->gemm_i2s_i8(wb, rows, q.data(), tokens, n, y.data(), y_stride);
          for (int64_t tk = 0; tk < tokens; ++tk) {
            for (int64_t r = 0; r < rows; ++r) {
              EXPECT_EQ(y[static_cast<size_t>(tk * y_stride + r)], reference_table().dot_i2s_i8(wb, r * n, q.data() + tk * n, n))
                  << "i2s r=" << r << " t=" << tk;
              ++checked;
            }
          }
        }
      }
    }
  }
  // This CPU's best table has both entries (AVX-512 VNNI machines), or the test proved nothing.
  bool any = false;
  for (const KernelTable* k : optimised_tables()) any |= k->gemm_tq2_0_q8_k != nullptr;
  if (any) {
    EXPECT_GT(checked, 0u);
  }
}

// Through matmul, with row and token counts past its tile sizes and a pool of three threads, and
// one token (decode) with more rows than one I2_S call takes, on one thread and on three: the
// same floats as the reference table.
TEST(Backends, MatmulMatchesTheReference) {
  std::mt19937 rng(6);
  ThreadPool pool(3);
  struct Shape {
    int64_t rows, tokens;
    ThreadPool* pool;
  };
  for (const KernelTable* k : optimised_tables()) {
    for (auto [type, shape] : {std::pair{gguf::GgmlType::TQ2_0, Shape{131, 133, &pool}}, {gguf::GgmlType::I2_S, Shape{131, 133, &pool}},
                               {gguf::GgmlType::TQ2_0, Shape{8229, 1, nullptr}}, {gguf::GgmlType::I2_S, Shape{8229, 1, nullptr}},
                               {gguf::GgmlType::I2_S, Shape{8229, 1, &pool}}}) {
      const int64_t cols = 512, rows = shape.rows, tokens = shape.tokens;
      std::vector<int> t = test::random_ints(rng, static_cast<size_t>(cols * rows), -1, 1);
      test::Bytes w = type == gguf::GgmlType::TQ2_0
                          ? test::pack_tq2_0(t, test::random_f16(rng, static_cast<size_t>(cols / 256 * rows), 0.01f, 0.1f))
                          : test::pack_i2s(t, 0.37f);
      const WeightView view{type, cols, rows, w.data(), type == gguf::GgmlType::I2_S ? 0.37f : 1.0f};
      std::vector<float> x = test::random_floats(rng, static_cast<size_t>(cols * tokens), -2.0f, 2.0f);
      std::vector<float> got(static_cast<size_t>(rows * tokens)), want(got.size());
      MatmulScratch s1, s2;
      matmul(*k, view, x.data(), cols, tokens, got.data(), rows, s1, shape.pool);
      matmul(reference_table(), view, x.data(), cols, tokens, want.data(), rows, s2);
      EXPECT_EQ(got, want) << k->name << " " << gguf::type_name(type) << " rows=" << rows << " tokens=" << tokens;
    }
  }
}

// matmul_group: the same floats as one matmul per weight, for every table (reference too), with a
// pool whose ranges cut across the weights' borders; weights of different types fall back to
// separate matmuls.
TEST(Backends, MatmulGroupEqualsSeparateMatmuls) {
  std::mt19937 rng(9);
  ThreadPool pool(3);
  std::vector<const KernelTable*> tables = optimised_tables();
  tables.push_back(&reference_table());
  const int64_t cols = 512;
  std::vector<test::Bytes> packed;
  std::vector<WeightView> views;
  for (int64_t rows : {40, 24, 70}) {
    std::vector<int> t = test::random_ints(rng, static_cast<size_t>(cols * rows), -1, 1);
    packed.push_back(test::pack_tq2_0(t, test::random_f16(rng, static_cast<size_t>(cols / 256 * rows), 0.01f, 0.1f)));
    views.push_back(WeightView{gguf::GgmlType::TQ2_0, cols, rows, packed.back().data()});
  }
  std::vector<float> f32_rows = test::random_floats(rng, static_cast<size_t>(cols * 9), -1.0f, 1.0f);
  const WeightView f32{gguf::GgmlType::F32, cols, 9, reinterpret_cast<const std::byte*>(f32_rows.data())};
  for (const KernelTable* k : tables) {
    for (int64_t tokens : {1, 37}) {
      std::vector<float> x = test::random_floats(rng, static_cast<size_t>(cols * tokens), -2.0f, 2.0f);
      for (bool mixed : {false, true}) {
        std::vector<const WeightView*> ws = {&views[0], &views[1], &views[2]};
        if (mixed) ws[1] = &f32;
        std::vector<std::vector<float>> got, want;
        std::vector<MatmulTarget> targets;
        for (const WeightView* w : ws) {
          got.emplace_back(static_cast<size_t>(w->rows * tokens), -1.0f);
          want.emplace_back(static_cast<size_t>(w->rows * tokens), -2.0f);
        }
        for (size_t i = 0; i < ws.size(); ++i) targets.push_back({ws[i], got[i].data(), ws[i]->rows});
        MatmulScratch s1, s2;
        matmul_group(*k, targets, x.data(), cols, tokens, s1, &pool);
        for (size_t i = 0; i < ws.size(); ++i) matmul(*k, *ws[i], x.data(), cols, tokens, want[i].data(), ws[i]->rows, s2);
        EXPECT_EQ(got, want) << k->name << " tokens=" << tokens << (mixed ? " mixed" : "");
      }
    }
  }
}

TEST(Backends, QuantizeQ8kIsBitExact) {
  std::mt19937 rng(7);
  for (const KernelTable* k : optimised_tables()) {
    const int64_t n = 256 * 9;
    std::vector<float> x = test::random_floats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
    for (int64_t i = 256; i < 512; ++i) x[static_cast<size_t>(i)] = 0.0f;                 // an all-zero block
    x[600] = 5.0f, x[700] = -5.0f;                                                      // a tie: the first wins
    x[900] = -7.5f;                                                                     // a negative maximum
    for (int64_t i = 1024; i < 1280; ++i) x[static_cast<size_t>(i)] *= 1e-30f;          // tiny values
    for (int64_t i = 1280; i < 1536; ++i) x[static_cast<size_t>(i)] = (i % 2 ? 0.5f : -0.5f) * 3.0f;  // ties of .5 after scaling
    x[1600] = std::numeric_limits<float>::infinity();                                   // not finite: the reference decides
    x[1900] = std::numeric_limits<float>::quiet_NaN();
    std::vector<BlockQ8K> got(static_cast<size_t>(n / 256)), want(got.size());
    k->quantize_q8_k(x.data(), n, got.data());
    reference_table().quantize_q8_k(x.data(), n, want.data());
    for (size_t b = 0; b < got.size(); ++b) {
      EXPECT_EQ(std::memcmp(&got[b].d, &want[b].d, sizeof(float)), 0) << k->name << " block " << b;
      EXPECT_EQ(std::memcmp(got[b].qs, want[b].qs, sizeof got[b].qs), 0) << k->name << " block " << b;
      EXPECT_EQ(std::memcmp(got[b].bsums, want[b].bsums, sizeof got[b].bsums), 0) << k->name << " block " << b;
    }
  }
}

TEST(Backends, F16DotBitExact) {
  std::mt19937 rng(3);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : {1, 7, 8, 15, 16, 17, 63, 64, 65, 255, 2560, 2563}) {
      std::vector<uint16_t> w = test::random_f16(rng, static_cast<size_t>(n), -2.0f, 2.0f);
      std::vector<uint16_t> a = test::random_f16(rng, static_cast<size_t>(n), -4.0f, 4.0f);
      const float got = k->dot_f16_f16(w.data(), a.data(), n);
      const float want = reference_table().dot_f16_f16(w.data(), a.data(), n);
      EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << k->name << " n=" << n << ": " << got << " vs " << want;
    }
  }
}

// The strided many-token F16 entry: each result equal to the reference dot bit for bit, for
// short rows (attention's head_dim: 64 and 128 have their own kernel, 16 rows at a time), tails,
// token counts across its groups of four (3 and 7 leave a single token in a pair), row counts
// across blocks of four, eight and sixteen, long rows walked in tiles (a decode's V rows), and
// rows longer than its activation buffer (its fallback).
TEST(Backends, GemmF16BitExact) {
  std::mt19937 rng(8);
  size_t checked = 0;
  for (const KernelTable* k : optimised_tables()) {
    if (k->gemm_f16 == nullptr) continue;
    for (int64_t n : {1, 15, 16, 17, 63, 64, 65, 128, 300, 1100, 2560, 5000, 9000, 16400}) {
      for (auto [rows, tokens] : {std::pair<int64_t, int64_t>{3, 1}, {13, 1}, {8, 1}, {5, 4}, {7, 6}, {2, 9}, {9, 4},
                                  {12, 8}, {37, 3}, {18, 7}}) {
        if (n > 5000 && rows > 12) continue;  // the long rows' paths are covered by the smaller shapes
        const int64_t w_stride = n + 5, a_stride = n + 3, y_stride = rows + 2;
        std::vector<uint16_t> w = test::random_f16(rng, static_cast<size_t>(w_stride * rows), -2.0f, 2.0f);
        std::vector<uint16_t> a = test::random_f16(rng, static_cast<size_t>(a_stride * tokens), -4.0f, 4.0f);
        std::vector<float> y(static_cast<size_t>(y_stride * tokens), -7.0f);
        k->gemm_f16(w.data(), w_stride, rows, a.data(), a_stride, tokens, n, y.data(), y_stride);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t r = 0; r < rows; ++r) {
            const float want = reference_table().dot_f16_f16(w.data() + r * w_stride, a.data() + t * a_stride, n);
            const float got = y[static_cast<size_t>(t * y_stride + r)];
            EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << k->name << " n=" << n << " r=" << r << " t=" << t;
            ++checked;
          }
          EXPECT_EQ(y[static_cast<size_t>(t * y_stride + rows)], -7.0f) << "wrote past its rows";
        }
      }
    }
  }
  bool any = false;
  for (const KernelTable* k : optimised_tables()) any |= k->gemm_f16 != nullptr;
  if (any) {
    EXPECT_GT(checked, 0u);
  }
}

// The output screen's integer row products: odd widths (every tail length of the 16- and
// 32-element steps), row counts around the blocks of four, random and extreme values.
TEST(Backends, GemvI8I16EqualsTheReference) {
  std::mt19937 rng(9);
  size_t checked = 0;
  for (const KernelTable* k : optimised_tables()) {
    if (k->gemv_i8_i16 == nullptr) continue;
    for (int64_t n : {1, 15, 16, 17, 31, 33, 47, 100, 2560, 2561}) {
      for (int64_t rows : {1, 3, 4, 5, 9}) {
        for (bool extreme : {false, true}) {
          std::uniform_int_distribution<int> dw(-128, 127), da(-4095, 4095);
          std::vector<int8_t> w(static_cast<size_t>(rows * n));
          std::vector<int16_t> a(static_cast<size_t>(n));
          for (auto& v : w) v = static_cast<int8_t>(extreme ? -128 : dw(rng));
          for (auto& v : a) v = static_cast<int16_t>(extreme ? -4095 : da(rng));
          std::vector<int32_t> got(static_cast<size_t>(rows) + 1, -7), want(static_cast<size_t>(rows));
          k->gemv_i8_i16(w.data(), rows, a.data(), n, got.data());
          reference_table().gemv_i8_i16(w.data(), rows, a.data(), n, want.data());
          for (int64_t r = 0; r < rows; ++r)
            EXPECT_EQ(got[static_cast<size_t>(r)], want[static_cast<size_t>(r)]) << k->name << " n=" << n << " r=" << r;
          EXPECT_EQ(got.back(), -7) << "wrote past its rows";
          ++checked;
        }
      }
    }
  }
  if (!optimised_tables().empty()) {
    EXPECT_GT(checked, 0u);
  }
}

TEST(Backends, ToF16IsBitExactOnFiniteInputs) {
  std::mt19937 rng(4);
  for (const KernelTable* k : optimised_tables()) {
    std::vector<float> x = test::random_floats(rng, 1003, -70000.0f, 70000.0f);
    // Ties, subnormals, overflow to infinity, signed zero.
    const float specials[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-8f, -6e-8f, 2.9802322e-8f, 1.00048828125f, 1.00146484375f};
    x.insert(x.begin(), std::begin(specials), std::end(specials));
    std::vector<uint16_t> got(x.size()), want(x.size());
    k->to_f16(x.data(), static_cast<int64_t>(x.size()), got.data());
    reference_table().to_f16(x.data(), static_cast<int64_t>(x.size()), want.data());
    EXPECT_EQ(got, want) << k->name;
  }
}

}  // namespace
}  // namespace bitnet::kernels
