// The Q6_K x Q8_K entries of every optimised table against the scalar reference, bit for bit:
// random packed blocks (any ql/qh bytes, scales including -128 and 127, random finite f16 d),
// random Q8_K activations including q = -128, the extreme corner (-32 weights, -128 scales,
// -128 activations: class sums of exactly -2^24), row counts that leave tails, and matmul through
// a pool.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/register.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"
#include "kernels/tables.hpp"

namespace bitnet::kernels {
namespace {

constexpr size_t kQ6KBytes = 210;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// A random finite f16 of either sign (normal or subnormal).
uint16_t random_finite_f16(std::mt19937& rng) {
  std::uniform_int_distribution<int> d(0, 0xffff);
  for (;;) {
    const auto h = static_cast<uint16_t>(d(rng));
    if ((h & 0x7c00) != 0x7c00) return h;
  }
}

// n_rows rows of n elements: random ql and qh bytes (every 6-bit value), random scales with
// -128 and 127 forced into some blocks, random finite d.
test::Bytes random_q6_k(std::mt19937& rng, int64_t n_rows, int64_t n) {
  const auto blocks = static_cast<size_t>(n_rows * n / 256);
  test::Bytes b(blocks * kQ6KBytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < blocks; ++i) {
    std::byte* blk = b.data() + i * kQ6KBytes;
    for (size_t k = 0; k < 208; ++k) blk[k] = static_cast<std::byte>(byte(rng));
    if (i % 3 == 0) blk[192 + i % 16] = static_cast<std::byte>(0x80);  // scale -128
    if (i % 3 == 1) blk[192 + i % 16] = static_cast<std::byte>(0x7f);  // scale 127
    test::put_u16(b, i * kQ6KBytes + 208, random_finite_f16(rng));
  }
  return b;
}

// n_tokens Q8_K rows of n elements with random q (including -128) and random positive d.
std::vector<BlockQ8K> random_q8_k(std::mt19937& rng, int64_t n_tokens, int64_t n) {
  std::vector<BlockQ8K> a(static_cast<size_t>(n_tokens * n / 256));
  std::uniform_int_distribution<int> q(-128, 127);
  std::uniform_real_distribution<float> d(1e-4f, 0.1f);
  for (BlockQ8K& blk : a) {
    blk.d = d(rng);
    for (int8_t& v : blk.qs) v = static_cast<int8_t>(q(rng));
    if (q(rng) < -64) blk.qs[q(rng) & 255] = -128;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int k = 0; k < 16; ++k) s += blk.qs[16 * j + k];
      blk.bsums[j] = static_cast<int16_t>(s);
    }
  }
  return a;
}

const uint8_t* row_of(const test::Bytes& w, int64_t r, int64_t n) {
  return reinterpret_cast<const uint8_t*>(w.data()) + static_cast<size_t>(r * n / 256) * kQ6KBytes;
}

TEST(Q6K, TablesHaveTheEntries) {
  // Every optimised table on this x86-64 development machine has both: or the tests below prove
  // nothing.
  std::vector<const KernelTable*> tables = optimised_tables();
  ASSERT_FALSE(tables.empty());
  for (const KernelTable* k : tables) {
    EXPECT_NE(k->gemm_q6_k_q8_k, nullptr) << k->name;
    EXPECT_NE(k->dot_q6_k_q8_k, reference_table().dot_q6_k_q8_k) << k->name;
  }
}

TEST(Q6K, DotIsBitExact) {
  std::mt19937 rng(61);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : {256, 512, 2560, 6912}) {
      for (int rep = 0; rep < 8; ++rep) {
        const test::Bytes w = random_q6_k(rng, 1, n);
        const std::vector<BlockQ8K> a = random_q8_k(rng, 1, n);
        const float want = reference_table().dot_q6_k_q8_k(w.data(), a.data(), n);
        EXPECT_EQ(bits(k->dot_q6_k_q8_k(w.data(), a.data(), n)), bits(want)) << k->name << " n=" << n << " rep=" << rep;
      }
    }
  }
}

