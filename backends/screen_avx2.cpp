// KernelTable::gemv_i8_i16 with AVX2: 16 weights sign-extended to int16 and multiplied with
// vpmaddwd (pairs summed into int32), four rows (from the four quarters of the range,
// for_row_quads, so that each is a long stream the prefetcher follows) sharing each activation
// load.
#include <immintrin.h>

#include <array>

#include "backends/row_quads.hpp"
#include "backends/screen.hpp"

namespace bitnet::backends::avx2 {
namespace {

inline int32_t hsum(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(2, 3, 0, 1))));
}

inline __m256i widen(const int8_t* p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

}  // namespace

void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y) {
  const int64_t body = n / 16 * 16;
  auto run = [&](const int64_t* rows, int nr) {
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int64_t k = 0; k < body; k += 16) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k));
      for (int i = 0; i < nr; ++i) acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(widen(w + rows[i] * n + k), x));
    }
    for (int i = 0; i < nr; ++i) {
      int32_t s = hsum(acc[i]);
      for (int64_t k = body; k < n; ++k) s += int32_t{w[rows[i] * n + k]} * int32_t{a[k]};
      y[rows[i]] = s;
    }
  };
  int64_t r = for_row_quads(n_rows, 1, [&](const std::array<int64_t, 4>& rows) { run(rows.data(), 4); });
  for (; r < n_rows; ++r) run(&r, 1);
}

}  // namespace bitnet::backends::avx2
