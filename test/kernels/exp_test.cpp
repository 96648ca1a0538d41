// exp_f32: the definition against exp in double (error in ulps over the whole finite range, the
// subnormal results, the specials), and every optimised table's entry against the definition,
// bit for bit, on random and boundary inputs with every tail length.
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

// |got - want| in units of the float spacing at want (the spacing of the smallest normal for
// subnormal results).
double ulps(float got, double want) {
  int e;
  std::frexp(want, &e);
  const double ulp = std::ldexp(1.0, std::max(e - 1, -126) - 23);
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

TEST(Exp, WithinOneAndAHalfUlpsOfExpInDouble) {
  // Every 97th float from the smallest x with a nonzero result to the largest with a finite one,
  // and the neighbourhood of 0 in finer steps.
  double worst = 0;
  float worst_x = 0;
  auto check = [&](float x) {
    const double want = std::exp(static_cast<double>(x));
    if (want > std::numeric_limits<float>::max()) return;
    const double e = ulps(exp_f32(x), want);
    if (e > worst) worst = e, worst_x = x;
  };
  for (uint32_t b = std::bit_cast<uint32_t>(-103.0f); b > 0x80000000u; b -= 97) check(std::bit_cast<float>(b));
  for (uint32_t b = 0; b < std::bit_cast<uint32_t>(88.72f); b += 97) check(std::bit_cast<float>(b));
  EXPECT_LE(worst, 1.5) << "at x = " << worst_x;  // 1.003 measured, at x = 26.72
}

TEST(Exp, Specials) {
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-kInf), 0.0f);
  EXPECT_EQ(exp_f32(-200.0f), 0.0f);
  EXPECT_EQ(exp_f32(-104.0f), 0.0f);
  EXPECT_EQ(exp_f32(kInf), kInf);
  EXPECT_EQ(exp_f32(88.73f), kInf);  // exp(88.73) > FLT_MAX
  EXPECT_EQ(exp_f32(1000.0f), kInf);
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_NEAR(exp_f32(1.0f), 2.7182817f, 3e-7f);
  // The largest finite result and a subnormal one.
  EXPECT_LE(ulps(exp_f32(88.72f), std::exp(static_cast<double>(88.72f))), 2.0);
  EXPECT_GT(exp_f32(-100.0f), 0.0f);
  EXPECT_LE(ulps(exp_f32(-100.0f), std::exp(-100.0)), 1.0);
}

TEST(Exp, TablesAreBitExact) {
  const std::vector<const KernelTable*> tables = optimised_tables();
  ASSERT_FALSE(tables.empty());
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> wide(-120.0f, 100.0f), near0(-1.0f, 1.0f);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::vector<float> x;
  for (int i = 0; i < 4000; ++i) x.push_back(wide(rng));
  for (int i = 0; i < 1000; ++i) x.push_back(near0(rng));
  for (int i = 0; i < 1000; ++i) x.push_back(std::bit_cast<float>(any_bits(rng)));  // NaNs, infs, subnormals
  for (float v : {0.0f, -0.0f, kInf, -kInf, std::numeric_limits<float>::quiet_NaN(), kExpMin, kExpMax,
                  std::nextafter(kExpMin, 0.0f), std::nextafter(kExpMax, 0.0f), 88.72f, -87.33f, -103.97f,
                  0.5f * 0.693359375f, -0.5f * 0.693359375f})
    x.push_back(v);
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = exp_f32(x[i]);
  for (const KernelTable* k : tables) {
    ASSERT_NE(k->exp_f32, nullptr) << k->name;
    EXPECT_NE(k->exp_f32, reference_table().exp_f32) << k->name;
    std::vector<float> got(x.size());
    k->exp_f32(x.data(), static_cast<int64_t>(x.size()), got.data());
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << k->name << " x = " << x[i];
    // Every tail length, in place, from an unaligned start; the element past the end untouched.
    for (int64_t n = 0; n <= 33; ++n) {
      std::vector<float> buf(x.begin() + 1, x.begin() + 1 + n + 1);
      k->exp_f32(buf.data(), n, buf.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(buf[static_cast<size_t>(i)]), std::bit_cast<uint32_t>(want[static_cast<size_t>(i) + 1]))
            << k->name << " n = " << n;
      EXPECT_EQ(std::bit_cast<uint32_t>(buf[static_cast<size_t>(n)]), std::bit_cast<uint32_t>(x[static_cast<size_t>(n) + 1]));
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels
