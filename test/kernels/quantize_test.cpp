// Reference activation quantizers on constructed inputs (ties, extremes, zero rows) and random
// rows (round-trip error bounds, bsums).
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"

namespace bitnet::kernels {
namespace {

const KernelTable& K = reference_table();

TEST(QuantizeI8, TiesRoundHalfToEven) {
  // max |x| = 127 makes s exactly 1, so x * s is x itself.
  const std::vector<float> x = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, -0.5f, 2.4999998f, -127.0f, 126.5f};
  const std::vector<int> want = {127, 2, 4, -2, -4, 0, 2, 0, 2, -127, 126};
  std::vector<int8_t> q(x.size());
  float s = 0;
  int32_t sum = 0;
  K.quantize_i8(x.data(), static_cast<int64_t>(x.size()), q.data(), &s, &sum);
  EXPECT_EQ(s, 1.0f);
  int32_t want_sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(q[i], want[i]) << "x = " << x[i];
    want_sum += want[i];
  }
  EXPECT_EQ(sum, want_sum);
}

TEST(QuantizeI8, ScaleFromDoubleMaxAndRange) {
  std::mt19937 rng(11);
  for (int64_t n : {1, 7, 128, 384, 2560}) {
    auto x = test::random_floats(rng, static_cast<size_t>(n), -3.0f, 3.0f);
    x[static_cast<size_t>(n) / 2] = -5.0f;  // the extreme is negative: |q| stays within 127
    std::vector<int8_t> q(static_cast<size_t>(n));
    float s = 0;
    int32_t sum = 0;
    K.quantize_i8(x.data(), n, q.data(), &s, &sum);
    EXPECT_EQ(s, static_cast<float>(127.0 / 5.0));
    EXPECT_EQ(q[static_cast<size_t>(n) / 2], -127);
    int32_t want_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double exact = static_cast<double>(x[i]) * s;
      EXPECT_LE(std::fabs(q[i] - exact), 0.5 + 1e-4) << i;  // clamping never triggers: |x*s| <= 127
      want_sum += q[i];
    }
    EXPECT_EQ(sum, want_sum);
  }
}

TEST(QuantizeI8, ZeroAndTinyRowsUseTheFloor) {
  std::vector<float> x(256, 0.0f);
  std::vector<int8_t> q(256, 99);
  float s = 0;
  int32_t sum = 7;
  K.quantize_i8(x.data(), 256, q.data(), &s, &sum);
  EXPECT_EQ(s, static_cast<float>(127.0 / 1e-5));
  EXPECT_EQ(sum, 0);
  for (int8_t v : q) EXPECT_EQ(v, 0);
  // Below the 1e-5 floor values are not stretched to 127.
  x[0] = 1e-6f;
  x[1] = -1e-5f;
  K.quantize_i8(x.data(), 256, q.data(), &s, &sum);
  EXPECT_EQ(q[0], 13);  // 1e-6 * 1.27e7 = 12.7
  EXPECT_EQ(q[1], -127);
}

TEST(QuantizeQ8K, MaxKeepsSignAndBsumsMatch) {
  std::mt19937 rng(12);
  const int64_t n = 768;
  auto x = test::random_floats(rng, n, -2.0f, 2.0f);
  x[5] = 3.0f;     // block 0: positive extreme
  x[300] = -4.0f;  // block 1: negative extreme
  for (int64_t j = 512; j < 768; ++j) x[j] = 0.0f;  // block 2: all zero
  std::vector<BlockQ8K> y(3);
  K.quantize_q8_k(x.data(), n, y.data());
  EXPECT_EQ(y[0].qs[5], -127);  // iscale = -127/max: the sign flips into d
  EXPECT_EQ(y[0].d, 1.0f / (-127.0f / 3.0f));
  EXPECT_EQ(y[1].qs[300 - 256], -127);
  EXPECT_EQ(y[1].d, 1.0f / (-127.0f / -4.0f));
  EXPECT_EQ(y[2].d, 0.0f);
  for (int b = 0; b < 3; ++b) {
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += y[b].qs[g * 16 + k];
      EXPECT_EQ(y[b].bsums[g], sum) << b << " " << g;
    }
    for (int j = 0; j < 256; ++j) {
      const double err = std::fabs(static_cast<double>(y[b].qs[j]) * y[b].d - x[b * 256 + j]);
      EXPECT_LE(err, std::fabs(y[b].d) * (0.5 + 1e-4)) << b << " " << j;
      if (b == 2) {
        EXPECT_EQ(y[b].qs[j], 0);
      }
    }
  }
}

TEST(QuantizeQ8K, TiesRoundHalfToEven) {
  std::vector<float> x(256, 0.0f);
  x[0] = -127.0f;  // iscale = 1
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -2.5f;
  x[4] = 127.0f;
  std::vector<BlockQ8K> y(1);
  K.quantize_q8_k(x.data(), 256, y.data());
  EXPECT_EQ(y[0].d, 1.0f);
  EXPECT_EQ(y[0].qs[0], -127);
  EXPECT_EQ(y[0].qs[1], 2);
  EXPECT_EQ(y[0].qs[2], 4);
  EXPECT_EQ(y[0].qs[3], -2);
  EXPECT_EQ(y[0].qs[4], 127);
}

TEST(QuantizeQ8_0, RoundTripWithinHalfStep) {
  std::mt19937 rng(13);
  const int64_t n = 32 * 9;
  auto x = test::random_floats(rng, n, -1.5f, 1.5f);
  for (int64_t j = 64; j < 96; ++j) x[j] = 0.0f;
  std::vector<BlockQ8_0> y(9);
  K.quantize_q8_0(x.data(), n, y.data());
  for (int b = 0; b < 9; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127.0f;
    const double d16 = f16_to_f32(y[b].d);
    EXPECT_EQ(y[b].d, f32_to_f16(d));
    for (int j = 0; j < 32; ++j) {
      const double xv = x[b * 32 + j];
      // q is chosen with the f32 d; the stored d is its f16 rounding, which moves q*d by at
      // most 127*|d - d16| more.
      EXPECT_LE(std::fabs(y[b].qs[j] * static_cast<double>(d) - xv), d * (0.5 + 1e-4)) << b << " " << j;
      EXPECT_LE(std::fabs(y[b].qs[j] * d16 - xv), d * (0.5 + 1e-4) + 127 * std::fabs(d - d16));
    }
  }
  EXPECT_EQ(y[2].d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[2].qs[j], 0);
}

TEST(QuantizeQ8_0, TiesRoundAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = 3.5f;
  BlockQ8_0 y;
  K.quantize_q8_0(x.data(), 32, &y);
  EXPECT_EQ(f16_to_f32(y.d), 1.0f);
  EXPECT_EQ(y.qs[1], 3);
  EXPECT_EQ(y.qs[2], -3);
  EXPECT_EQ(y.qs[3], 1);
  EXPECT_EQ(y.qs[4], 4);
}

TEST(QuantizeHalf, ConvertsEachElement) {
  std::mt19937 rng(14);
  auto x = test::random_floats(rng, 100, -70000.0f, 70000.0f);
  std::vector<uint16_t> h(100), b(100);
  K.to_f16(x.data(), 100, h.data());
  K.to_bf16(x.data(), 100, b.data());
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(h[i], f32_to_f16(x[i]));
    EXPECT_EQ(b[i], f32_to_bf16(x[i]));
  }
}

}  // namespace
}  // namespace bitnet::kernels
