// Exact scalar conversions between f32 and the two 16-bit float formats (IEEE binary16, bf16).
// Integer bit manipulation only, so the result never depends on the FPU mode or on F16C being
// present; every backend's conversions are tested against these.
#include <bit>
#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    // Inf and NaN: payload moves up unchanged (a signalling NaN stays signalling, like ggml's
    // table conversion).
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: every one is a normal f32. Shift the leading 1 up to the implicit position.
    int e = 127 - 15 + 1;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u)  // NaN: keep the top payload bits, force quiet (as F16C's vcvtps2ph does)
    return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  // 65520 is halfway between 65504 (largest half, odd mantissa) and 2^16: ties-to-even overflows.
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t mant;
  int shift;
  uint32_t base;  // the result's bits above the rounded mantissa
  if (a >= 0x38800000u) {
    // Normal half: drop 13 mantissa bits. A carry out of the mantissa correctly bumps the exponent.
    base = ((a >> 23) - (127 - 15)) << 10;
    mant = a & 0x7fffffu;
    shift = 13;
  } else {
    // Subnormal half (units of 2^-24): value = m * 2^(e-150), so shift m right by 126 - e.
    const uint32_t e = a >> 23;
    if (e < 102) return sign;  // below 2^-25 (half the smallest subnormal): rounds to zero
    base = 0;
    mant = (a & 0x7fffffu) | 0x800000u;
    shift = static_cast<int>(126 - e);
  }
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | (base + q));
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: truncating could give Inf, so force the quiet bit
    return static_cast<uint16_t>((u >> 16) | 0x40u);
  // Round to nearest even on the low 16 bits; subnormals are rounded like any other value
  // (no flush to zero), and overflow carries into Inf as IEEE requires.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace bitnet::kernels
