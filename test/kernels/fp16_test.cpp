// f16/bf16 <-> f32 conversions against IEEE arithmetic done in double: every 16-bit pattern,
// known values, constructed ties, and random f32 bit patterns.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {
namespace {

// Round x to a binary format with p significand bits, minimum normal exponent emin and largest
// finite value max_finite, ties to even (nearbyint in the default mode), overflowing to inf.
double round_ieee(double x, int p, int emin, double max_finite) {
  if (x == 0.0 || std::isinf(x)) return x;
  int e;
  std::frexp(std::fabs(x), &e);
  const double ulp = std::ldexp(1.0, std::max(e - 1, emin) - (p - 1));
  const double r = std::nearbyint(x / ulp) * ulp;
  if (std::fabs(r) > max_finite) return std::copysign(std::numeric_limits<double>::infinity(), x);
  return r;
}

double round_f16(float x) { return round_ieee(x, 11, -14, 65504.0); }
double round_bf16(float x) { return round_ieee(x, 8, -126, static_cast<double>(std::bit_cast<float>(0x7f7f0000u))); }

// The value of a half bit pattern from its fields.
double half_value(uint16_t h) {
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(m, -24);
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(1024 + m, e - 25);
}

TEST(Fp16, EveryHalfDecodesAndRoundTrips) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = f16_to_f32(h);
    const double want = half_value(h);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      const uint16_t back = f32_to_f16(f);
      EXPECT_EQ(back & 0x7c00, 0x7c00) << std::hex << i;
      EXPECT_NE(back & 0x03ff, 0) << std::hex << i;
      EXPECT_EQ(back & 0x8000, h & 0x8000) << std::hex << i;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), want) << std::hex << i;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << i;
  }
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(0.5f), 0x3800);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // tie with 2^16 goes to the even side: overflow
  EXPECT_EQ(f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24: even is 0
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units: tie to even 2
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(f32_to_f16(std::bit_cast<float>(0x7fc00000u)), 0x7e00);
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
}

TEST(Fp16, MidpointsRoundToEven) {
  for (uint16_t h = 0; h < 0x7bff; ++h) {
    const float a = f16_to_f32(h), b = f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = (a + b) / 2;  // exact: f32 has 13 more significand bits than f16
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(a) + b) / 2);
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
    ASSERT_EQ(f32_to_f16(mid), even) << std::hex << h;
    ASSERT_EQ(f32_to_f16(-mid), even | 0x8000) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, -1e9f)), h) << std::hex << h;
  }
}

TEST(Fp16, RandomFloatsMatchIeeeRounding) {
  std::mt19937 rng(7);
  for (int i = 0; i < 1'000'000; ++i) {
    // Bias half of the patterns towards the f16 range so subnormals and overflow both get hit.
    auto u = static_cast<uint32_t>(rng());
    if (i % 2) u = (u & 0x807fffffu) | ((100u + u % 45u) << 23);
    const float f = std::bit_cast<float>(u);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(static_cast<double>(f16_to_f32(f32_to_f16(f))), round_f16(f)) << std::hex << u;
    ASSERT_EQ(static_cast<double>(bf16_to_f32(f32_to_bf16(f))), round_bf16(f)) << std::hex << u;
  }
}

TEST(Bf16, EveryPatternRoundTrips) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = bf16_to_f32(h);
    ASSERT_EQ(std::bit_cast<uint32_t>(f), i << 16);
    if (std::isnan(f)) {
      const uint16_t back = f32_to_bf16(f);
      EXPECT_TRUE(std::isnan(bf16_to_f32(back))) << std::hex << i;
      EXPECT_EQ(back & 0x8000, h & 0x8000);
    } else {
      ASSERT_EQ(f32_to_bf16(f), h) << std::hex << i;
    }
  }
}

TEST(Bf16, KnownValuesAndTies) {
  auto from_bits = [](uint32_t u) { return std::bit_cast<float>(u); };
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-3.0f), 0xc040);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000u)), 0x0000);  // subnormal tie -> even (zero)
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000u)), 0x0002);  // subnormal tie -> even
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008001u)), 0x0001);  // subnormals are kept, not flushed
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);  // FLT_MAX rounds to inf
  EXPECT_EQ(f32_to_bf16(from_bits(0xff800000u)), 0xff80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f800001u)), 0x7fc0);  // signalling NaN -> quiet, not inf
}

}  // namespace
}  // namespace bitnet::kernels
