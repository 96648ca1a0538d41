// KernelTable::gemv_i8_i16 with AVX-512BW: 32 weights sign-extended to int16 per vpmaddwd, four
// rows sharing each activation load, the tail through masked loads.
#include <immintrin.h>

#include "backends/screen.hpp"

namespace bitnet::backends::avx512 {

void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y) {
  auto step = [&](int64_t k, __mmask32 m, const int8_t* const* rows, int nr, __m512i* acc) {
    const __m512i x = _mm512_maskz_loadu_epi16(m, a + k);
    for (int i = 0; i < nr; ++i)
      acc[i] = _mm512_add_epi32(acc[i], _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, rows[i] + k)), x));
  };
  auto run = [&](int64_t r, int nr) {
    const int8_t* rows[4];
    __m512i acc[4];
    for (int i = 0; i < nr; ++i) {
      rows[i] = w + (r + i) * n;
      acc[i] = _mm512_setzero_si512();
    }
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) step(k, 0xFFFFFFFFu, rows, nr, acc);
    if (k < n) step(k, static_cast<__mmask32>((1ull << (n - k)) - 1), rows, nr, acc);
    for (int i = 0; i < nr; ++i) y[r + i] = _mm512_reduce_add_epi32(acc[i]);
  };
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) run(r, 4);
  for (; r < n_rows; ++r) run(r, 1);
}

}  // namespace bitnet::backends::avx512
