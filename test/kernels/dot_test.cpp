// Reference dot products against an independent oracle: weights dequantized to float, quantized
// activations reconstructed as q*d, products summed in double. Integer sums must be exact (I2_S
// always; block types with unit scales); float results within test::dot_tolerance.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"

namespace bitnet::kernels {
namespace {

using gguf::GgmlType;
const KernelTable& K = reference_table();
constexpr uint16_t kOne = 0x3c00;  // f16 1.0

// --- activations ---

BlockQ8K make_q8k(const std::vector<int>& q, size_t at, float d) {
  BlockQ8K b{};
  b.d = d;
  for (int j = 0; j < 256; ++j) b.qs[j] = static_cast<int8_t>(q[at + static_cast<size_t>(j)]);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int k = 0; k < 16; ++k) s += b.qs[g * 16 + k];
    b.bsums[g] = static_cast<int16_t>(s);
  }
  return b;
}

std::vector<BlockQ8K> q8k_blocks(const std::vector<int>& q, const std::vector<float>& d) {
  std::vector<BlockQ8K> out;
  for (size_t b = 0; b < q.size() / 256; ++b) out.push_back(make_q8k(q, b * 256, d[b]));
  return out;
}

std::vector<BlockQ8_0> q8_0_blocks(const std::vector<int>& q, const std::vector<uint16_t>& d) {
  std::vector<BlockQ8_0> out(q.size() / 32);
  for (size_t b = 0; b < out.size(); ++b) {
    out[b].d = d[b];
    for (int j = 0; j < 32; ++j) out[b].qs[j] = static_cast<int8_t>(q[b * 32 + static_cast<size_t>(j)]);
  }
  return out;
}

std::vector<double> reconstruct(const std::vector<BlockQ8K>& a) {
  std::vector<double> x;
  for (const auto& b : a)
    for (int8_t q : b.qs) x.push_back(q * static_cast<double>(b.d));
  return x;
}

std::vector<double> reconstruct(const std::vector<BlockQ8_0>& a) {
  std::vector<double> x;
  for (const auto& b : a)
    for (int8_t q : b.qs) x.push_back(q * static_cast<double>(f16_to_f32(b.d)));
  return x;
}

// --- oracle ---

struct Oracle {
  double sum = 0;
  double abs_sum = 0;
};

Oracle oracle(GgmlType type, const test::Bytes& w, const std::vector<double>& a) {
  std::vector<float> wf(a.size());
  dequantize(type, w.data(), 0, static_cast<int64_t>(a.size()), wf.data());
  Oracle o;
  for (size_t k = 0; k < a.size(); ++k) {
    o.sum += static_cast<double>(wf[k]) * a[k];
    o.abs_sum += std::fabs(static_cast<double>(wf[k]) * a[k]);
  }
  return o;
}

void expect_close(float got, const Oracle& o, int64_t roundings, const std::string& what) {
  EXPECT_NEAR(static_cast<double>(got), o.sum, test::dot_tolerance(roundings, o.abs_sum)) << what;
}

// --- weights: one packed row of n elements with the given value range and block scales ---

test::Bytes make_weights(GgmlType type, const std::vector<int>& v, const std::vector<uint16_t>& d,
                         const std::vector<int>& q6_scales) {
  switch (type) {
    case GgmlType::TQ1_0: return test::pack_tq1_0(v, d);
    case GgmlType::TQ2_0: return test::pack_tq2_0(v, d);
    case GgmlType::Q4_0: return test::pack_q4_0(v, d);
    case GgmlType::Q8_0: return test::pack_q8_0(v, d);
    case GgmlType::Q6_K: return test::pack_q6_k(v, q6_scales, d);
    default: ADD_FAILURE(); return {};
  }
}

