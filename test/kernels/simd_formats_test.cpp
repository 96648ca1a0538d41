// The Q8_0, Q4_0, BF16 and F32 entries of every optimised table against the scalar reference,
// bit for bit: the two Q8_0-activation dots (random packed blocks with every byte value,
// random finite f16 scales of either sign, the extreme blocks), the Q8_0 and BF16 activation
// converters (ties, zeros of both signs, subnormals, NaNs), the BF16 and F32 dots in the
// reference's 64-lane order (lengths that leave every kind of tail, lanes that end at -0,
// products that overflow or underflow), and matmul through a pool for the four types.
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/base/thread_pool.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"
#include "kernels/tables.hpp"

namespace bitnet::kernels {
namespace {

const KernelTable& R = reference_table();

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

// A random finite f16 of either sign (normal or subnormal).
uint16_t random_finite_f16(std::mt19937& rng) {
  std::uniform_int_distribution<int> d(0, 0xffff);
  for (;;) {
    const auto h = static_cast<uint16_t>(d(rng));
    if ((h & 0x7c00) != 0x7c00) return h;
  }
}

// n_rows rows of n elements of Q8_0 (kBytes 34) or Q4_0 (18): every qs byte value, finite d.
test::Bytes random_blocks(std::mt19937& rng, size_t block_bytes, int64_t n_rows, int64_t n) {
  const auto blocks = static_cast<size_t>(n_rows * n / 32);
  test::Bytes b(blocks * block_bytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < blocks; ++i) {
    for (size_t k = 2; k < block_bytes; ++k) b[i * block_bytes + k] = static_cast<std::byte>(byte(rng));
    test::put_u16(b, i * block_bytes, random_finite_f16(rng));
  }
  return b;
}

// n_tokens Q8_0 rows of n elements: any q (-128 included), any finite d of either sign.
std::vector<BlockQ8_0> random_q8_0(std::mt19937& rng, int64_t n_tokens, int64_t n) {
  std::vector<BlockQ8_0> a(static_cast<size_t>(n_tokens * n / 32));
  std::uniform_int_distribution<int> q(-128, 127);
  for (BlockQ8_0& blk : a) {
    blk.d = random_finite_f16(rng);
    for (int8_t& v : blk.qs) v = static_cast<int8_t>(q(rng));
  }
  return a;
}

using DotQ8_0Entry = float (*)(const void*, const BlockQ8_0*, int64_t);
struct Q8_0Type {
  const char* name;
  size_t block_bytes;
  DotQ8_0Entry KernelTable::*dot;
};
constexpr Q8_0Type kQ8_0Types[] = {{"q8_0", 34, &KernelTable::dot_q8_0_q8_0}, {"q4_0", 18, &KernelTable::dot_q4_0_q8_0}};

// Lengths that leave no tail, and every other tail, of the 8- and 16-block groups.
constexpr int64_t kBlockLengths[] = {32, 64, 96, 256, 288, 512, 544, 2560, 6912};
// Lengths for the element dots: none or any tail of the 8-, 16- and 64-element steps.
constexpr int64_t kFloatLengths[] = {1, 7, 8, 15, 16, 17, 63, 64, 65, 100, 1000, 2560, 6912};

TEST(SimdFormats, TablesHaveTheEntries) {
  // Every optimised table on this x86-64 development machine has them: or the tests below prove
  // nothing.
  const std::vector<const KernelTable*> tables = optimised_tables();
  ASSERT_FALSE(tables.empty());
  for (const KernelTable* k : tables) {
    EXPECT_NE(k->dot_q8_0_q8_0, R.dot_q8_0_q8_0) << k->name;
    EXPECT_NE(k->dot_q4_0_q8_0, R.dot_q4_0_q8_0) << k->name;
    EXPECT_NE(k->quantize_q8_0, R.quantize_q8_0) << k->name;
    EXPECT_NE(k->dot_bf16_bf16, R.dot_bf16_bf16) << k->name;
    EXPECT_NE(k->dot_f32_f32, R.dot_f32_f32) << k->name;
    EXPECT_NE(k->to_bf16, R.to_bf16) << k->name;
    if (k->name == "avx512") {
      EXPECT_NE(k->gemm_q8_0_q8_0, nullptr);
      EXPECT_NE(k->gemm_q4_0_q8_0, nullptr);
    }
  }
}

TEST(SimdFormats, Q8_0DotsAreBitExact) {
  std::mt19937 rng(81);
  for (const KernelTable* k : optimised_tables()) {
    for (const Q8_0Type& type : kQ8_0Types) {
      for (int64_t n : kBlockLengths) {
        for (int rep = 0; rep < 6; ++rep) {
          const test::Bytes w = random_blocks(rng, type.block_bytes, 1, n);
          const std::vector<BlockQ8_0> a = random_q8_0(rng, 1, n);
          const float want = (R.*type.dot)(w.data(), a.data(), n);
          EXPECT_EQ(bits((k->*type.dot)(w.data(), a.data(), n)), bits(want))
              << k->name << " " << type.name << " n=" << n << " rep=" << rep;
        }
      }
    }
  }
}

// Integer sums at their largest (every weight and activation -128 or 127, Q4_0's -8 and 7),
// zero blocks (d = 0 or -0, qs = 0) between live ones, and the largest f16 scales.
TEST(SimdFormats, Q8_0DotsAreBitExactAtTheExtremes) {
  const int64_t n = 6912;
  const size_t nb = n / 32;
  for (const KernelTable* k : optimised_tables()) {
    for (int corner = 0; corner < 4; ++corner) {
      std::vector<int> v8(static_cast<size_t>(n)), v4(static_cast<size_t>(n));
      std::vector<uint16_t> dw(nb);
      std::vector<BlockQ8_0> a(nb);
      for (size_t i = 0; i < v8.size(); ++i) {
        const bool hi = corner == 1 || (corner >= 2 && i % 3 == 0);
        v8[i] = hi ? 127 : -128;
        v4[i] = hi ? 7 : -8;
      }
      for (size_t b = 0; b < nb; ++b) {
        dw[b] = corner == 3 ? (b % 2 == 0 ? 0x7bff : 0xfbff) : (b % 5 == 4 ? (b % 2 == 0 ? 0x0000 : 0x8000) : 0x3c00);
        a[b].d = corner == 3 ? 0x7bff : (b % 7 == 6 ? 0x8000 : 0xbc00);
        for (size_t j = 0; j < 32; ++j) a[b].qs[j] = static_cast<int8_t>(corner == 2 && j % 2 == 0 ? 127 : -128);
        if (b % 11 == 10)
          for (int8_t& q : a[b].qs) q = 0;
      }
      const test::Bytes w8 = test::pack_q8_0(v8, dw), w4 = test::pack_q4_0(v4, dw);
      for (int64_t len : {int64_t{32}, int64_t{480}, n}) {
        EXPECT_EQ(bits(k->dot_q8_0_q8_0(w8.data(), a.data(), len)), bits(R.dot_q8_0_q8_0(w8.data(), a.data(), len)))
            << k->name << " corner=" << corner << " n=" << len;
        EXPECT_EQ(bits(k->dot_q4_0_q8_0(w4.data(), a.data(), len)), bits(R.dot_q4_0_q8_0(w4.data(), a.data(), len)))
            << k->name << " corner=" << corner << " n=" << len;
      }
    }
  }
}

// Every (row, token) of the many-row entries equals the reference dot; y outside the rows is not
// written. Row counts around the 16-row vectors and the 64-row tiles, token counts around the
// dot fallback (below 3) and the 128-token tiles; rows of 2, 4 and 8 blocks (a Q8_0 KV cache's
// heads, whose tiles are prefetched) too.
TEST(SimdFormats, Q8_0GemmsAreBitExact) {
  using GemmEntry = void (*)(const void*, int64_t, const BlockQ8_0*, int64_t, int64_t, float*, int64_t);
  const GemmEntry KernelTable::*gemms[] = {&KernelTable::gemm_q8_0_q8_0, &KernelTable::gemm_q4_0_q8_0};
  std::mt19937 rng(87);
  size_t checked = 0;
  for (const KernelTable* k : optimised_tables()) {
    for (size_t ti = 0; ti < 2; ++ti) {
      const Q8_0Type& type = kQ8_0Types[ti];
      const GemmEntry gemm = k->*gemms[ti];
      if (gemm == nullptr) continue;
      for (int64_t n : {32, 64, 96, 128, 256, 2560}) {  // 64-256: attention's keys
        for (int64_t rows : {1, 3, 15, 16, 17, 37, 64, 65, 130}) {
          for (int64_t tokens : {1, 2, 3, 4, 17, 130}) {
            if (n == 2560 && rows * tokens > 2000) continue;  // the large shapes once are enough
            SCOPED_TRACE(std::string(k->name) + " " + type.name + " n=" + std::to_string(n) +
                         " rows=" + std::to_string(rows) + " tokens=" + std::to_string(tokens));
            const test::Bytes w = random_blocks(rng, type.block_bytes, rows, n);
            const std::vector<BlockQ8_0> a = random_q8_0(rng, tokens, n);
            const int64_t y_stride = rows + 3;
            std::vector<float> y(static_cast<size_t>(y_stride * tokens), -7.0f);
            gemm(w.data(), rows, a.data(), tokens, n, y.data(), y_stride);
            const size_t row_bytes = static_cast<size_t>(n / 32) * type.block_bytes;
            for (int64_t t = 0; t < tokens; ++t) {
              for (int64_t r = 0; r < y_stride; ++r) {
                const float got = y[static_cast<size_t>(t * y_stride + r)];
                if (r >= rows) {
                  ASSERT_EQ(got, -7.0f) << "wrote past the rows: r=" << r << " t=" << t;
                  continue;
                }
                const float want = (R.*type.dot)(w.data() + static_cast<size_t>(r) * row_bytes, a.data() + t * (n / 32), n);
                ASSERT_EQ(bits(got), bits(want)) << "r=" << r << " t=" << t;
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0u);
}

void expect_same_blocks(const KernelTable& k, const std::vector<float>& x, const std::string& what) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<BlockQ8_0> want(x.size() / 32), got(x.size() / 32);
  std::memset(got.data(), 0x5a, got.size() * sizeof(BlockQ8_0));
  R.quantize_q8_0(x.data(), n, want.data());
  k.quantize_q8_0(x.data(), n, got.data());
  for (size_t b = 0; b < want.size(); ++b)
    ASSERT_EQ(0, std::memcmp(&got[b], &want[b], sizeof(BlockQ8_0))) << k.name << " " << what << " block " << b;
}

TEST(SimdFormats, QuantizeQ8_0IsBitExact) {
  std::mt19937 rng(82);
  for (const KernelTable* k : optimised_tables()) {
    for (float range : {1e-30f, 1e-3f, 1.0f, 300.0f, 1e30f, 3e38f})
      for (int64_t n : kBlockLengths)
        expect_same_blocks(*k, test::random_floats(rng, static_cast<size_t>(n), -range, range), "random " + std::to_string(range));
    // Exact ties of roundf (d = 1: x = k + 0.5 rounds away from zero), zeros of both signs, a
    // zero block, -0 everywhere, the largest floats, a block whose d is subnormal (the reference's).
    std::vector<float> x(32 * 8, 0.0f);
    for (size_t j = 0; j < 32; ++j) x[j] = j == 0 ? 127.0f : (j % 2 == 0 ? 1.0f : -1.0f) * (static_cast<float>(j) + 0.5f);
    for (size_t j = 32; j < 64; ++j) x[j] = j == 32 ? -127.0f : (j % 3 == 0 ? -0.0f : 0.5f * static_cast<float>(j % 5));
    for (size_t j = 96; j < 128; ++j) x[j] = -0.0f;
    for (size_t j = 128; j < 160; ++j) x[j] = j % 2 == 0 ? FLT_MAX : -FLT_MAX;
    for (size_t j = 160; j < 192; ++j) x[j] = (j % 2 == 0 ? 1e-36f : -3e-37f);
    for (size_t j = 192; j < 224; ++j) x[j] = FLT_MIN * static_cast<float>(j - 190);  // d subnormal too
    for (size_t j = 224; j < 256; ++j) x[j] = std::bit_cast<float>(static_cast<uint32_t>(j));  // subnormals
    expect_same_blocks(*k, x, "edges");
  }
}

TEST(SimdFormats, ToBf16IsBitExact) {
  std::mt19937 rng(83);
  std::uniform_int_distribution<uint32_t> any;
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : kFloatLengths) {
      // Any bit pattern: NaNs of both signs and any payload, infinities, subnormals, ties.
      std::vector<float> x(static_cast<size_t>(n));
      for (size_t i = 0; i < x.size(); ++i) {
        uint32_t u = any(rng);
        if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u;  // an exact tie
        if (i % 4 == 2) u &= 0x807fffffu;                 // a subnormal or zero
        if (i % 9 == 3) u |= 0x7f800000u;                 // an infinity or a NaN
        x[i] = std::bit_cast<float>(u);
      }
      if (n > 3) {
        x[1] = std::bit_cast<float>(0x7f800001u);  // signalling NaN: must come out quiet
        x[2] = FLT_MAX;                            // rounds to infinity
        x[3] = -0.0f;
      }
      std::vector<uint16_t> want(x.size()), got(x.size() + 1, 0x5a5a);
      R.to_bf16(x.data(), n, want.data());
      k->to_bf16(x.data(), n, got.data());
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(uint16_t))) << k->name << " n=" << n;
      EXPECT_EQ(got.back(), 0x5a5a) << k->name << " wrote past n=" << n;
    }
  }
}

// Random bf16 values with biased exponents in [exp_lo, exp_hi], of either sign or positive: so
// products can overflow to infinity (all of one sign: no inf - inf) or underflow below the
// subnormals, where a multiply-then-add would round differently from the fused multiply-add.
std::vector<uint16_t> random_bf16(std::mt19937& rng, size_t n, int exp_lo, int exp_hi, bool negative) {
  std::uniform_int_distribution<int> e(exp_lo, exp_hi), m(0, 127), s(0, 1);
  std::vector<uint16_t> v(n);
  for (auto& h : v)
    h = static_cast<uint16_t>((negative && s(rng) != 0 ? 0x8000 : 0) | (e(rng) << 7) | m(rng));
  return v;
}

TEST(SimdFormats, Bf16DotIsBitExact) {
  std::mt19937 rng(84);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : kFloatLengths) {
      for (int kind = 0; kind < 4; ++kind) {
        const auto sz = static_cast<size_t>(n) + 1;
        // 0: ordinary values of both signs; 1: tiny (products below the smallest subnormal, lanes
        // ending at -0 when negative); 2: huge positive (products overflow); 3: anything up to
        // 2^54 (products from 0 through the subnormals, sums that stay finite).
        const int lo[] = {100, 1, 200, 0}, hi[] = {150, 40, 254, 180};
        const std::vector<uint16_t> w = random_bf16(rng, sz, lo[kind], hi[kind], kind == 0 || kind == 3);
        std::vector<uint16_t> a = random_bf16(rng, sz, lo[kind], hi[kind], false);
        if (kind == 1)  // every product negative: the lanes are -0 throughout
          for (auto& h : a) h = static_cast<uint16_t>(h | 0x8000);
        // From the second element too: rows are only 2-aligned in GGUF files.
        for (size_t off : {size_t{0}, size_t{1}}) {
          const float want = R.dot_bf16_bf16(w.data() + off, a.data() + off, n);
          EXPECT_EQ(bits(k->dot_bf16_bf16(w.data() + off, a.data() + off, n)), bits(want))
              << k->name << " n=" << n << " kind=" << kind << " off=" << off;
        }
      }
    }
  }
}

float finite_below_2p54(std::mt19937& rng) {
  std::uniform_int_distribution<uint32_t> sign(0, 1), exp(0, 180), mant(0, 0x7fffff);
  return std::bit_cast<float>(sign(rng) << 31 | exp(rng) << 23 | mant(rng));
}

TEST(SimdFormats, F32DotIsBitExact) {
  std::mt19937 rng(85);
  for (const KernelTable* k : optimised_tables()) {
    for (int64_t n : kFloatLengths) {
      for (int kind = 0; kind < 4; ++kind) {
        const auto sz = static_cast<size_t>(n) + 1;
        std::vector<float> w(sz), a(sz);
        for (size_t i = 0; i < sz; ++i) {
          switch (kind) {
            case 0:  // ordinary values
              w[i] = std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);
              a[i] = std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);
              break;
            case 1:  // products below the smallest subnormal, all negative: -0 lanes
              w[i] = -1e-25f * std::uniform_real_distribution<float>(0.5f, 1.0f)(rng);
              a[i] = 1e-25f;
              break;
            case 2:  // products past FLT_MAX, all positive
              w[i] = 1e20f * std::uniform_real_distribution<float>(0.5f, 1.0f)(rng);
              a[i] = 3e19f;
              break;
            default:  // any sign, mantissa and exponent up to 2^54: products from 0 through the
                      // subnormals to 2^108, sums that stay finite
              w[i] = finite_below_2p54(rng);
              a[i] = finite_below_2p54(rng);
              break;
          }
        }
        for (size_t off : {size_t{0}, size_t{1}}) {
          const float want = R.dot_f32_f32(w.data() + off, a.data() + off, n);
          EXPECT_EQ(bits(k->dot_f32_f32(w.data() + off, a.data() + off, n)), bits(want))
              << k->name << " n=" << n << " kind=" << kind << " off=" << off;
        }
      }
    }
  }
}

