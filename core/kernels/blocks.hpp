// Byte layouts of ggml's weight blocks (SPEC.md 1.2-1.5) and the small decoders shared by the
// scalar dequantizer, the reference dot products and tests. Blocks are addressed as bytes, not
// structs: 18/34/54/66/210-byte blocks leave the f16 scale at best 2-aligned inside a tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/kernels/kernels.hpp"

namespace bitnet::kernels::detail {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Offsets of each field inside one block, and the block size in bytes.
struct Q4_0Layout { static constexpr size_t d = 0, qs = 2, bytes = 18; };
struct Q8_0Layout { static constexpr size_t d = 0, qs = 2, bytes = 34; };
struct Q6_KLayout { static constexpr size_t ql = 0, qh = 128, scales = 192, d = 208, bytes = 210; };
struct TQ1_0Layout { static constexpr size_t qs = 0, qh = 48, d = 52, bytes = 54; };
struct TQ2_0Layout { static constexpr size_t qs = 0, d = 64, bytes = 66; };
inline constexpr size_t kI2sBlockBytes = 32;  // 128 two-bit codes

// Raw 2-bit I2_S code (0..3) of flat element idx: 128-element groups of 32 bytes, element j of a
// group in byte j%32 at shift 6-2*(j/32) (MSB-first, SPEC 1.3).
inline int i2s_code(const uint8_t* w, int64_t idx) {
  const int64_t pos = idx % 128;
  const uint8_t byte = w[(idx / 128) * 32 + pos % 32];
  return (byte >> (6 - 2 * (pos / 32))) & 3;
}

// I2_S code -> ternary value; code 3 never appears in files and decodes as 0 like bitnet.cpp.
inline constexpr int kI2sValue[4] = {-1, 0, 1, 0};

// Trit n (0..4) of a TQ1_0 byte. The byte is a base-3 number scaled to a 0..255 fraction;
// multiplying by 3^n (mod 256) shifts trit n to the top, and *3 >> 8 reads it off.
inline int tq1_trit(uint8_t b, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const auto shifted = static_cast<uint8_t>(b * kPow3[n]);
  return (shifted * 3) >> 8;
}

// Round half to even for |x| < 2^22, the way ggml's nearest_int does: adding 1.5*2^23 makes the
// FPU round x to an integer (default rounding mode), which then sits in the low mantissa bits.
inline int nearest_int(float x) {
  const float biased = x + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// Block unpackers to small integers in element order. Dequantization multiplies by the scales;
// dot products multiply by the activations.

// Q4_0: 32 values -8..7; low nibbles are elements 0..15, high nibbles 16..31.
inline void unpack_q4_0(const uint8_t* b, int8_t* v) {
  const uint8_t* qs = b + Q4_0Layout::qs;
  for (int j = 0; j < 16; ++j) {
    v[j] = static_cast<int8_t>((qs[j] & 0x0f) - 8);
    v[j + 16] = static_cast<int8_t>((qs[j] >> 4) - 8);
  }
}

// Q6_K: 256 values -32..31 (element e uses scale e/16). Per 128-element half, 4 bits from ql and
// 2 from qh; ql byte l and l+32 serve four elements 32 apart (low nibbles first).
inline void unpack_q6_k(const uint8_t* b, int8_t* v) {
  const uint8_t* ql = b + Q6_KLayout::ql;
  const uint8_t* qh = b + Q6_KLayout::qh;
  for (int half = 0; half < 2; ++half, v += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      v[l] = static_cast<int8_t>(((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32);
      v[l + 32] = static_cast<int8_t>(((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32);
      v[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      v[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

// TQ1_0: 256 ternary values. Elements 0..159: qs[0..31], trit n of byte m is element 32n+m;
// 160..239: qs[32..47], element 160+16n+m; 240..255: qh[0..3] (4 trits each), element 240+4n+j.
inline void unpack_tq1_0(const uint8_t* b, int8_t* t) {
  const uint8_t* qs = b + TQ1_0Layout::qs;
  const uint8_t* qh = b + TQ1_0Layout::qh;
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) *t++ = static_cast<int8_t>(tq1_trit(qs[m], n) - 1);
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) *t++ = static_cast<int8_t>(tq1_trit(qs[32 + m], n) - 1);
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 4; ++j) *t++ = static_cast<int8_t>(tq1_trit(qh[j], n) - 1);
}

// TQ2_0: 256 ternary values; element 128h+32l+m is bits 2l..2l+1 of qs[32h+m] (LSB-first).
inline void unpack_tq2_0(const uint8_t* b, int8_t* t) {
  const uint8_t* qs = b + TQ2_0Layout::qs;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 4; ++l)
      for (int m = 0; m < 32; ++m) *t++ = static_cast<int8_t>(((qs[32 * h + m] >> (2 * l)) & 3) - 1);
}

// Block dequantizers (WeightFormat::dequant_block), bit-exact with ggml's dequantize_row_*: the
// same float operations in the same order.

// Integer value times the f16 block scale (exact for Q4_0, Q8_0 and the ternary types).
template <size_t kD, size_t kN, void (*Unpack)(const uint8_t*, int8_t*)>
void dequant_scaled(const uint8_t* b, float* y) {
  int8_t v[kN];
  Unpack(b, v);
  const float d = f16_to_f32(load_u16(b + kD));
  for (size_t j = 0; j < kN; ++j) y[j] = static_cast<float>(v[j]) * d;
}

inline void unpack_q8_0(const uint8_t* b, int8_t* v) { std::memcpy(v, b + Q8_0Layout::qs, 32); }

inline void dequant_q4_0(const uint8_t* b, float* y) { dequant_scaled<Q4_0Layout::d, 32, unpack_q4_0>(b, y); }
inline void dequant_q8_0(const uint8_t* b, float* y) { dequant_scaled<Q8_0Layout::d, 32, unpack_q8_0>(b, y); }
inline void dequant_tq1_0(const uint8_t* b, float* y) { dequant_scaled<TQ1_0Layout::d, 256, unpack_tq1_0>(b, y); }
inline void dequant_tq2_0(const uint8_t* b, float* y) { dequant_scaled<TQ2_0Layout::d, 256, unpack_tq2_0>(b, y); }

inline void dequant_q6_k(const uint8_t* b, float* y) {
  int8_t v[256];
  unpack_q6_k(b, v);
  const float d = f16_to_f32(load_u16(b + Q6_KLayout::d));
  const auto* sc = reinterpret_cast<const int8_t*>(b + Q6_KLayout::scales);
  // (d * scale) * q in that order: the product can need 25 bits, and this is how ggml rounds it.
  for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(sc[j / 16]) * static_cast<float>(v[j]);
}

}  // namespace bitnet::kernels::detail
