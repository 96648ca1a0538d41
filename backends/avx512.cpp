// AVX-512 kernels with VNNI: vpdpbusd multiplies unsigned codes by signed int8 activations and
// accumulates straight into int32 (no int16 stage). Two 128-element I2_S groups per 512-bit
// load. Operations not specialised here come from the AVX2 table.
#include <immintrin.h>

#include <cstring>

#include "backends/avx2.hpp"
#include "backends/tables.hpp"
#include "core/kernels/reference.hpp"

namespace bitnet::backends::avx512 {
namespace {

using kernels::BlockQ8K;

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 64 activation bytes: 32 from `lo` in the low half, 32 from `hi` in the high half.
inline __m512i pair(const int8_t* lo, const int8_t* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo)), load256(hi), 1);
}

inline int32_t block_qsum(const BlockQ8K* a) {
  int32_t s = 0;
  for (int16_t b : a->bsums) s += b;
  return s;
}

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return kernels::f16_to_f32(h);
}

// 2x128 elements: 64 packed bytes (32 per group) whose fields at shifts S0..S3 hold elements
// 0-31 .. 96-127 of each group; q0/q1 are the two groups' activations.
template <int S0, int S1, int S2, int S3>
inline __m512i two_groups(__m512i acc, __m512i x, const int8_t* q0, const int8_t* q1) {
  const __m512i mask = _mm512_set1_epi8(3);
  acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, S0), mask), pair(q0, q1));
  acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, S1), mask), pair(q0 + 32, q1 + 32));
  acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, S2), mask), pair(q0 + 64, q1 + 64));
  acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, S3), mask), pair(q0 + 96, q1 + 96));
  return acc;
}

}  // namespace

int32_t dot_i2s_i8(const uint8_t* w, int64_t first, const int8_t* q, int64_t n) {
  if (first % kernels::kQK_I2S != 0 || n % kernels::kQK_I2S != 0) return kernels::ref::dot_i2s_i8(w, first, q, n);
  const uint8_t* p = w + first / 4;
  const int64_t groups = n / kernels::kQK_I2S;
  __m512i acc = _mm512_setzero_si512();
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2)
    acc = two_groups<6, 4, 2, 0>(acc, _mm512_loadu_si512(p + 32 * g), q + 128 * g, q + 128 * (g + 1));
  int32_t sum = _mm512_reduce_add_epi32(acc);
  if (g < groups) sum += avx2::dot_i2s_i8(p + 32 * g, 0, q + 128 * g, kernels::kQK_I2S);
  return sum;
}

float dot_tq2_0_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(w);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kernels::kQK_K; ++i, b += 66, ++a) {
    // qs[0..31] serve elements 0-127 and qs[32..63] elements 128-255, LSB-first.
    const __m512i acc = two_groups<0, 2, 4, 6>(_mm512_setzero_si512(), _mm512_loadu_si512(b), a->qs, a->qs + 128);
    const int32_t isum = _mm512_reduce_add_epi32(acc) - block_qsum(a);
    sum += static_cast<float>(isum) * (f16(b + 64) * a->d);
  }
  return sum;
}

float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n) {
  // As in AVX2: exact f32 products summed in double.
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 wf = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    const __m512 af = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
    const __m512 p = _mm512_mul_ps(wf, af);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
  }
  double sum = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
  for (; i < n; ++i) sum += static_cast<double>(kernels::f16_to_f32(w[i]) * kernels::f16_to_f32(a[i]));
  return static_cast<float>(sum);
}

}  // namespace bitnet::backends::avx512

namespace bitnet::backends {

const kernels::KernelTable& avx512_table() {
  static const kernels::KernelTable table = [] {
    kernels::KernelTable t = avx2_table();
    t.name = "avx512";
    t.dot_i2s_i8 = avx512::dot_i2s_i8;
    t.dot_tq2_0_q8_k = avx512::dot_tq2_0_q8_k;
    t.dot_f16_f16 = avx512::dot_f16_f16;
    return t;
  }();
  return table;
}

}  // namespace bitnet::backends
