// AVX-512 exp_f32: kernels::exp_f32 on 16 lanes (see there for the steps), the tail masked.
#include <immintrin.h>

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

}  // namespace

void exp_f32(const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const auto live = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, live, exp16(_mm512_maskz_loadu_ps(live, x + i)));
  }
}

}  // namespace bitnet::backends::avx512