int value_lo(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return -8;
    case GgmlType::Q8_0: return -128;
    case GgmlType::Q6_K: return -32;
    default: return -1;
  }
}
int value_hi(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return 7;
    case GgmlType::Q8_0: return 127;
    case GgmlType::Q6_K: return 31;
    default: return 1;
  }
}
int64_t block_of(GgmlType t) { return t == GgmlType::Q4_0 || t == GgmlType::Q8_0 ? 32 : 256; }
bool q8k_partner(GgmlType t) { return block_of(t) == 256; }

float run_dot(GgmlType t, const test::Bytes& w, const std::vector<BlockQ8K>& ak, const std::vector<BlockQ8_0>& a8,
              int64_t n) {
  switch (t) {
    case GgmlType::TQ1_0: return K.dot_tq1_0_q8_k(w.data(), ak.data(), n);
    case GgmlType::TQ2_0: return K.dot_tq2_0_q8_k(w.data(), ak.data(), n);
    case GgmlType::Q6_K: return K.dot_q6_k_q8_k(w.data(), ak.data(), n);
    case GgmlType::Q8_0: return K.dot_q8_0_q8_0(w.data(), a8.data(), n);
    case GgmlType::Q4_0: return K.dot_q4_0_q8_0(w.data(), a8.data(), n);
    default: ADD_FAILURE(); return 0;
  }
}

constexpr GgmlType kBlockTypes[] = {GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0};

// One block-dot case: weights v (block scales dw, Q6_K sub-scales sc) against activations q
// (scales da for Q8_K, da16 for Q8_0). Checks the float result against the oracle and returns it.
float check_case(GgmlType t, const std::vector<int>& v, const std::vector<uint16_t>& dw, const std::vector<int>& sc,
                 const std::vector<int>& q, const std::vector<float>& da, const std::vector<uint16_t>& da16,
                 const std::string& what) {
  const auto n = static_cast<int64_t>(v.size());
  const test::Bytes w = make_weights(t, v, dw, sc);
  std::vector<BlockQ8K> ak;
  std::vector<BlockQ8_0> a8;
  std::vector<double> a;
  if (q8k_partner(t)) {
    ak = q8k_blocks(q, da);
    a = reconstruct(ak);
  } else {
    a8 = q8_0_blocks(q, da16);
    a = reconstruct(a8);
  }
  const float got = run_dot(t, w, ak, a8, n);
  expect_close(got, oracle(t, w, a), n / block_of(t), what);
  return got;
}

TEST(DotBlocks, RandomAgainstOracle) {
  std::mt19937 rng(31);
  for (GgmlType t : kBlockTypes) {
    for (int64_t n : {256, 512, 768, 2560}) {
      const auto nb = static_cast<size_t>(n / block_of(t));
      const auto nk = static_cast<size_t>(n / 256);
      const auto v = test::random_ints(rng, static_cast<size_t>(n), value_lo(t), value_hi(t));
      auto dw = test::random_f16(rng, nb, 0.001f, 0.1f);
      const auto sc = test::random_ints(rng, static_cast<size_t>(n / 16), -128, 127);
      const auto q = test::random_ints(rng, static_cast<size_t>(n), -127, 127);
      auto da = test::random_floats(rng, nk, -0.05f, 0.05f);  // Q8_K d is negative when max > 0
      auto da16 = test::random_f16(rng, nb, 0.0f, 0.05f);
      dw[nb / 2] = 0;  // all-zero blocks on either side
      if (nk > 1) da[nk - 1] = 0;
      da16[0] = 0;
      check_case(t, v, dw, sc, q, da, da16, std::string(gguf::type_name(t)) + " n=" + std::to_string(n));
    }
  }
}

TEST(DotBlocks, ExtremeValues) {
  std::mt19937 rng(32);
  const int64_t n = 2560;
  for (GgmlType t : kBlockTypes) {
    const auto nb = static_cast<size_t>(n / block_of(t));
    for (int sign : {-1, 1}) {
      // Every weight at its largest magnitude, every activation at -128 or 127, largest scales.
      const std::vector<int> v(static_cast<size_t>(n), sign < 0 ? value_lo(t) : value_hi(t));
      const std::vector<int> sc(static_cast<size_t>(n / 16), sign < 0 ? -128 : 127);
      const std::vector<int> q(static_cast<size_t>(n), sign < 0 ? -128 : 127);
      const std::vector<uint16_t> dw(nb, f32_to_f16(60000.0f));
      const std::vector<float> da(static_cast<size_t>(n / 256), -1e3f);
      const std::vector<uint16_t> da16(nb, f32_to_f16(1e3f));
      const float got = check_case(t, v, dw, sc, q, da, da16, std::string(gguf::type_name(t)) + " extreme");
      EXPECT_TRUE(std::isfinite(got));
    }
  }
}

// With unit scales every float operation is on integers below 2^24, so the result must be the
// exact integer sum: this pins the integer part (decode, signs, pairing of w and q) bit for bit.
TEST(DotBlocks, UnitScalesGiveExactIntegerSums) {
  std::mt19937 rng(33);
  for (GgmlType t : kBlockTypes) {
    for (int64_t n : {256, 512, 768}) {
      const auto nb = static_cast<size_t>(n / block_of(t));
      const auto v = test::random_ints(rng, static_cast<size_t>(n), value_lo(t), value_hi(t));
      const auto sc = test::random_ints(rng, static_cast<size_t>(n / 16), -3, 3);
      auto q = test::random_ints(rng, static_cast<size_t>(n), -128, 127);
      if (q8k_partner(t)) q[3] = 127;  // keep Q8_K's qs in its real -127..127 range too
      const std::vector<uint16_t> dw(nb, kOne), da16(nb, kOne);
      const std::vector<float> da(static_cast<size_t>(n / 256), 1.0f);
      int64_t exact = 0, bound = 0;
      for (size_t k = 0; k < v.size(); ++k) {
        const int64_t s = t == GgmlType::Q6_K ? sc[k / 16] : 1;
        exact += s * v[k] * q[k];
        bound += std::abs(s * v[k] * q[k]);
      }
      ASSERT_LT(bound, int64_t{1} << 24);  // precondition: every partial sum is exact in float
      const float got =
          check_case(t, v, dw, sc, q, da, da16, std::string(gguf::type_name(t)) + " unit n=" + std::to_string(n));
      EXPECT_EQ(got, static_cast<float>(exact)) << gguf::type_name(t) << " n=" << n;
    }
  }
}

TEST(DotBlocks, WithQuantizedActivations) {
  std::mt19937 rng(34);
  const int64_t n = 768;
  const auto x = test::random_floats(rng, static_cast<size_t>(n), -4.0f, 4.0f);
  std::vector<BlockQ8K> ak(3);
  std::vector<BlockQ8_0> a8(24);
  K.quantize_q8_k(x.data(), n, ak.data());
  K.quantize_q8_0(x.data(), n, a8.data());
  for (GgmlType t : kBlockTypes) {
    const auto nb = static_cast<size_t>(n / block_of(t));
    const auto v = test::random_ints(rng, static_cast<size_t>(n), value_lo(t), value_hi(t));
    const auto sc = test::random_ints(rng, static_cast<size_t>(n / 16), -128, 127);
    const auto w = make_weights(t, v, test::random_f16(rng, nb, 0.001f, 0.1f), sc);
    const float got = run_dot(t, w, ak, a8, n);
    expect_close(got, oracle(t, w, q8k_partner(t) ? reconstruct(ak) : reconstruct(a8)), n / block_of(t),
                 std::string(gguf::type_name(t)) + " quantized x");
  }
}

// --- I2_S: integer result, exact ---

int64_t i2s_oracle(const test::Bytes& w, int64_t first, const std::vector<int>& q) {
  std::vector<float> t(q.size());
  dequantize(GgmlType::I2_S, w.data(), first, static_cast<int64_t>(q.size()), t.data(), 1.0f);
  int64_t s = 0;
  for (size_t k = 0; k < q.size(); ++k) s += (static_cast<int64_t>(t[k]) + 1) * q[k];
  return s;
}

int32_t run_i2s(const test::Bytes& w, int64_t first, const std::vector<int>& q) {
  std::vector<int8_t> q8(q.begin(), q.end());
  return K.dot_i2s_i8(reinterpret_cast<const uint8_t*>(w.data()), first, q8.data(), static_cast<int64_t>(q.size()));
}

TEST(DotI2s, RandomRowsAndStarts) {
  std::mt19937 rng(35);
  const auto t = test::random_ints(rng, 128 * 48, -1, 1);
  const auto w = test::pack_i2s(t, 1.0f);
  for (int64_t n : {1, 100, 128, 256, 384, 512, 768, 2560}) {
    for (int64_t first : {0, 128, 256, 5, 127, 200, 2561}) {
      if (first + n > static_cast<int64_t>(t.size())) continue;
      const auto q = test::random_ints(rng, static_cast<size_t>(n), -128, 127);
      EXPECT_EQ(run_i2s(w, first, q), i2s_oracle(w, first, q)) << "n=" << n << " first=" << first;
    }
  }
}

TEST(DotI2s, ExtremesAndZeros) {
  const int64_t n = 2560;
  for (int wv : {-1, 0, 1}) {
    const auto w = test::pack_i2s(std::vector<int>(static_cast<size_t>(n), wv), 1.0f);
    for (int qv : {-128, 127, 0}) {
      const std::vector<int> q(static_cast<size_t>(n), qv);
      const int32_t got = run_i2s(w, 0, q);
      EXPECT_EQ(got, static_cast<int64_t>(wv + 1) * qv * n) << wv << " " << qv;
      EXPECT_EQ(got, i2s_oracle(w, 0, q));
    }
  }
}

// --- float dots ---

// BF16 sums in the F16 dot's lanes (element i in lane i % 64, then the fixed tree), one fused
// multiply-add per element.
TEST(DotFloat, Bf16SumsInTheF16LaneOrder) {
  // F16SumsInItsLaneOrder's vector: index order would give 2^24 + 6, the lanes give 2^24 + 4.
  std::vector<uint16_t> w(200, f32_to_bf16(0.0f)), a(200, f32_to_bf16(1.0f));
  w[0] = f32_to_bf16(4096.0f);
  a[0] = f32_to_bf16(4096.0f);
  for (size_t i : {64, 128, 1, 65, 32, 96}) w[i] = f32_to_bf16(1.0f);
  EXPECT_EQ(K.dot_bf16_bf16(w.data(), a.data(), 200), 16777220.0f);
  // Random values: within the float rounding of at most n/64 + 7 additions per product (bf16
  // products of this range are exact).
  std::mt19937 rng(36);
  for (int64_t n : {1, 7, 33, 256, 1000, 2560}) {
    const auto fa = test::random_floats(rng, static_cast<size_t>(n), -300.0f, 300.0f);
    const auto fb = test::random_floats(rng, static_cast<size_t>(n), -300.0f, 300.0f);
    std::vector<uint16_t> ab(fa.size()), bb(fa.size());
    K.to_bf16(fa.data(), n, ab.data());
    K.to_bf16(fb.data(), n, bb.data());
    double exact = 0, magnitude = 0;
    for (size_t i = 0; i < fa.size(); ++i) {
      const double p = static_cast<double>(bf16_to_f32(ab[i])) * bf16_to_f32(bb[i]);
      exact += p;
      magnitude += std::fabs(p);
    }
    const double bound = static_cast<double>(n / 64 + 7) * std::ldexp(magnitude, -24);
    EXPECT_LE(std::fabs(K.dot_bf16_bf16(ab.data(), bb.data(), n) - exact), bound) << n;
  }
}

