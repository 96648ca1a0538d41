// Attention's kernels. softmax_f32: the reference against a softmax in double, and every
// optimised table's entry against the reference, bit for bit (the weights and their F16
// rounding), on random scores of every length up to a few vectors past a tail, long rows, and
// rows with -inf, NaN and ties. weighted_sum_q8_0: the reference against sums in double, every
// table bit for bit on random caches, head counts, widths and key counts.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/kernels/kernels.hpp"
#include "kernels/tables.hpp"

namespace bitnet::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_scores(std::mt19937& rng, int64_t n, float spread) {
  std::normal_distribution<float> d(0.0f, spread);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = d(rng);
  return x;
}

TEST(Softmax, ReferenceMatchesSoftmaxInDouble) {
  std::mt19937 rng(11);
  for (int64_t n : {1, 7, 64, 1000, 4096}) {
    const float scale = 0.088388f;  // 1/sqrt(128)
    std::vector<float> x = random_scores(rng, n, 40.0f);
    const std::vector<float> in = x;
    std::vector<uint16_t> h(x.size());
    reference_table().softmax_f32(x.data(), n, scale, h.data());
    double mx = -INFINITY;
    for (float v : in) mx = std::max(mx, static_cast<double>(v * scale));
    double sum = 0;
    for (float v : in) sum += std::exp(static_cast<double>(v * scale) - mx);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double arg = static_cast<double>(in[i] * scale) - mx, want = std::exp(arg) / sum;
      // exp's 1.5 ulps, the division's, and s - m rounded in float (half an ulp of |s - m|).
      const double tol = want * (4e-7 + std::fabs(arg) * 6e-8) + 1e-37;
      EXPECT_NEAR(x[i], want, tol) << "n = " << n << " i = " << i;
      EXPECT_EQ(h[i], f32_to_f16(x[i]));
      total += x[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5) << "n = " << n;
  }
}

TEST(Softmax, SpecialRows) {
  const KernelTable& r = reference_table();
  std::vector<float> x = {-kInf, 2.0f, -kInf, 2.0f};  // masked keys weigh nothing; ties split evenly
  r.softmax_f32(x.data(), 4, 1.0f, nullptr);
  EXPECT_EQ(x, (std::vector<float>{0.0f, 0.5f, 0.0f, 0.5f}));
  x = {1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f};
  r.softmax_f32(x.data(), 3, 1.0f, nullptr);
  for (float v : x) EXPECT_TRUE(std::isnan(v));
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what, int64_t n) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << what << " n = " << n << " i = " << i;
}

TEST(Softmax, TablesAreBitExact) {
  const std::vector<const KernelTable*> tables = optimised_tables();
  ASSERT_FALSE(tables.empty());
  std::mt19937 rng(5);
  std::vector<std::vector<float>> rows;
  for (int64_t n = 0; n <= 70; ++n) rows.push_back(random_scores(rng, n, 8.0f));
  for (int64_t n : {255, 256, 257, 4095, 4096, 4099}) rows.push_back(random_scores(rng, n, 30.0f));
  std::vector<float> special = random_scores(rng, 37, 5.0f);
  special[0] = -kInf;
  special[17] = -kInf;
  special[20] = special[21] = special[36] = 11.0f;  // ties at the max, one of them in the tail
  special[3] = -0.0f;
  special[4] = 0.0f;
  rows.push_back(special);
  special[9] = std::numeric_limits<float>::quiet_NaN();
  rows.push_back(special);
  rows.push_back(std::vector<float>(19, -kInf));  // nothing to attend to: every weight NaN, as the reference
  for (const KernelTable* k : tables) {
    ASSERT_NE(k->softmax_f32, nullptr) << k->name;
    EXPECT_NE(k->softmax_f32, reference_table().softmax_f32) << k->name;
    for (const std::vector<float>& row : rows) {
      const auto n = static_cast<int64_t>(row.size());
      for (float scale : {1.0f, 0.125f, 0.0883883f}) {
        // One element of slack past the end: the entries must not write it.
        std::vector<float> want = row, got = row;
        want.push_back(42.0f);
        got.push_back(42.0f);
        std::vector<uint16_t> want16(row.size() + 1, 7), got16(row.size() + 1, 7);
        reference_table().softmax_f32(want.data(), n, scale, want16.data());
        k->softmax_f32(got.data(), n, scale, got16.data());
        expect_same_bits(want, got, k->name.data(), n);
        EXPECT_EQ(want16, got16) << k->name << " n = " << n;
        std::vector<float> plain = row;
        plain.push_back(42.0f);
        k->softmax_f32(plain.data(), n, scale, nullptr);  // without the F16 copy, the same weights
        expect_same_bits(want, plain, k->name.data(), n);
      }
    }
  }
}

struct QuantCache {
  std::vector<BlockQ8_0> v;
  std::vector<float> p;
};

QuantCache random_cache(std::mt19937& rng, int64_t n_keys, int64_t stride, int64_t n_heads, int64_t p_stride) {
  std::uniform_int_distribution<int> q(-128, 127);
  std::uniform_real_distribution<float> d(-0.05f, 0.05f), w(-0.2f, 1.0f);
  QuantCache c;
  c.v.resize(static_cast<size_t>(std::max<int64_t>(n_keys, 1) * stride));
  for (BlockQ8_0& b : c.v) {
    b.d = f32_to_f16(d(rng));
    for (int8_t& x : b.qs) x = static_cast<int8_t>(q(rng));
  }
  c.p.resize(static_cast<size_t>(n_heads * p_stride));
  for (float& x : c.p) x = w(rng);
  return c;
}

TEST(WeightedSumQ8_0, ReferenceMatchesSumsInDouble) {
  std::mt19937 rng(3);
  const int64_t n_keys = 3000, n = 128, stride = 5 * n / 32, heads = 4;
  const QuantCache c = random_cache(rng, n_keys, stride, heads, n_keys);
  std::vector<float> y(static_cast<size_t>(heads * n));
  reference_table().weighted_sum_q8_0(c.v.data(), stride, n_keys, c.p.data(), n_keys, heads, n, y.data(), n);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t ch = 0; ch < n; ++ch) {
      double want = 0, mag = 0;
      for (int64_t j = 0; j < n_keys; ++j) {
        const BlockQ8_0& b = c.v[static_cast<size_t>(j * stride + ch / 32)];
        const double t = static_cast<double>(c.p[static_cast<size_t>(h * n_keys + j)]) * f16_to_f32(b.d) * b.qs[ch % 32];
        want += t;
        mag += std::fabs(t);
      }
      // n_keys float roundings of a running sum, each at most half an ulp of the magnitude so far.
      EXPECT_NEAR(y[static_cast<size_t>(h * n + ch)], want, mag * n_keys * 6e-8) << "h = " << h << " c = " << ch;
    }
}

TEST(WeightedSumQ8_0, TablesAreBitExact) {
  const std::vector<const KernelTable*> tables = optimised_tables();
  ASSERT_FALSE(tables.empty());
  std::mt19937 rng(9);
  for (const KernelTable* k : tables) {
    ASSERT_NE(k->weighted_sum_q8_0, nullptr) << k->name;
    for (int64_t heads : {1, 2, 3, 4, 5, 8})
      for (int64_t n : {32, 64, 96, 128})
        for (int64_t n_keys : {0, 1, 2, 7, 33, 300}) {
          const int64_t stride = n / 32 + 3, p_stride = n_keys + 5, y_stride = n + 16;
          const QuantCache c = random_cache(rng, n_keys, stride, heads, p_stride);
          std::vector<float> want(static_cast<size_t>(heads * y_stride), -1.0f), got = want;
          reference_table().weighted_sum_q8_0(c.v.data(), stride, n_keys, c.p.data(), p_stride, heads, n, want.data(),
                                              y_stride);
          k->weighted_sum_q8_0(c.v.data(), stride, n_keys, c.p.data(), p_stride, heads, n, got.data(), y_stride);
          expect_same_bits(want, got, k->name.data(), n_keys);  // the gaps between heads' rows untouched too
        }
  }
}

}  // namespace
}  // namespace bitnet::kernels
