// AVX2 exp_f32: kernels::exp_f32 on 8 lanes (see there for the steps); the tail goes through the
// scalar definition.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "backends/exp.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::backends::avx2 {

namespace {

__m256i pow2(__m256i k) { return _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23); }

__m256 exp8(__m256 x) {
  using namespace kernels;
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 c = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpMin)), _mm256_set1_ps(kExpMax));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(kExpLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kExpLn2Hi), c);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kExpLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(pow2(n1))), _mm256_castsi256_ps(pow2(n2)));
  return _mm256_blendv_ps(y, x, nan);
}

}  // namespace

void exp_f32(const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = kernels::exp_f32(x[i]);
}

// kernels::ref::softmax_f32 in three passes over 8 lanes: scale and max, exp and the sum (part
// i % 8 is double lane i % 4 of the low or the high half), normalise; tails through the
// definition's scalar steps. max_ps(x, m) keeps m when x is NaN, as std::max(m, x) does.
void softmax_f32(float* x, int64_t n, float scale, uint16_t* y16) {
  const __m256 sc = _mm256_set1_ps(scale);
  __m256 mv = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 s = _mm256_mul_ps(_mm256_loadu_ps(x + i), sc);
    _mm256_storeu_ps(x + i, s);
    mv = _mm256_max_ps(s, mv);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  float mx = lanes[0];
  for (int j = 1; j < 8; ++j) mx = std::max(mx, lanes[j]);
  for (; i < n; ++i) {
    x[i] *= scale;
    mx = std::max(mx, x[i]);
  }
  const __m256 m = _mm256_set1_ps(mx);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(x + i, e);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double p[8];
  _mm256_store_pd(p, lo);
  _mm256_store_pd(p + 4, hi);
  for (int j = 0; i < n; ++i, ++j) {
    x[i] = kernels::exp_f32(x[i] - mx);
    p[j] += static_cast<double>(x[i]);
  }
  const double sum = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
  const float inv_s = static_cast<float>(1.0 / sum);
  const __m256 inv = _mm256_set1_ps(inv_s);
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv);
    _mm256_storeu_ps(x + i, y);
    if (y16 != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(y16 + i), _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) {
    x[i] *= inv_s;
    if (y16 != nullptr) y16[i] = kernels::f32_to_f16(x[i]);
  }
}

}  // namespace bitnet::backends::avx2