// The largest class sums: every weight -32 (stored 0), every scale -128, every q -128 gives
// -2^24 per class; q = 127 and scale 127 the largest positive ones, and mixed signs per class.
TEST(Q6K, DotIsBitExactAtTheExtremes) {
  std::mt19937 rng(62);
  const int64_t n = 512;
  for (const KernelTable* k : optimised_tables()) {
    for (int corner = 0; corner < 4; ++corner) {
      std::vector<int> v(static_cast<size_t>(n)), sc(static_cast<size_t>(n / 16));
      for (size_t i = 0; i < v.size(); ++i) v[i] = corner % 2 == 0 ? -32 : (i % 3 == 0 ? 31 : -32);
      for (size_t i = 0; i < sc.size(); ++i) sc[i] = corner < 2 ? -128 : (i % 2 == 0 ? 127 : -128);
      const test::Bytes w = test::pack_q6_k(v, sc, {0x3c00, 0xbc00});  // d = 1, -1
      std::vector<BlockQ8K> a = random_q8_k(rng, 1, n);
      for (BlockQ8K& blk : a) {
        blk.d = 1.0f;
        for (size_t i = 0; i < 256; ++i)
          blk.qs[i] = static_cast<int8_t>(corner == 0 ? -128 : (i % 5 == 0 ? 127 : -128));
      }
      const float want = reference_table().dot_q6_k_q8_k(w.data(), a.data(), n);
      EXPECT_EQ(bits(k->dot_q6_k_q8_k(w.data(), a.data(), n)), bits(want)) << k->name << " corner=" << corner;
    }
  }
}

// Every (row, token) of the many-row entry equals the reference dot; y outside the rows is not
// written.
TEST(Q6K, GemmIsBitExact) {
  std::mt19937 rng(63);
  size_t checked = 0;
  for (const KernelTable* k : optimised_tables()) {
    if (k->gemm_q6_k_q8_k == nullptr) continue;
    for (int64_t n : {256, 512, 2560}) {
      for (int64_t rows : {1, 3, 4, 5, 13, 37}) {
        for (int64_t tokens : {1, 2, 3, 4, 17, 33}) {
          SCOPED_TRACE(std::string(k->name) + " n=" + std::to_string(n) + " rows=" + std::to_string(rows) +
                       " tokens=" + std::to_string(tokens));
          const test::Bytes w = random_q6_k(rng, rows, n);
          const std::vector<BlockQ8K> a = random_q8_k(rng, tokens, n);
          const int64_t y_stride = rows + 3;
          std::vector<float> y(static_cast<size_t>(y_stride * tokens), -7.0f);
          k->gemm_q6_k_q8_k(w.data(), rows, a.data(), tokens, n, y.data(), y_stride);
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < y_stride; ++r) {
              const float got = y[static_cast<size_t>(t * y_stride + r)];
              if (r >= rows) {
                EXPECT_EQ(got, -7.0f) << "wrote past the rows: r=" << r << " t=" << t;
                continue;
              }
              const float want = reference_table().dot_q6_k_q8_k(row_of(w, r, n), a.data() + t * (n / 256), n);
              EXPECT_EQ(bits(got), bits(want)) << "r=" << r << " t=" << t;
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0u);
}

// Through matmul (activation quantization, tiles, the pool's row ranges): the same floats as the
// reference table on no pool, one thread and three, for decode and prefill, with rows past one
// tile and not a multiple of 4.
TEST(Q6K, MatmulMatchesTheReference) {
  std::mt19937 rng(64);
  ThreadPool one(1), three(3);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t cols : {512, 2560}) {
      for (int64_t tokens : {1, 3, 33, 133}) {
        const int64_t rows = tokens == 1 ? 1031 : 131;
        const test::Bytes w = random_q6_k(rng, rows, cols);
        const WeightView view{gguf::GgmlType::Q6_K, cols, rows, w.data()};
        const std::vector<float> x = test::random_floats(rng, static_cast<size_t>(cols * tokens), -2.0f, 2.0f);
        std::vector<float> want(static_cast<size_t>(rows * tokens));
        MatmulScratch s0;
        matmul(reference_table(), view, x.data(), cols, tokens, want.data(), rows, s0);
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &one, &three}) {
          std::vector<float> got(want.size(), -7.0f);
          MatmulScratch s1;
          matmul(*k, view, x.data(), cols, tokens, got.data(), rows, s1, pool);
          EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
              << k->name << " cols=" << cols << " tokens=" << tokens << " threads=" << (pool ? pool->size() : 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels
