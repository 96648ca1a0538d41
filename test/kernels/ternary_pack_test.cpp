// core/kernels/ternary encoders against the independent test-side encoders of pack.hpp (written
// from SPEC.md's bit layouts), the value and code entry points against each other, and the
// decoders as exact inverses, on random ternary data.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/kernels/ternary.hpp"
#include "kernels/pack.hpp"

namespace bitnet::kernels {
namespace {

struct Data {
  std::vector<int> t;          // values for pack.hpp
  std::vector<int8_t> t8;      // the same as int8
  std::vector<uint8_t> codes;  // t + 1
  std::vector<uint16_t> d;     // one f16 per 256
};

Data random_data(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Data x;
  x.t = test::random_ints(rng, n, -1, 1);
  for (int v : x.t) {
    x.t8.push_back(static_cast<int8_t>(v));
    x.codes.push_back(static_cast<uint8_t>(v + 1));
  }
  for (size_t b = 0; b < n / 256; ++b) x.d.push_back(static_cast<uint16_t>(rng() & 0x7bff));
  return x;
}

std::vector<std::byte> as_bytes(const std::vector<uint8_t>& v) {
  std::vector<std::byte> b(v.size());
  std::memcpy(b.data(), v.data(), v.size());
  return b;
}

TEST(TernaryPack, I2sMatchesTheSpecEncoderAndRoundTrips) {
  const Data x = random_data(128 * 37, 1);
  const float scale = 0.0123f;
  std::vector<uint8_t> out(x.t.size() / 4 + kI2sTailBytes, 0xee), out_codes(x.t.size() / 4);
  pack_i2s(x.t8.data(), static_cast<int64_t>(x.t8.size()), out.data());
  pack_i2s_tail(scale, out.data() + x.t.size() / 4);
  EXPECT_EQ(as_bytes(out), test::pack_i2s(x.t, scale));  // pack.hpp zero-fills the tail too
  pack_i2s_codes(x.codes.data(), static_cast<int64_t>(x.codes.size()), out_codes.data());
  EXPECT_TRUE(std::equal(out_codes.begin(), out_codes.end(), out.begin()));
  std::vector<int8_t> back(x.t.size());
  unpack_i2s(out.data(), 0, static_cast<int64_t>(back.size()), back.data());
  EXPECT_EQ(back, x.t8);
  // A range starting mid-tensor (and mid-group).
  std::vector<int8_t> part(100);
  unpack_i2s(out.data(), 1000, 100, part.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), x.t8.begin() + 1000));
}

TEST(TernaryPack, Tq2MatchesTheSpecEncoderAndRoundTrips) {
  const Data x = random_data(256 * 9, 2);
  const int64_t nb = static_cast<int64_t>(x.d.size());
  std::vector<uint8_t> out(x.d.size() * 66), out_codes(x.d.size() * 66);
  pack_tq2_0(x.t8.data(), nb, x.d.data(), out.data());
  EXPECT_EQ(as_bytes(out), test::pack_tq2_0(x.t, x.d));
  pack_tq2_0_codes(x.codes.data(), nb, x.d.data(), out_codes.data());
  EXPECT_EQ(out_codes, out);
  std::vector<int8_t> back(x.t.size());
  std::vector<uint16_t> d(x.d.size());
  unpack_tq2_0(out.data(), nb, back.data(), d.data());
  EXPECT_EQ(back, x.t8);
  EXPECT_EQ(d, x.d);
}

TEST(TernaryPack, Tq1MatchesTheSpecEncoderAndRoundTrips) {
  const Data x = random_data(256 * 9, 3);
  const int64_t nb = static_cast<int64_t>(x.d.size());
  std::vector<uint8_t> out(x.d.size() * 54), out_codes(x.d.size() * 54);
  pack_tq1_0(x.t8.data(), nb, x.d.data(), out.data());
  EXPECT_EQ(as_bytes(out), test::pack_tq1_0(x.t, x.d));
  pack_tq1_0_codes(x.codes.data(), nb, x.d.data(), out_codes.data());
  EXPECT_EQ(out_codes, out);
  std::vector<int8_t> back(x.t.size());
  std::vector<uint16_t> d(x.d.size());
  unpack_tq1_0(out.data(), nb, back.data(), d.data());
  EXPECT_EQ(back, x.t8);
  EXPECT_EQ(d, x.d);
}

// The load-time rewrite of TQ1_0 as TQ2_0: exactly the TQ2_0 blocks the spec encoder writes for
// the same values and scales.
TEST(TernaryPack, Tq1RewrittenAsTq2IsTheSpecEncoding) {
  const Data x = random_data(256 * 29, 5);
  const test::Bytes tq1 = test::pack_tq1_0(x.t, x.d);
  std::vector<uint8_t> out(x.t.size() / 256 * 66, 0xee);
  tq1_0_to_tq2_0(reinterpret_cast<const uint8_t*>(tq1.data()), static_cast<int64_t>(x.t.size() / 256), out.data());
  EXPECT_EQ(as_bytes(out), test::pack_tq2_0(x.t, x.d));
}

TEST(TernaryPack, Tq2CodeThreeDecodesAsTwoSoItCanBeRejected) {
  std::vector<uint8_t> block(66, 0x55);  // every code 1 (value 0)
  block[5] = 0x57;                        // element 5: code 3
  std::vector<int8_t> t(256);
  uint16_t d = 0;
  unpack_tq2_0(block.data(), 1, t.data(), &d);
  EXPECT_EQ(t[5], 2);
  EXPECT_EQ(t[4], 0);
}

}  // namespace
}  // namespace bitnet::kernels