// Through matmul (activation conversion, the pool's row ranges): the same floats as the reference
// table on no pool, one thread and three, for one token and several.
TEST(SimdFormats, MatmulMatchesTheReference) {
  std::mt19937 rng(86);
  ThreadPool one(1), three(3);
  for (const KernelTable* k : optimised_tables()) {
    for (gguf::GgmlType type :
         {gguf::GgmlType::Q8_0, gguf::GgmlType::Q4_0, gguf::GgmlType::BF16, gguf::GgmlType::F32}) {
      for (int64_t cols : {96, 2560}) {
        for (int64_t tokens : {1, 3, 17, 133}) {
          const int64_t rows = tokens == 133 ? 131 : 37;
          test::Bytes w;
          if (type == gguf::GgmlType::Q8_0 || type == gguf::GgmlType::Q4_0) {
            w = random_blocks(rng, type == gguf::GgmlType::Q8_0 ? 34 : 18, rows, cols);
          } else {
            const std::vector<float> f = test::random_floats(rng, static_cast<size_t>(rows * cols), -1.0f, 1.0f);
            if (type == gguf::GgmlType::F32) {
              w.resize(f.size() * sizeof(float));
              std::memcpy(w.data(), f.data(), w.size());
            } else {
              std::vector<uint16_t> h(f.size());
              R.to_bf16(f.data(), static_cast<int64_t>(f.size()), h.data());
              w.resize(h.size() * sizeof(uint16_t));
              std::memcpy(w.data(), h.data(), w.size());
            }
          }
          const WeightView view{type, cols, rows, w.data()};
          const std::vector<float> x = test::random_floats(rng, static_cast<size_t>(cols * tokens), -2.0f, 2.0f);
          std::vector<float> want(static_cast<size_t>(rows * tokens));
          MatmulScratch s0;
          matmul(R, view, x.data(), cols, tokens, want.data(), rows, s0);
          for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &one, &three}) {
            std::vector<float> got(want.size(), -7.0f);
            MatmulScratch s1;
            matmul(*k, view, x.data(), cols, tokens, got.data(), rows, s1, pool);
            EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
                << k->name << " " << gguf::type_name(type) << " cols=" << cols << " tokens=" << tokens
                << " threads=" << (pool ? pool->size() : 0);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels
