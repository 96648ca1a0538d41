// AVX-512 exp_f32: kernels::exp_f32 on 16 lanes (see there for the steps), the tail masked.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "backends/exp.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::backends::avx512 {

namespace {

__m512i pow2(__m512i k) { return _mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23); }

__m512 exp16(__m512 x) {
  using namespace kernels;
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const __m512 c = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpMin)), _mm512_set1_ps(kExpMax));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(kExpLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kExpLn2Hi), c);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kExpLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
  p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1), n2 = _mm512_sub_epi32(ni, n1);
  const __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, _mm512_castsi512_ps(pow2(n1))), _mm512_castsi512_ps(pow2(n2)));
  return _mm512_mask_blend_ps(nan, y, x);
}

__mmask16 first(int64_t k) { return static_cast<__mmask16>((1u << k) - 1u); }

}  // namespace

void exp_f32(const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 live = first(n - i);
    _mm512_mask_storeu_ps(y + i, live, exp16(_mm512_maskz_loadu_ps(live, x + i)));
  }
}

// kernels::ref::softmax_f32 in three passes over 16 lanes: scale and max, exp and the sum (part i % 8
// is double lane i % 8: a vector's low half, then its high half), normalise. max_ps(x, m) keeps m
// when x is NaN, as std::max(m, x) does.
void softmax_f32(float* x, int64_t n, float scale, uint16_t* y16) {
  const __m512 sc = _mm512_set1_ps(scale);
  __m512 mv = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 live = first(std::min<int64_t>(16, n - i));
    const __m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, x + i), sc);
    _mm512_mask_storeu_ps(x + i, live, s);
    mv = _mm512_mask_max_ps(mv, live, s, mv);
  }
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
  __m512d part = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t k = std::min<int64_t>(16, n - i);
    const __mmask16 live = first(k);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, x + i), m));
    _mm512_mask_storeu_ps(x + i, live, e);
    part = _mm512_mask_add_pd(part, static_cast<__mmask8>(live), part, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    part = _mm512_mask_add_pd(part, static_cast<__mmask8>(live >> 8), part,
                              _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  alignas(64) double p[8];
  _mm512_store_pd(p, part);
  const double sum = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 live = first(std::min<int64_t>(16, n - i));
    const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, x + i), inv);
    _mm512_mask_storeu_ps(x + i, live, y);
    if (y16 != nullptr) _mm256_mask_storeu_epi16(y16 + i, live, _mm512_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
  }
}

}  // namespace bitnet::backends::avx512