// F16 sums in float lanes: element i in lane i % 64, then a fixed tree (reference.cpp).
TEST(DotFloat, F16SumsInItsLaneOrder) {
  // A vector where the order shows: 2^24 in lane 0 swallows the +1s that land in lane 0
  // (positions 64 and 128: 2^24 + 1 rounds back to 2^24), while lane 1's two +1s (positions 1
  // and 65) and lane 32's (32 and 96) add up to 2 first and survive: 2^24 + 4. Index order
  // would give 2^24 + 6, and 32 lanes 2^24 + 2.
  std::vector<uint16_t> w(200, f32_to_f16(0.0f)), a(200, f32_to_f16(1.0f));
  w[0] = f32_to_f16(4096.0f);
  a[0] = f32_to_f16(4096.0f);
  for (size_t i : {64, 128, 1, 65, 32, 96}) w[i] = f32_to_f16(1.0f);
  EXPECT_EQ(K.dot_f16_f16(w.data(), a.data(), 200), 16777220.0f);
  // Small integers: every partial sum is exact in float, so any order gives the exact sum.
  std::mt19937 rng(36);
  std::uniform_int_distribution<int> small(-8, 8);
  for (int64_t n : {1, 7, 63, 64, 65, 200, 2560, 2563}) {
    std::vector<uint16_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    int64_t exact = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const int p = small(rng), q = small(rng);
      x[i] = f32_to_f16(static_cast<float>(p));
      y[i] = f32_to_f16(static_cast<float>(q));
      exact += p * q;
    }
    EXPECT_EQ(K.dot_f16_f16(x.data(), y.data(), n), static_cast<float>(exact)) << n;
  }
  // Random values: within the float rounding of at most n/64 + 7 additions per product.
  for (int64_t n : {1, 7, 33, 256, 1000, 2560}) {
    const auto fa = test::random_floats(rng, static_cast<size_t>(n), -300.0f, 300.0f);
    const auto fb = test::random_floats(rng, static_cast<size_t>(n), -300.0f, 300.0f);
    std::vector<uint16_t> ah(fa.size()), bh(fa.size());
    K.to_f16(fa.data(), n, ah.data());
    K.to_f16(fb.data(), n, bh.data());
    double exact = 0, magnitude = 0;
    for (size_t i = 0; i < fa.size(); ++i) {
      const double p = static_cast<double>(f16_to_f32(ah[i])) * f16_to_f32(bh[i]);
      exact += p;
      magnitude += std::fabs(p);
    }
    const double bound = static_cast<double>(n / 64 + 7) * std::ldexp(magnitude, -24);
    EXPECT_LE(std::fabs(K.dot_f16_f16(ah.data(), bh.data(), n) - exact), bound) << n;
  }
  // Largest halves: 65504^2 * n stays finite in float.
  const std::vector<uint16_t> big(2560, 0x7bff);
  const float got = K.dot_f16_f16(big.data(), big.data(), 2560);
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_NEAR(got / (65504.0 * 65504.0 * 2560), 1.0, 1e-6);
}

// F32 sums in the same lanes with std::fma: each product's rounding is fused into its lane's add,
// so a lane's error is one rounding per element it holds, plus the tree's six.
TEST(DotFloat, F32WithinTheLaneRoundings) {
  std::mt19937 rng(37);
  for (int64_t n : {1, 7, 33, 256, 1000, 2560}) {
    const auto a = test::random_floats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
    const auto b = test::random_floats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
    Oracle o;
    for (size_t i = 0; i < a.size(); ++i) {
      o.sum += static_cast<double>(a[i]) * b[i];
      o.abs_sum += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    expect_close(K.dot_f32_f32(a.data(), b.data(), n), o, n / 64 + 7, "f32 n=" + std::to_string(n));
  }
}

}  // namespace
}  // namespace bitnet::kernels
