// Q8_0 and Q4_0 x Q8_0 with AVX-512 (F, BW, VL, VNNI only: the avx512 table's gate), and the
// Q8_0 activation quantizer.
//
// vpdpbusd multiplies unsigned bytes by signed ones, four products into each int32 lane with no
// saturation, so the weights go in unsigned: Q8_0's int8 with the sign bit flipped (w + 128),
// Q4_0's nibbles as stored (w + 8); a second vpdpbusd of the offset with the activations removes
// the excess. Both sums stay below 2^20, so every block's integer sum is exact. A 512-bit vector
// holds two blocks; sixteen blocks are reduced to one vector of sums, in block order, whose float
// terms (d_w * d_a, times the sum) are the reference's, added to the row's sum one by one
// (q8_0_driver.hpp).
#include <immintrin.h>

#include <cfloat>
#include <cstring>

#include "backends/q8_0.hpp"

namespace bitnet::backends::avx512 {
namespace {

using kernels::BlockQ8_0;

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 32 bytes from `lo` in the low half, 32 from `hi` in the high half.
inline __m512i pair(const void* lo, const void* hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(lo)), load256(hi), 1);
}

constexpr int kGroup = 16;

// Two blocks' weights as unsigned bytes (w + offset) in element order.
struct Q8Weights {
  static constexpr int64_t kBytes = 34;
  static __m512i offset() { return _mm512_set1_epi8(static_cast<char>(0x80)); }
  static __m512i codes(const uint8_t* b0, const uint8_t* b1) { return _mm512_xor_si512(pair(b0 + 2, b1 + 2), offset()); }
};

struct Q4Weights {
  static constexpr int64_t kBytes = 18;
  static __m512i offset() { return _mm512_set1_epi8(8); }
  // Low nibbles are elements 0-15, high nibbles 16-31: each block's 16 bytes go to two 128-bit
  // lanes, the second shifted right by 4.
  static __m512i codes(const uint8_t* b0, const uint8_t* b1) {
    const __m512i x = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(load128(b0 + 2)), load128(b1 + 2), 1));
    const __m512i dup = _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 0x40004, 0x40004, 0x40004, 0x40004, 0, 0, 0, 0, 0x40004, 0x40004,
                                            0x40004, 0x40004);
    return _mm512_and_si512(_mm512_srlv_epi16(dup, shift), _mm512_set1_epi8(0x0f));
  }
};

// s[j] holds block 2j's eight partial sums in its low half, block 2j+1's in its high half; the
// result is the 16 block sums in block order. A transpose-and-add tree leaves them in the order
// 0,2,4,6, 1,3,5,7, 8,10,12,14, 9,11,13,15, which one vpermd undoes.
inline __m512i block_sums(const __m512i* s) {
  __m512i a[4], b[2];
  for (int i = 0; i < 4; ++i)
    a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2 * i], s[2 * i + 1]), _mm512_unpackhi_epi32(s[2 * i], s[2 * i + 1]));
  for (int i = 0; i < 2; ++i)
    b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
  const __m512i c = _mm512_add_epi32(_mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                     _mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15), c);
}

// The f16 scales at the start of 16 blocks `stride` bytes apart, as f32 (exact conversions).
inline __m512 scales16(const void* p, int stride) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(stride));
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(idx, p, 1)));
}

// The 16 blocks' terms float(isum) * (d_w * d_a), the reference's operations.
template <typename F>
inline void terms(const uint8_t* w, const BlockQ8_0* a, float* t) {
  __m512i s[8];
  for (int j = 0; j < 8; ++j) {
    const uint8_t* b = w + 2 * j * F::kBytes;
    const __m512i q = pair(a[2 * j].qs, a[2 * j + 1].qs);
    s[j] = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), F::codes(b, b + F::kBytes), q),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), F::offset(), q));
  }
  const __m512 d = _mm512_mul_ps(scales16(w, F::kBytes), scales16(a, sizeof(BlockQ8_0)));
  _mm512_store_ps(t, _mm512_mul_ps(_mm512_cvtepi32_ps(block_sums(s)), d));
}

// roundf's rounding (half away from zero), exactly: the truncation is exact, so is v minus it,
// and a fraction of at least one half moves one step away from zero.
inline __m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
  const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(_mm512_set1_ps(1.0f))));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, step));
}

}  // namespace

#include "backends/q8_0_driver.hpp"

// The reference's steps block by block: amax (a maximum, the same in any order), d = amax / 127,
// q = roundf(x / d) through the reciprocal, d stored as f16 (F16C rounds as f32_to_f16). Blocks
// with a NaN or an infinity, or whose d is subnormal (its reciprocal can overflow, or put
// x * id past 127), go to the reference, which defines what happens then.
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y) {
  const __m512i exp = _mm512_set1_epi32(0x7f800000);
  for (int64_t b = 0; b < n / kernels::kQK8_0; ++b, x += kernels::kQK8_0, ++y) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const __mmask16 bad = _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v0), exp), exp) |
                          _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v1), exp), exp);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    if (bad != 0 || (d != 0.0f && d < FLT_MIN)) {
      kernels::reference_table().quantize_q8_0(x, kernels::kQK8_0, y);
      continue;
    }
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    const __m512 vid = _mm512_set1_ps(id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(v0, vid))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs + 16), _mm512_cvtepi32_epi8(round_away(_mm512_mul_ps(v1, vid))));
  }
}

}  // namespace bitnet::backends::avx512
