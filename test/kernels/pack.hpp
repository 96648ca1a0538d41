// Test-side encoders written straight from SPEC.md's bit layouts (1.2, 1.3, 1.5), independent of
// core/kernels/blocks.hpp, plus the one float tolerance every kernel test uses.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/kernels/kernels.hpp"

namespace bitnet::test {

using Bytes = std::vector<std::byte>;

inline void put_u16(Bytes& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

// Tolerance for a float result whose computation has `roundings` float roundings on its longest
// path (one per block for block dots: the running float sum; one for f32 products), compared with
// an oracle summed in double: each rounding adds at most 2^-24 relative to a partial sum, and no
// partial sum exceeds abs_sum = sum of |w_k * a_k|. The +10 covers the d_w*d_a product, the
// int->float conversion, Q6_K's 8-lane final reduction and the final round to float.
inline double dot_tolerance(int64_t roundings, double abs_sum) {
  return static_cast<double>(roundings + 10) * std::ldexp(1.0, -24) * abs_sum + 1e-30;
}

// I2_S: whole tensor of ternary values, 128-element groups -> 32 bytes, element j of a group in
// byte j%32 at bits 7-2*(j/32)..6-2*(j/32); code = w+1; f32 scale at byte n/4, 32-byte tail.
// n is rounded up to a whole group (missing elements code 1 = 0).
inline Bytes pack_i2s(const std::vector<int>& t, float scale) {
  const size_t groups = (t.size() + 127) / 128;
  Bytes b(groups * 32 + 32, std::byte{0});
  for (size_t i = 0; i < groups * 128; ++i) {
    const int code = i < t.size() ? t[i] + 1 : 1;
    const size_t g = i / 128, j = i % 128;
    b[g * 32 + j % 32] |= static_cast<std::byte>(code << (6 - 2 * static_cast<int>(j / 32)));
  }
  std::memcpy(b.data() + groups * 32, &scale, 4);
  return b;
}

// TQ2_0: per 256, qs[64] then f16 d; element 128h+32l+m at bits 2l of qs[32h+m]; code = w+1.
inline Bytes pack_tq2_0(const std::vector<int>& t, const std::vector<uint16_t>& d) {
  Bytes b(t.size() / 256 * 66, std::byte{0});
  for (size_t blk = 0; blk < t.size() / 256; ++blk) {
    for (size_t e = 0; e < 256; ++e) {
      const size_t h = e / 128, l = (e % 128) / 32, m = e % 32;
      b[blk * 66 + 32 * h + m] |= static_cast<std::byte>((t[blk * 256 + e] + 1) << (2 * l));
    }
    put_u16(b, blk * 66 + 64, d[blk]);
  }
  return b;
}

// TQ1_0: per 256, qs[48], qh[4], f16 d. Five trits t0..t4 (w+1) -> q = 81t0+27t1+9t2+3t3+t4,
// byte = ceil(q*256/243). qs[m] (m<32) holds elements m+32n; qs[32+m] (m<16) elements 160+m+16n;
// qh[j] elements 240+j+4n for n<4 with a fifth trit 0.
inline Bytes pack_tq1_0(const std::vector<int>& t, const std::vector<uint16_t>& d) {
  Bytes b(t.size() / 256 * 54, std::byte{0});
  auto encode = [](const int* trits, int count) {
    int q = 0;
    for (int n = 0; n < 5; ++n) q = q * 3 + (n < count ? trits[n] : 0);
    return static_cast<std::byte>((q * 256 + 242) / 243);
  };
  for (size_t blk = 0; blk < t.size() / 256; ++blk) {
    const int* w = t.data() + blk * 256;
    std::byte* out = b.data() + blk * 54;
    int tr[5];
    for (int m = 0; m < 32; ++m) {
      for (int n = 0; n < 5; ++n) tr[n] = w[m + 32 * n] + 1;
      out[m] = encode(tr, 5);
    }
    for (int m = 0; m < 16; ++m) {
      for (int n = 0; n < 5; ++n) tr[n] = w[160 + m + 16 * n] + 1;
      out[32 + m] = encode(tr, 5);
    }
    for (int j = 0; j < 4; ++j) {
      for (int n = 0; n < 4; ++n) tr[n] = w[240 + j + 4 * n] + 1;
      out[48 + j] = encode(tr, 4);
    }
    put_u16(b, blk * 54 + 52, d[blk]);
  }
  return b;
}

// Q4_0: per 32, f16 d then qs[16]; x[j] = (lo nibble of qs[j] - 8), x[j+16] = (hi nibble - 8).
inline Bytes pack_q4_0(const std::vector<int>& v, const std::vector<uint16_t>& d) {
  Bytes b(v.size() / 32 * 18, std::byte{0});
  for (size_t blk = 0; blk < v.size() / 32; ++blk) {
    put_u16(b, blk * 18, d[blk]);
    for (size_t j = 0; j < 16; ++j) {
      const int lo = v[blk * 32 + j] + 8, hi = v[blk * 32 + j + 16] + 8;
      b[blk * 18 + 2 + j] = static_cast<std::byte>(lo | (hi << 4));
    }
  }
  return b;
}

// Q8_0: per 32, f16 d then i8 qs[32].
inline Bytes pack_q8_0(const std::vector<int>& v, const std::vector<uint16_t>& d) {
  Bytes b(v.size() / 32 * 34, std::byte{0});
  for (size_t blk = 0; blk < v.size() / 32; ++blk) {
    put_u16(b, blk * 34, d[blk]);
    for (size_t j = 0; j < 32; ++j) b[blk * 34 + 2 + j] = static_cast<std::byte>(static_cast<int8_t>(v[blk * 32 + j]));
  }
  return b;
}

// Q6_K: per 256, ql[128] qh[64] i8 scales[16] f16 d; value v in -32..31 stored as v+32 = 4 low bits
// in ql and 2 high bits in qh. In half h (128 elements) element 32k+l (k<4, l<32): low bits in
// ql[64h + l + 32*(k%2)] (low nibble for k<2, high for k>=2), high bits at qh[32h+l] bits 2k.
// Element e uses scales[e/16].
inline Bytes pack_q6_k(const std::vector<int>& v, const std::vector<int>& scales, const std::vector<uint16_t>& d) {
  Bytes b(v.size() / 256 * 210, std::byte{0});
  for (size_t blk = 0; blk < v.size() / 256; ++blk) {
    std::byte* out = b.data() + blk * 210;
    for (size_t e = 0; e < 256; ++e) {
      const int u = v[blk * 256 + e] + 32;
      const size_t h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int lo_shift = k < 2 ? 0 : 4;
      out[64 * h + l + 32 * (k % 2)] |= static_cast<std::byte>((u & 15) << lo_shift);
      out[128 + 32 * h + l] |= static_cast<std::byte>((u >> 4) << (2 * k));
    }
    for (size_t s = 0; s < 16; ++s) out[192 + s] = static_cast<std::byte>(static_cast<int8_t>(scales[blk * 16 + s]));
    put_u16(b, blk * 210 + 208, d[blk]);
  }
  return b;
}

// Random helpers with fixed seeds in the tests.
inline std::vector<int> random_ints(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// f16 scales in [lo, hi) (rounded to f16).
inline std::vector<uint16_t> random_f16(std::mt19937& rng, size_t n, float lo, float hi) {
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = kernels::f32_to_f16(std::uniform_real_distribution<float>(lo, hi)(rng));
  return v;
}

}  // namespace bitnet::test
