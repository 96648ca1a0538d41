// AVX2 entries for the float formats (F16, BF16, F32 dots; F16 many-row products; f32 to F16 and
// BF16). Every result equals the reference's bits: the reference sums a dot in 64 float lanes
// (element i in lane i mod 64) with one fused multiply-add per element and then a fixed tree, and
// these entries keep the lanes and the tree, only vectorised.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backends/avx2.hpp"
#include "backends/f16_pairs.hpp"
#include "core/kernels/reference.hpp"

namespace bitnet::backends::avx2 {
namespace {

// The last three levels of f16_lane_sum's tree over 8 lanes: j + j+4, then j + j+2, then 0 + 1.
inline float hsum8_tree(__m256 u) {
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
  const __m128 s = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}


// Eight elements as floats: F16C's conversion and bf16's shift are exact.
inline __m256 load8(const uint16_t* p, bool bf16) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
}
inline __m256 load8(const float* p, bool) { return _mm256_loadu_ps(p); }

// The reference's 64 float lanes (F16, BF16, F32 dots) as eight 8-float accumulators: acc[k]
// holds lanes 8k..8k+7, one fused multiply-add per element like the reference's std::fma (F16
// products are exact, so there it also equals the reference's separate multiply and add).
template <typename T, bool kBf16 = false>
float lane_dot(const T* w, const T* a, int64_t n) {
  __m256 acc[8];
  for (auto& v : acc) v = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_fmadd_ps(load8(w + i + 8 * k, kBf16), load8(a + i + 8 * k, kBf16), acc[k]);
  // The tail from zero-padded copies, blended into the live lanes only: a lane may hold -0 (an
  // F32 product below the smallest subnormal), which adding a +0 product would turn into +0.
  for (int k = 0; i < n; ++k, i += 8) {
    T wt[8] = {}, at[8] = {};
    const int64_t m = std::min<int64_t>(8, n - i);
    std::memcpy(wt, w + i, static_cast<size_t>(m) * sizeof(T));
    std::memcpy(at, a + i, static_cast<size_t>(m) * sizeof(T));
    const __m256 live = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    acc[k] = _mm256_blendv_ps(acc[k], _mm256_fmadd_ps(load8(wt, kBf16), load8(at, kBf16), acc[k]), live);
  }
  // f16_lane_sum's tree: lanes j and j+16 are acc[k] and acc[k+2], j+32 and j+48 acc[k+4], acc[k+6].
  const __m256 v0 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[4], acc[6]));
  const __m256 v1 = _mm256_add_ps(_mm256_add_ps(acc[1], acc[3]), _mm256_add_ps(acc[5], acc[7]));
  return hsum8_tree(_mm256_add_ps(v0, v1));
}

// --- F16 rows x tokens (KernelTable::gemm_f16): attention's products and F16 matrices ---
//
// Each token is converted to f32 once (zero-padded to whole 64-element chunks), so the inner loop
// converts only the weights and each converted weight vector serves NT tokens. Per (row, token)
// the reference's 64 lanes are eight 8-float accumulators; NT tokens x 8 do not fit in 16 ymm
// registers, so with NT > 1 a row is read in two passes, lanes 0-31 of every chunk and then lanes
// 32-63 (the second pass reads the row from L1). A row's last partial chunk comes from a
// zero-padded copy: the padded lanes add 0 x 0 = +0, which leaves every lane as it was (a lane
// of exact F16 products never holds -0: it starts at +0 and an exact zero sum rounds to +0).
constexpr int64_t kF16MaxN = 16384;  // longest row whose tokens fit the f32 buffer (a V row: the context)
constexpr int kF16MaxTokens = 3;

inline __m256 cvt8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// acc[t][j] += row[i + 8j..] * token t's af[i + 8j..] over the chunks, for the V vectors of one
// pass starting at lane `first`.
template <int NT, int V>
inline void f16_pass(const uint16_t* row, const uint16_t* tail, int64_t full, bool has_tail, const float* af, int first,
                     __m256 (&acc)[NT][V]) {
  for (auto& t : acc)
    for (auto& v : t) v = _mm256_setzero_ps();
  for (int64_t i = 0; i < full; i += 64) {
    // 64 KB ahead into L2: a matrix's rows stream from memory, and so do a decode's K rows (one
    // head's 256 bytes every 1280), which 32 KB left short of the bandwidth (docs/benchmarks.md).
    _mm_prefetch(reinterpret_cast<const char*>(row + i + first) + 65536, _MM_HINT_T1);
    for (int j = 0; j < V; ++j) {
      const __m256 w = cvt8(row + i + first + 8 * j);
      for (int t = 0; t < NT; ++t)
        acc[t][j] = _mm256_fmadd_ps(w, _mm256_load_ps(af + t * kF16MaxN + i + first + 8 * j), acc[t][j]);
    }
  }
  if (!has_tail) return;
  for (int j = 0; j < V; ++j) {
    const __m256 w = cvt8(tail + first + 8 * j);
    for (int t = 0; t < NT; ++t)
      acc[t][j] = _mm256_fmadd_ps(w, _mm256_load_ps(af + t * kF16MaxN + full + first + 8 * j), acc[t][j]);
  }
}

// NT tokens (converted in af) x rows [0, n_rows): one pass of 8 vectors for one token, two of 4
// for more.
template <int NT>
void f16_rows(const uint16_t* w, int64_t w_stride, int64_t n_rows, const float* af, int64_t n, float* y,
              int64_t y_stride) {
  constexpr int V = NT == 1 ? 8 : 4;
  const int64_t full = n / 64 * 64;
  const bool has_tail = full < n;
  alignas(32) uint16_t tail[64] = {};
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint16_t* row = w + r * w_stride;
    if (has_tail) std::memcpy(tail, row + full, static_cast<size_t>(n - full) * sizeof(uint16_t));
    __m256 lanes[NT][8];
    for (int p = 0; p < 8 / V; ++p) {
      __m256 acc[NT][V];
      f16_pass<NT, V>(row, tail, full, has_tail, af, 8 * V * p, acc);
      for (int t = 0; t < NT; ++t)
        for (int j = 0; j < V; ++j) lanes[t][V * p + j] = acc[t][j];
    }
    for (int t = 0; t < NT; ++t) {
      const __m256* l = lanes[t];
      const __m256 v0 = _mm256_add_ps(_mm256_add_ps(l[0], l[2]), _mm256_add_ps(l[4], l[6]));
      const __m256 v1 = _mm256_add_ps(_mm256_add_ps(l[1], l[3]), _mm256_add_ps(l[5], l[7]));
      y[t * y_stride + r] = hsum8_tree(_mm256_add_ps(v0, v1));
    }
  }
}

}  // namespace

float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n) { return lane_dot(w, a, n); }

float dot_bf16_bf16(const uint16_t* w, const uint16_t* a, int64_t n) { return lane_dot<uint16_t, true>(w, a, n); }

float dot_f32_f32(const float* w, const float* a, int64_t n) { return lane_dot(w, a, n); }

void to_f16(const float* x, int64_t n, uint16_t* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = kernels::f32_to_f16(x[i]);
}

void to_bf16(const float* x, int64_t n, uint16_t* y) {
  // f32_to_bf16's integer rounding (to nearest even on the low 16 bits, NaN forced quiet), 16
  // elements a step.
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), magnitude = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000), quiet = _mm256_set1_epi32(0x40);
  auto round8 = [&](const float* p) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(p));
    const __m256i top = _mm256_srli_epi32(u, 16);
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(top, one))), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, magnitude), inf);
    return _mm256_blendv_epi8(r, _mm256_or_si256(top, quiet), nan);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // Both halves are 0..0xffff, so the unsigned-saturating pack is exact; it interleaves 128-bit
    // lanes, which the 64-bit permute puts back in order.
    const __m256i packed = _mm256_packus_epi32(round8(x + i), round8(x + i + 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_permute4x64_epi64(packed, 0xD8));
  }
  for (; i < n; ++i) y[i] = kernels::f32_to_bf16(x[i]);
}

void gemm_f16(const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a, int64_t a_stride, int64_t n_tokens,
              int64_t n, float* y, int64_t y_stride) {
  if (n > kF16MaxN) return f16_pairs(dot_f16_f16, w, w_stride, n_rows, a, a_stride, n_tokens, n, y, y_stride);
  alignas(32) static thread_local float af[kF16MaxTokens * kF16MaxN];
  const int64_t padded = (n + 63) / 64 * 64;
  for (int64_t t0 = 0; t0 < n_tokens;) {
    // Blocks of 3 tokens, but 4 as 2 + 2 (attention's four query heads per KV head): a block of
    // one reads the rows again for a single token.
    const int64_t left = n_tokens - t0;
    const int nt = static_cast<int>(left == 4 ? 2 : std::min<int64_t>(kF16MaxTokens, left));
    for (int t = 0; t < nt; ++t) {
      float* dst = af + t * kF16MaxN;
      const uint16_t* src = a + (t0 + t) * a_stride;
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_store_ps(dst + i, cvt8(src + i));
      for (; i < n; ++i) dst[i] = kernels::f16_to_f32(src[i]);
      for (; i < padded; ++i) dst[i] = 0.0f;
    }
    float* yt = y + t0 * y_stride;
    switch (nt) {
      case 1: f16_rows<1>(w, w_stride, n_rows, af, n, yt, y_stride); break;
      case 2: f16_rows<2>(w, w_stride, n_rows, af, n, yt, y_stride); break;
      default: f16_rows<3>(w, w_stride, n_rows, af, n, yt, y_stride); break;
    }
    t0 += nt;
  }
}

}  // namespace bitnet::backends::avx2
