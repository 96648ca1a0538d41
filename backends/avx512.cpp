// AVX-512 kernels with VNNI: vpdpbusd multiplies unsigned codes by signed int8 activations and
// accumulates straight into int32 (no int16 stage). Two 128-element I2_S groups per 512-bit
// load. Operations not specialised here come from the AVX2 table.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backends/f16_pairs.hpp"
#include "backends/avx2.hpp"
#include "backends/exp.hpp"
#include "backends/q6k.hpp"
#include "backends/q8_0.hpp"
#include "backends/row_quads.hpp"
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

inline uint16_t u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// F16C's conversion is exact, like the reference's bit manipulation.
inline float f16(const uint8_t* p) { return _cvtsh_ss(u16(p)); }

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

// f16_lane_sum's tree over the four 16-float accumulators (lanes 0-15, 16-31, 32-47, 48-63):
// (l[j] + l[j+16]) + (l[j+32] + l[j+48]), then j + j+8, j + j+4, j + j+2, 0 + 1.
inline float f16_lane_sum(const __m512* acc) {
  const __m512 v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
  const __m256 u = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
  const __m128 q = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
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

namespace {

// 16 elements (those under m) as floats, the others 0: F16C's conversion and bf16's shift are exact.
inline __m512 load16(const uint16_t* p, __mmask16 m, bool bf16) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}
inline __m512 load16(const float* p, __mmask16 m, bool) { return _mm512_maskz_loadu_ps(m, p); }

// The reference's 64 float lanes (F16, BF16, F32 dots) as four 16-float accumulators, one fused
// multiply-add per element like the reference's std::fma (F16 products are exact, so there it
// also equals the reference's separate multiply and add). The tail's masked FMA leaves the lanes
// past n as they are: adding a +0 product would turn a -0 lane (an F32 product below the
// smallest subnormal) into +0.
template <typename T, bool kBf16 = false>
float lane_dot(const T* w, const T* a, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm512_fmadd_ps(load16(w + i + 16 * j, 0xFFFF, kBf16), load16(a + i + 16 * j, 0xFFFF, kBf16), acc[j]);
  for (int j = 0; i < n; i += 16, ++j) {
    const int64_t left = n - i;
    const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
    acc[j] = _mm512_mask3_fmadd_ps(load16(w + i, m, kBf16), load16(a + i, m, kBf16), acc[j], m);
  }
  return f16_lane_sum(acc);
}

}  // namespace

float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n) { return lane_dot(w, a, n); }

float dot_bf16_bf16(const uint16_t* w, const uint16_t* a, int64_t n) { return lane_dot<uint16_t, true>(w, a, n); }

float dot_f32_f32(const float* w, const float* a, int64_t n) { return lane_dot(w, a, n); }

void to_bf16(const float* x, int64_t n, uint16_t* y) {
  // f32_to_bf16's integer rounding: to nearest even on the low 16 bits, NaN forced quiet.
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
    const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    const __m512i top = _mm512_srli_epi32(u, 16);
    const __m512i odd = _mm512_and_si512(top, _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16);
    const __mmask16 nan =
        _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    _mm512_mask_cvtepi32_storeu_epi16(y + i, m, _mm512_mask_or_epi32(r, nan, top, _mm512_set1_epi32(0x40)));
  }
}

// Q8_K quantization with the reference's results bit for bit: the signed value of largest
// magnitude (the first on ties) fixes the scale, products rounded to nearest even (the
// reference's magic-number rounding, exact for |v| < 2^22; here |v| <= 127). Blocks holding a NaN
// or an infinity go to the reference, whose comparisons define what happens then.
void quantize_q8_k(const float* x, int64_t n, BlockQ8K* y) {
  for (int64_t b = 0; b < n / kernels::kQK_K; ++b, x += kernels::kQK_K, ++y) {
    __m512 vmax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int j = 0; j < 16; ++j) {
      const __m512 v = _mm512_loadu_ps(x + 16 * j);
      bad |= _mm512_fpclass_ps_mask(v, 0x01 | 0x08 | 0x10 | 0x80);  // QNaN, +inf, -inf, SNaN
      vmax = _mm512_max_ps(vmax, _mm512_abs_ps(v));
    }
    if (bad != 0) {
      kernels::reference_table().quantize_q8_k(x, kernels::kQK_K, y);
      continue;
    }
    const float amax = _mm512_reduce_max_ps(vmax);
    if (amax == 0.0f) {
      std::memset(y, 0, sizeof *y);
      continue;
    }
    float max = 0.0f;
    for (int j = 0; j < 16; ++j) {
      const __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (m != 0) {
        max = x[16 * j + __builtin_ctz(m)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m512 vs = _mm512_set1_ps(iscale);
    for (int j = 0; j < 16; ++j) {
      const __m512i v = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + 16 * j))),
                                         _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs + 16 * j), _mm512_cvtsepi32_epi8(v));
      y->bsums[j] = static_cast<int16_t>(_mm512_reduce_add_epi32(v));
    }
    y->d = 1.0f / iscale;
  }
}


// F16 rows x up to 4 F16 tokens. Each token is converted to f32 once (zero-padded to a multiple
// of 16), so the inner loop converts only the weights, and each converted weight vector serves
// all the tokens; per (row, token) the reference's 64 lanes as four accumulators.
constexpr int64_t kF16MaxN = 16384;  // a decode's V rows are as long as the context

// acc[t][j] += columns [c0, c1) of a row of n x token t in the reference's lane order: whole
// 64-column steps, then (only where c1 is the row's end) the tail 16 at a time, prefetching
// `ahead` bytes on into L2.
template <int NT>
inline void f16_span(const uint16_t* row, const float* af /* [NT][kF16MaxN] */, int64_t c0, int64_t c1, int64_t n,
                     int64_t ahead, __m512 (&acc)[NT][4]) {
  auto chunk = [&](const __m512 wf, int64_t i, int j) {
    for (int t = 0; t < NT; ++t) acc[t][j] = _mm512_fmadd_ps(wf, _mm512_load_ps(af + t * kF16MaxN + i), acc[t][j]);
  };
  int64_t i = c0;
  for (; i + 64 <= c1; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(row + i) + ahead, _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(row + i) + ahead + 64, _MM_HINT_T1);
    for (int j = 0; j < 4; ++j) chunk(_mm512_cvtph_ps(load256(row + i + 16 * j)), i + 16 * j, j);
  }
  for (int j = 0; i < c1; i += 16, ++j) {
    const int64_t left = n - i;
    const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
    chunk(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + i)), i, j);
  }
}

template <int NT>
void f16_rows(const uint16_t* w, int64_t w_stride, int64_t n_rows, const float* af /* [NT][kF16MaxN] */, int64_t n,
              float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    __m512 acc[NT][4];
    for (auto& t : acc) t[0] = t[1] = t[2] = t[3] = _mm512_setzero_ps();
    // 32 KB ahead (six 2560-wide rows): on the 2B model's output matrix, 2 threads read 17.7 GB/s
    // with the hardware prefetcher alone, 22.7 with this (measured with bench --kernels).
    f16_span<NT>(w + r * w_stride, af, 0, n, n, 32768, acc);
    for (int t = 0; t < NT; ++t) y[t * y_stride + r] = f16_lane_sum(acc[t]);
  }
}

// f16_lane_sum of 16 vectors at once: lane k of the result is the tree of v[k] after its first
// step ((acc[0] + acc[1]) + (acc[2] + acc[3]), done by the caller), with the same pairs added at
// every level, so the same bits; 46 instructions for 16 sums instead of about 9 each.
inline __m512 lane_sums16(const __m512* v) {
  __m512 w[8], t[4], q[2];
  for (int i = 0; i < 8; ++i)  // rows 2i, 2i+1: lanes j + (j + 8), 8 lanes each
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // rows 4i..4i+3, one per 128 bits: j + (j + 4)
    t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // 128-bit block k: rows 8i+k and 8i+4+k, two lanes each: j + (j + 2)
    q[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // 0 + 1: block k holds rows k, 4+k, 8+k, 12+k; the permutation puts row r in lane r.
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(q[0], q[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(q[0], q[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

// f16_rows for rows of exactly N = 64 or 128 elements (attention's K rows: one head) and one or two
// tokens: the tokens stay in registers (8 vectors each at 128), so a row costs its own loads and
// the multiply-adds, not 4 x 2 token loads per 16 weights; 16 rows share lane_sums16.
constexpr int64_t kHeadAhead = 65536;

template <int NT, int N>
void f16_rows_head(const uint16_t* w, int64_t w_stride, int64_t n_rows, const float* af /* [NT][kF16MaxN] */,
                   float* y, int64_t y_stride) {
  constexpr int kV = N / 16;
  __m512 a[NT][kV];
  for (int t = 0; t < NT; ++t)
    for (int k = 0; k < kV; ++k) a[t][k] = _mm512_load_ps(af + t * kF16MaxN + 16 * k);
  for (int64_t r0 = 0; r0 < n_rows; r0 += 16) {
    const int64_t nr = std::min<int64_t>(16, n_rows - r0);
    __m512 v[NT][16];
    for (int64_t r = 0; r < 16; ++r) {
      if (r >= nr) {
        for (int t = 0; t < NT; ++t) v[t][r] = _mm512_setzero_ps();
        continue;
      }
      const uint16_t* row = w + (r0 + r) * w_stride;
      // The same columns 64 KB on (51 keys of a 640-wide KV cache), every line of them: a decode's
      // K rows come from DRAM, and a shorter distance or half the lines left its K pass well under
      // the machine's bandwidth (docs/benchmarks.md, "long contexts").
      const char* ahead = reinterpret_cast<const char*>(row) + kHeadAhead;
      for (int b = 0; b < 2 * N; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T1);
      _mm_prefetch(ahead + 2 * N - 1, _MM_HINT_T1);
      __m512 acc[NT][4];
      for (int k = 0; k < kV; ++k) {  // f16_rows' order: element i in accumulator (i / 16) % 4
        const __m512 wf = _mm512_cvtph_ps(load256(row + 16 * k));
        for (int t = 0; t < NT; ++t)
          acc[t][k % 4] = k < 4 ? _mm512_fmadd_ps(wf, a[t][k], _mm512_setzero_ps()) : _mm512_fmadd_ps(wf, a[t][k], acc[t][k % 4]);
      }
      for (int t = 0; t < NT; ++t)
        v[t][r] = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
    }
    const auto m = static_cast<__mmask16>((1u << nr) - 1u);
    for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * y_stride + r0, m, lane_sums16(v[t]));
  }
}

// f16_rows for long rows (attention's V rows in a decode: one per channel, as long as the
// context): blocks of kF16TileRows rows walked kF16TileCols columns at a time, so that the tokens' f32
// slice of those columns and the block's accumulators stay in L1; f16_rows re-reads NT x n
// floats from L2 for every row, 8 bytes of tokens per byte of weights, and was L2-bound. Each
// accumulator sees the same products in the same order as in f16_rows (the tiles are whole
// 64-column steps and the tail is the row's last), so the results are the same bits.
constexpr int64_t kF16TileRows = 8, kF16TileCols = 512;

template <int NT>
void f16_rows_tiled(const uint16_t* w, int64_t w_stride, int64_t n_rows, const float* af /* [NT][kF16MaxN] */,
                    int64_t n, float* y, int64_t y_stride) {
  alignas(64) __m512 acc[kF16TileRows][NT][4];
  for (int64_t r0 = 0; r0 < n_rows; r0 += kF16TileRows) {
    const int64_t nr = std::min(kF16TileRows, n_rows - r0);
    for (int64_t r = 0; r < nr; ++r)
      for (auto& t : acc[r]) t[0] = t[1] = t[2] = t[3] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < n; c0 += kF16TileCols) {
      const int64_t c1 = std::min(n, c0 + kF16TileCols);
      for (int64_t r = 0; r < nr; ++r) {
        __m512 a[NT][4];
        for (int t = 0; t < NT; ++t)
          for (int j = 0; j < 4; ++j) a[t][j] = acc[r][t][j];
        // This row's columns two tiles on: the block's rows are eight streams. kF16TileCols is
        // whole 64-column steps, so only the last tile has a tail.
        f16_span<NT>(w + (r0 + r) * w_stride, af, c0, c1, n, 2 * kF16TileCols * sizeof(uint16_t), a);
        for (int t = 0; t < NT; ++t)
          for (int j = 0; j < 4; ++j) acc[r][t][j] = a[t][j];
      }
    }
    for (int64_t r = 0; r < nr; ++r)
      for (int t = 0; t < NT; ++t) y[t * y_stride + r0 + r] = f16_lane_sum(acc[r][t]);
  }
}

// One token, four rows at a time from the four quarters of the range (for_row_quads), each row
// with f16_rows' lanes and order.
void f16_quarters(const uint16_t* w, int64_t w_stride, int64_t n_rows, const float* af, int64_t n, float* y) {
  const int64_t ahead = 2 * w_stride;  // two rows on in each stream, into L2
  const int64_t left = for_row_quads(n_rows, 1, [&](const std::array<int64_t, 4>& quad) {
    const uint16_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = w + quad[r] * w_stride;
    __m512 acc[4][4];
    for (auto& r : acc) r[0] = r[1] = r[2] = r[3] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= n; k += 64) {
      for (const uint16_t* row : rows) {
        _mm_prefetch(reinterpret_cast<const char*>(row + k + ahead), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(row + k + ahead) + 64, _MM_HINT_T1);
      }
      for (int j = 0; j < 4; ++j) {
        const __m512 a = _mm512_load_ps(af + k + 16 * j);
        for (int r = 0; r < 4; ++r)
          acc[r][j] = _mm512_fmadd_ps(_mm512_cvtph_ps(load256(rows[r] + k + 16 * j)), a, acc[r][j]);
      }
    }
    for (int j = 0; k < n; k += 16, ++j) {
      const int64_t rest = n - k;
      const auto m = static_cast<__mmask16>(rest >= 16 ? 0xFFFFu : (1u << rest) - 1u);
      const __m512 a = _mm512_load_ps(af + k);
      for (int r = 0; r < 4; ++r)
        acc[r][j] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, rows[r] + k)), a, acc[r][j]);
    }
    for (int r = 0; r < 4; ++r) y[quad[r]] = f16_lane_sum(acc[r]);
  });
  f16_rows<1>(w + left * w_stride, w_stride, n_rows - left, af, n, y + left, 0);
}

// --- decode rows and the I2_S tiles of 4 rows x 4 tokens (16 int32 accumulators) ---
namespace {

// Lane k of the result is the sum of the 16 lanes of v[k] (a transpose-and-add tree).
inline __m512i reduce16(const __m512i* v) {
  __m512i a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i)
    a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i)
    b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
  for (int i = 0; i < 2; ++i)
    c[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// 32 packed bytes whose 2-bit fields at shifts s0 and s1 hold 64 consecutive elements, as 64
// codes: the bytes are repeated in both halves and each half shifted by its own amount. This lets
// the activations be read with plain contiguous 64-byte loads.
inline __m512i codes64(__m256i bytes, __m512i shifts) {
  const __m512i x = _mm512_broadcast_i64x4(bytes);
  return _mm512_and_si512(_mm512_srlv_epi16(x, shifts), _mm512_set1_epi8(3));
}

// Shift counts for codes64: the low half by lo, the high half by hi (per 16-bit lane).
inline __m512i half_shifts(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)), _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
}

// acc[r * 4 + t] += codes of row r (64 elements) . activations of token t (64 bytes at q[t]).
inline void tile_step(__m512i* acc, const __m512i* codes, const int8_t* const* q, int64_t off) {
  for (int t = 0; t < 4; ++t) {
    const __m512i a = _mm512_loadu_si512(q[t] + off);
    for (int r = 0; r < 4; ++r) acc[r * 4 + t] = _mm512_dpbusd_epi32(acc[r * 4 + t], codes[r], a);
  }
}

// The f16 block scales at byte `off` of four rows, as f32: gathered in a general register so the
// vector ports (the bottleneck here) only see one move and one conversion.
inline __m128 scales4(const uint8_t* const* w, int64_t off) {
  const uint64_t packed = uint64_t{u16(w[0] + off)} | uint64_t{u16(w[1] + off)} << 16 | uint64_t{u16(w[2] + off)} << 32 |
                          uint64_t{u16(w[3] + off)} << 48;
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(packed)));
}

// Lanes 0-3 = the sums of the 16 lanes of v[0..3].
inline __m128i reduce4(const __m512i* v) {
  const __m512i a0 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
  const __m512i a1 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
  const __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi64(a0, a1), _mm512_unpackhi_epi64(a0, a1));
  const __m256i c = _mm256_add_epi32(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
}

// Four TQ2_0 rows x one token (decode): the activation loads and q sums are shared by the rows.
void tq2_0_rows4(const uint8_t* const* w, const BlockQ8K* a, int64_t nb, float* out /* [4] */) {
  const __m512i s01 = half_shifts(0, 2), s23 = half_shifts(4, 6);
  __m128 sum = _mm_setzero_ps();
  // The same block 8 rows on in each row's stream, into L2, both cache lines its 66 bytes touch
  // (prefetching only the first left one line in eleven to a demand miss). Without these the
  // decode streams about a fifth slower.
  const int64_t ahead = 8 * nb * 66;
  for (int64_t i = 0; i < nb; ++i, ++a) {
    for (int r = 0; r < 4; ++r) {
      const char* p = reinterpret_cast<const char*>(w[r] + i * 66 + ahead);
      _mm_prefetch(p, _MM_HINT_T1);
      _mm_prefetch(p + 65, _MM_HINT_T1);
    }
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int part = 0; part < 4; ++part) {
      const __m512i q = _mm512_loadu_si512(a->qs + part * 64);
      for (int r = 0; r < 4; ++r)
        acc[r] = _mm512_dpbusd_epi32(acc[r], codes64(load256(w[r] + i * 66 + (part / 2) * 32), part % 2 == 0 ? s01 : s23), q);
    }
    const __m256i bs = _mm256_madd_epi16(load256(a->bsums), _mm256_set1_epi16(1));
    const __m128i q4 = _mm_add_epi32(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i q2 = _mm_hadd_epi32(q4, q4);
    const __m128i qsum = _mm_hadd_epi32(q2, q2);  // the block's sum of q in every lane
    const __m128 dw = scales4(w, i * 66 + 64);
    const __m128i isum = _mm_sub_epi32(reduce4(acc), qsum);
    sum = _mm_add_ps(sum, _mm_mul_ps(_mm_cvtepi32_ps(isum), _mm_mul_ps(dw, _mm_set1_ps(a->d))));
  }
  _mm_storeu_ps(out, sum);
}

// Four I2_S rows (w[0..3], row_bytes each) x one token (decode): integer sums over the whole row,
// one reduction at the end.
void i2s_rows4(const uint8_t* const* w, int64_t row_bytes, const int8_t* q, int64_t n, int32_t* out /* [4] */) {
  const __m512i s01 = half_shifts(6, 4), s23 = half_shifts(2, 0);
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  const int64_t ahead = 8 * row_bytes;  // 8 rows on in each row's stream, into L2, as for TQ2_0
  for (int64_t g = 0; g < n / kernels::kQK_I2S; ++g) {
    const __m512i q0 = _mm512_loadu_si512(q + g * 128), q1 = _mm512_loadu_si512(q + g * 128 + 64);
    for (int r = 0; r < 4; ++r) {
      const uint8_t* p = w[r] + g * 32;
      if ((g & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(p + ahead), _MM_HINT_T1);
      const __m256i x = load256(p);
      acc[r] = _mm512_dpbusd_epi32(acc[r], codes64(x, s01), q0);
      acc[r] = _mm512_dpbusd_epi32(acc[r], codes64(x, s23), q1);
    }
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), reduce4(acc));
}

}  // namespace

// --- prefill: weights unpacked once per call, register-blocked over tokens ---
//
// The 4x4 tiles above unpack the 2-bit codes again for every group of four tokens, and they
// spend a horizontal reduction per (row, token) and block. Here each 256-element chunk of 16
// rows is unpacked once into the VNNI layout (one zmm per k-step: elements 4k..4k+3 of the 16
// rows, one row per int32 lane, as the AMX tiles hold them) and serves every token of the call.
// The microkernel broadcasts each token's four activation bytes of a k-step straight from its
// row and feeds them to one or two weight vectors (16 or 32 rows), keeping up to 14 x 2 int32
// accumulators in registers. Every lane is one (row, token) sum, so the per-block epilogue
// needs no reduction.
namespace {

constexpr int kSteps = 64;  // vpdpbusd k-steps of a 256-element chunk
// Tokens per pass over a chunk: each unpacked chunk of weights serves this many. Their 32 KB of
// activations and 32 KB of a 64-row tile's sums overflow a 48 KB L1 into L2, but unpacking half
// as often per token measured faster than 64 tokens that fit (docs/benchmarks.md).
constexpr int64_t kPassTokens = 128;
// Tokens per microkernel call: 14 x 2 accumulators + 2 weight vectors + the broadcast fill the
// 32 zmm registers.
constexpr int kMaxNT = 14;
// From how many tokens on the gemm entries take the prefill path. TQ2_0: from 4 (one thread,
// 64 rows of 2560: 4 tokens 298 against 224 GOPS for the 4x4 tiles, 3 tokens 243 against 260).
// I2_S's 4x4 tiles keep whole-row sums in registers and stay ahead longer (16 tokens: 627
// against 610, 24: 618 against 686).
constexpr int64_t kPrefillTq2 = 4, kPrefillI2s = 20;

// Rows 0..15 of r (16 dwords each) become its columns: r[c] = dword c of every input row.
inline void transpose16(__m512i* r) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4q + j]: per 128-bit lane L, dword 4L + j of rows 4q..4q+3.
  for (int q = 0; q < 4; ++q) {
    u[4 * q + 0] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    u[4 * q + 3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  // Column 4L + j gathers lane L of u[j], u[4 + j], u[8 + j], u[12 + j].
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i w0 = _mm512_shuffle_i32x4(u[j], u[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i v1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
    r[j] = _mm512_shuffle_i32x4(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));       // lane 0
    r[8 + j] = _mm512_shuffle_i32x4(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));   // lane 2
    r[4 + j] = _mm512_shuffle_i32x4(w0, w1, _MM_SHUFFLE(2, 0, 2, 0));   // lane 1
    r[12 + j] = _mm512_shuffle_i32x4(w0, w1, _MM_SHUFFLE(3, 1, 3, 1));  // lane 3
  }
}

// One chunk of 16 rows (row j's 64 packed bytes, or 32 for a half I2_S chunk, at
// base + j * row_bytes; rows outside `live` are neither read nor used) into wk[2 * k + rg]. Both
// formats keep element 128h + 32l + b in field l of byte 32h + b, at bit 2l (TQ2_0) or 6 - 2l
// (I2_S), so dword d of a row holds elements 4d' .. 4d' + 3 (d' = d % 8) past 128(d / 8) + 32l:
// transposing the 16 rows' dwords puts them in the lanes of one vector per d. (Sixteen dword
// gathers did the same at four times the cost: a quarter of the kernel's time at 128 tokens.)
// `ahead` (0: none) is the next chunk's distance in bytes: its lines are prefetched, since the
// rows come from DRAM on a tile's first pass and their loads stalled the transpose (8% of the
// kernel's time in pp512).
template <bool kI2S>
inline void unpack_rows(const uint8_t* base, int64_t row_bytes, __mmask16 live, int steps, __m512i* wk, int rg,
                        int64_t ahead) {
  const __m512i mask = _mm512_set1_epi8(3);
  const auto words = static_cast<__mmask16>(steps == kSteps ? 0xFFFF : 0x00FF);
  __m512i v[16];
  for (int j = 0; j < 16; ++j) {
    if (ahead != 0 && ((live >> j) & 1) != 0) {
      const char* next = reinterpret_cast<const char*>(base + j * row_bytes + ahead);
      _mm_prefetch(next, _MM_HINT_T0);
      _mm_prefetch(next + 63, _MM_HINT_T0);  // a 66-byte block or an unaligned chunk spans two lines
    }
    v[j] = (live >> j) & 1 ? _mm512_maskz_loadu_epi32(words, base + j * row_bytes) : _mm512_setzero_si512();
  }
  transpose16(v);
  for (int d = 0; d < steps / 4; ++d) {
    for (int l = 0; l < 4; ++l) {
      // A 32-bit shift of at most 6 keeps each field's two bits inside their own byte.
      const __m512i c = _mm512_and_si512(_mm512_srli_epi32(v[d], kI2S ? 6 - 2 * l : 2 * l), mask);
      _mm512_store_si512(wk + 2 * (32 * (d / 8) + 8 * l + d % 8) + rg, c);
    }
  }
}

// The microkernel is written in assembly: GCC 12, given 28 accumulators as intrinsics, copies
// every vpdpbusd result back to its variable (two register moves per product) or spills them
// to the stack (measured: under half the speed). Accumulator of token t and row group rg:
// zmm(2t + rg); zmm28/29 the k-step's weights; zmm30 the broadcast activations. Token t's
// activations are at a0 + t * s (t < 7) or a7 + (t - 7) * s, addressed with s, 3s and 5s so
// that no token needs a register of its own. Each token's sums go to out[2t + rg] at the end.
#define BITNET_TOKENS_1(X) X(0, 0, 1, "(%[a0])")
#define BITNET_TOKENS_2(X) BITNET_TOKENS_1(X) X(1, 2, 3, "(%[a0],%[s],1)")
#define BITNET_TOKENS_3(X) BITNET_TOKENS_2(X) X(2, 4, 5, "(%[a0],%[s],2)")
#define BITNET_TOKENS_4(X) BITNET_TOKENS_3(X) X(3, 6, 7, "(%[a0],%[s3],1)")
#define BITNET_TOKENS_5(X) BITNET_TOKENS_4(X) X(4, 8, 9, "(%[a0],%[s],4)")
#define BITNET_TOKENS_6(X) BITNET_TOKENS_5(X) X(5, 10, 11, "(%[a0],%[s5],1)")
#define BITNET_TOKENS_7(X) BITNET_TOKENS_6(X) X(6, 12, 13, "(%[a0],%[s3],2)")
#define BITNET_TOKENS_8(X) BITNET_TOKENS_7(X) X(7, 14, 15, "(%[a7])")
#define BITNET_TOKENS_9(X) BITNET_TOKENS_8(X) X(8, 16, 17, "(%[a7],%[s],1)")
#define BITNET_TOKENS_10(X) BITNET_TOKENS_9(X) X(9, 18, 19, "(%[a7],%[s],2)")
#define BITNET_TOKENS_11(X) BITNET_TOKENS_10(X) X(10, 20, 21, "(%[a7],%[s3],1)")
#define BITNET_TOKENS_12(X) BITNET_TOKENS_11(X) X(11, 22, 23, "(%[a7],%[s],4)")
#define BITNET_TOKENS_13(X) BITNET_TOKENS_12(X) X(12, 24, 25, "(%[a7],%[s5],1)")
#define BITNET_TOKENS_14(X) BITNET_TOKENS_13(X) X(13, 26, 27, "(%[a7],%[s3],2)")

#define BITNET_ZERO2(t, r0, r1, at) "vpxord %%zmm" #r0 ", %%zmm" #r0 ", %%zmm" #r0 "\n\tvpxord %%zmm" #r1 ", %%zmm" #r1 ", %%zmm" #r1 "\n\t"
#define BITNET_STEP2(t, r0, r1, at)                                                                         \
  "vpbroadcastd " at ", %%zmm30\n\tvpdpbusd %%zmm30, %%zmm28, %%zmm" #r0 "\n\tvpdpbusd %%zmm30, %%zmm29, %%zmm" #r1 "\n\t"
#define BITNET_STORE2(t, r0, r1, at) "vmovdqa64 %%zmm" #r0 ", " #t "*128(%[o])\n\tvmovdqa64 %%zmm" #r1 ", " #t "*128+64(%[o])\n\t"
#define BITNET_ZERO1(t, r0, r1, at) "vpxord %%zmm" #r0 ", %%zmm" #r0 ", %%zmm" #r0 "\n\t"
#define BITNET_STEP1(t, r0, r1, at) "vpdpbusd " at "%{1to16%}, %%zmm28, %%zmm" #r0 "\n\t"
#define BITNET_STORE1(t, r0, r1, at) "vmovdqa64 %%zmm" #r0 ", " #t "*128(%[o])\n\t"

#define BITNET_CLOBBERS                                                                                              \
  "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
      "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",   \
      "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30"

// NT tokens x NR row groups over `steps` (> 0) k-steps: weights wk[2k + rg]; token t's four
// bytes of step k at a + t * stride + 4k; out[2t + rg] = the int32 sums.
template <int NT, int NR>
void micro(const __m512i* wk, const int8_t* a, int64_t stride, int steps, __m512i* out);

#define BITNET_MICRO_NR(nt, nr, loads)                                                                         \
  template <>                                                                                                  \
  void micro<nt, nr>(const __m512i* wk, const int8_t* a, int64_t stride, int steps, __m512i* out) {            \
    int64_t k = steps;                                                                                         \
    const int8_t* a7 = a + 7 * stride;                                                                         \
    asm volatile(BITNET_TOKENS_##nt(BITNET_ZERO##nr) "1:\n\t" loads BITNET_TOKENS_##nt(BITNET_STEP##nr)         \
                 "add $128, %[w]\n\tadd $4, %[a0]\n\tadd $4, %[a7]\n\tdec %[k]\n\tjnz 1b\n\t"                    \
                 BITNET_TOKENS_##nt(BITNET_STORE##nr)                                                           \
                 : [w] "+r"(wk), [a0] "+r"(a), [a7] "+r"(a7), [k] "+r"(k)                                       \
                 : [s] "r"(stride), [s3] "r"(3 * stride), [s5] "r"(5 * stride), [o] "r"(out)                    \
                 : BITNET_CLOBBERS);                                                                            \
  }
#define BITNET_MICRO(nt)                                                                            \
  BITNET_MICRO_NR(nt, 2, "vmovdqa64 (%[w]), %%zmm28\n\tvmovdqa64 64(%[w]), %%zmm29\n\t") \
  BITNET_MICRO_NR(nt, 1, "vmovdqa64 (%[w]), %%zmm28\n\t")

BITNET_MICRO(1)
BITNET_MICRO(2)
BITNET_MICRO(3)
BITNET_MICRO(4)
BITNET_MICRO(5)
BITNET_MICRO(6)
BITNET_MICRO(7)
BITNET_MICRO(8)
BITNET_MICRO(9)
BITNET_MICRO(10)
BITNET_MICRO(11)
BITNET_MICRO(12)
BITNET_MICRO(13)
BITNET_MICRO(14)

template <int NR, int... Ns>
void micro_n(int nt, const __m512i* wk, const int8_t* a, int64_t stride, int steps, __m512i* out,
             std::integer_sequence<int, Ns...>) {
  (void)((nt == Ns + 1 ? (micro<Ns + 1, NR>(wk, a, stride, steps, out), true) : false) || ...);
}

// Runs nt tokens (token t's chunk at a + t * stride) through the microkernel in near-equal
// groups of at most kMaxNT (64 tokens: five groups of 12-13 rather than four of 14 and one of
// 8), and hands each (token, row group) sum to epi(t, rg, sums).
template <typename Epi>
void all_tokens(int nr, const __m512i* wk, const int8_t* a, int64_t stride, int64_t nt, int steps, Epi&& epi) {
  alignas(64) __m512i out[2 * kMaxNT];
  const int64_t groups = (nt + kMaxNT - 1) / kMaxNT;
  int64_t t0 = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const int n = static_cast<int>(nt / groups + (g < nt % groups ? 1 : 0));
    const int8_t* at = a + t0 * stride;
    if (nr == 2) micro_n<2>(n, wk, at, stride, steps, out, std::make_integer_sequence<int, kMaxNT>{});
    else micro_n<1>(n, wk, at, stride, steps, out, std::make_integer_sequence<int, kMaxNT>{});
    for (int t = 0; t < n; ++t)
      for (int rg = 0; rg < nr; ++rg) epi(t0 + t, rg, _mm512_load_si512(out + 2 * t + rg));
    t0 += n;
  }
}

inline __mmask16 live_rows(int64_t rows) { return rows >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << rows) - 1u); }

// Rows per tile of the prefill functions: their sums for kPassTokens tokens live in a
// contiguous 16 KB buffer between blocks, and the last block's go straight to y. (Kept in y
// itself, rows 2560 or 6912 floats apart, the 64 tokens' lines crowd a few of the L1's 64 sets:
// the buffer measured 1-4% faster. Copied to y after the last block, the burst of stores to
// lines not yet in cache stalled: a fifth of the kernel's own time outside the microkernel in
// pp512; spread over the last block's microkernel calls they overlap with them.)
constexpr int64_t kTileRows = 64;

// TQ2_0 x Q8_K, any rows and tokens. Per block: int32 sums of code x q, minus the block's sum
// of q (codes are w + 1), then the dot entry's sum += float(isum) * (d_w * d_a), the first
// block added to +0 as the dot does.
void tq2_0_prefill(const uint8_t* wb, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t nb, float* y,
                   int64_t y_stride) {
  alignas(64) __m512i wk[2 * kSteps];
  alignas(64) float sum[kPassTokens * kTileRows];
  float da[kPassTokens];
  int32_t qsum[kPassTokens];
  const int64_t row_bytes = nb * 66;
  const auto stride = static_cast<int64_t>(nb * sizeof(BlockQ8K));  // one token's blocks
  const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
  for (int64_t rt = 0; rt < n_rows; rt += kTileRows) {
    const int64_t rows = std::min(kTileRows, n_rows - rt);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kPassTokens) {
      const int64_t nt = std::min(kPassTokens, n_tokens - t0);
      for (int64_t i = 0; i < nb; ++i) {
        const BlockQ8K* ai = a + t0 * nb + i;
        for (int64_t t = 0; t < nt; ++t) {
          da[t] = ai[t * nb].d;
          // The block's sum of q from its 16 bsums.
          qsum[t] = _mm512_reduce_add_epi32(_mm512_cvtepi16_epi32(load256(ai[t * nb].bsums)));
        }
        for (int64_t r0 = 0; r0 < rows; r0 += 32) {
          const int nr = rows - r0 > 16 ? 2 : 1;
          __m512 dw[2];
          for (int rg = 0; rg < nr; ++rg) {
            const __mmask16 live = live_rows(rows - r0 - 16 * rg);
            const uint8_t* blk = wb + (rt + r0 + 16 * rg) * row_bytes + i * 66;
            unpack_rows<false>(blk, row_bytes, live, kSteps, wk, rg, i + 1 < nb ? 66 : 0);
            // Row j's f16 scale is the high half of the dword at byte 62 (bytes 64-65).
            const __m512i sc = _mm512_srli_epi32(
                _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, _mm512_add_epi32(offsets, _mm512_set1_epi32(62)), blk, 1),
                16);
            dw[rg] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sc));
          }
          float* yb = y + t0 * y_stride + rt + r0;
          all_tokens(nr, wk, ai->qs, stride, nt, kSteps, [&](int64_t t, int rg, __m512i sums) {
            const __m512i isum = _mm512_sub_epi32(sums, _mm512_set1_epi32(qsum[t]));
            const __m512 term = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw[rg], _mm512_set1_ps(da[t])));
            float* sv = sum + t * kTileRows + r0 + 16 * rg;
            const __m512 total = _mm512_add_ps(i == 0 ? _mm512_setzero_ps() : _mm512_load_ps(sv), term);
            if (i + 1 < nb) _mm512_store_ps(sv, total);
            else _mm512_mask_storeu_ps(yb + t * y_stride + 16 * rg, live_rows(rows - r0 - 16 * rg), total);
          });
        }
      }
    }
  }
}

// I2_S x int8, any rows and tokens, n a multiple of 128 (a last half chunk when n % 256 = 128):
// whole-row int32 sums, added up chunk by chunk.
void i2s_prefill(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride) {
  alignas(64) __m512i wk[2 * kSteps];
  alignas(64) int32_t sum[kPassTokens * kTileRows];
  const int64_t row_bytes = n / 4;
  for (int64_t rt = 0; rt < n_rows; rt += kTileRows) {
    const int64_t rows = std::min(kTileRows, n_rows - rt);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kPassTokens) {
      const int64_t nt = std::min(kPassTokens, n_tokens - t0);
      for (int64_t k0 = 0; k0 < n; k0 += 256) {
        const int steps = n - k0 >= 256 ? kSteps : kSteps / 2;
        for (int64_t r0 = 0; r0 < rows; r0 += 32) {
          const int nr = rows - r0 > 16 ? 2 : 1;
          for (int rg = 0; rg < nr; ++rg)
            unpack_rows<true>(w + (rt + r0 + 16 * rg) * row_bytes + k0 / 4, row_bytes, live_rows(rows - r0 - 16 * rg), steps,
                              wk, rg, k0 + 256 < n ? 64 : 0);
          int32_t* yb = y + t0 * y_stride + rt + r0;
          all_tokens(nr, wk, q + t0 * n + k0, n, nt, steps, [&](int64_t t, int rg, __m512i sums) {
            int32_t* sv = sum + t * kTileRows + r0 + 16 * rg;
            const __m512i total = _mm512_add_epi32(k0 == 0 ? _mm512_setzero_si512() : _mm512_load_si512(sv), sums);
            if (k0 + 256 < n) _mm512_store_si512(sv, total);
            else _mm512_mask_storeu_epi32(yb + t * y_stride + 16 * rg, live_rows(rows - r0 - 16 * rg), total);
          });
        }
      }
    }
  }
}

}  // namespace

void gemm_tq2_0_q8_k(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                     int64_t y_stride) {
  const int64_t nb = n / kernels::kQK_K;
  const auto* wb = static_cast<const uint8_t*>(w);
  if (n_tokens >= kPrefillTq2) return tq2_0_prefill(wb, n_rows, a, n_tokens, nb, y, y_stride);
  // Decode (fewer than 4 tokens): the one-token tile over the four quarters of the range, then
  // the last n_rows % 4 rows with the dot entry.
  const auto row = [&](int64_t r) { return wb + r * nb * 66; };
  int64_t r0 = for_row_quads(n_rows, n_tokens, [&](const std::array<int64_t, 4>& rows) {
    const uint8_t* wr[4] = {row(rows[0]), row(rows[1]), row(rows[2]), row(rows[3])};
    for (int64_t t = 0; t < n_tokens; ++t) {
      alignas(16) float out[4];
      tq2_0_rows4(wr, a + t * nb, nb, out);
      for (int r = 0; r < 4; ++r) y[t * y_stride + rows[r]] = out[r];
    }
  });
  for (; r0 < n_rows; ++r0)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r0] = dot_tq2_0_q8_k(row(r0), a + t * nb, n);
}

void gemm_f16(const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a, int64_t a_stride, int64_t n_tokens,
              int64_t n, float* y, int64_t y_stride) {
  if (n > kF16MaxN) return f16_pairs(dot_f16_f16, w, w_stride, n_rows, a, a_stride, n_tokens, n, y, y_stride);
  alignas(64) static thread_local float af[4 * kF16MaxN];
  for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
    const int nt = static_cast<int>(std::min<int64_t>(4, n_tokens - t0));
    const int64_t padded = (n + 15) / 16 * 16;
    for (int t = 0; t < nt; ++t) {
      float* dst = af + t * kF16MaxN;
      const uint16_t* src = a + (t0 + t) * a_stride;
      for (int64_t i = 0; i < padded; i += 16) {
        const int64_t left = std::max<int64_t>(n - i, 0);  // the padding past n is zeros
        const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
        _mm512_store_ps(dst + i, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
      }
    }
    float* yt = y + t0 * y_stride;
    if ((n == 128 || n == 64) && nt > 1) {
      // 64 rows (16 KB at 128) at a time for every pair of tokens, so that the second pair finds
      // them in L1: a prefill's K rows at a 4k context come from L3.
      for (int64_t r0 = 0; r0 < n_rows; r0 += 64) {
        const int64_t nr = std::min<int64_t>(64, n_rows - r0);
        const uint16_t* wr = w + r0 * w_stride;
        for (int t = 0; t < nt; t += 2) {
          const float* at = af + t * kF16MaxN;
          float* yy = yt + t * y_stride + r0;
          if (nt - t == 1) (n == 128 ? f16_rows_head<1, 128> : f16_rows_head<1, 64>)(wr, w_stride, nr, at, yy, y_stride);
          else (n == 128 ? f16_rows_head<2, 128> : f16_rows_head<2, 64>)(wr, w_stride, nr, at, yy, y_stride);
        }
      }
      continue;
    }
    const bool tiled = n > 2 * kF16TileCols;
    switch (nt) {
      case 1: f16_quarters(w, w_stride, n_rows, af, n, yt); break;
      case 2: (tiled ? f16_rows_tiled<2> : f16_rows<2>)(w, w_stride, n_rows, af, n, yt, y_stride); break;
      case 3: (tiled ? f16_rows_tiled<3> : f16_rows<3>)(w, w_stride, n_rows, af, n, yt, y_stride); break;
      default: (tiled ? f16_rows_tiled<4> : f16_rows<4>)(w, w_stride, n_rows, af, n, yt, y_stride); break;
    }
  }
}

// I2_S: all-integer, so the 16 accumulators run over the whole row and are reduced once.
void gemm_i2s_i8(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride) {
  const int64_t row_bytes = n / 4;
  if (n_tokens >= kPrefillI2s) return i2s_prefill(w, n_rows, q, n_tokens, n, y, y_stride);
  const __m512i s01 = half_shifts(6, 4), s23 = half_shifts(2, 0);
  int64_t r0 = 0;
  if (n_tokens < 4) {  // decode: the four quarters of the range, as gemm_tq2_0_q8_k
    r0 = for_row_quads(n_rows, n_tokens, [&](const std::array<int64_t, 4>& rows) {
      const uint8_t* wr[4];
      for (int r = 0; r < 4; ++r) wr[r] = w + rows[r] * row_bytes;
      for (int64_t t = 0; t < n_tokens; ++t) {
        alignas(16) int32_t out[4];
        i2s_rows4(wr, row_bytes, q + t * n, n, out);
        for (int r = 0; r < 4; ++r) y[t * y_stride + rows[r]] = out[r];
      }
    });
  }
  for (; r0 + 4 <= n_rows; r0 += 4) {
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tokens; t0 += 4) {
      __m512i acc[16];
      for (auto& v : acc) v = _mm512_setzero_si512();
      const int8_t* qt[4] = {q + t0 * n, q + (t0 + 1) * n, q + (t0 + 2) * n, q + (t0 + 3) * n};
      // A 128-element group is 32 bytes; fields at shifts 6,4,2,0 hold elements 0-31 .. 96-127.
      for (int64_t g = 0; g < n / kernels::kQK_I2S; ++g) {
        for (int part = 0; part < 2; ++part) {
          __m512i codes[4];
          for (int r = 0; r < 4; ++r) codes[r] = codes64(load256(w + (r0 + r) * row_bytes + g * 32), part == 0 ? s01 : s23);
          tile_step(acc, codes, qt, g * 128 + part * 64);
        }
      }
      alignas(64) int32_t out[16];
      _mm512_store_si512(out, reduce16(acc));
      for (int r = 0; r < 4; ++r)
        for (int t = 0; t < 4; ++t) y[(t0 + t) * y_stride + r0 + r] = out[r * 4 + t];
    }
    for (; t0 < n_tokens; ++t0) {
      alignas(16) int32_t out[4];
      const uint8_t* wr[4] = {w + r0 * row_bytes, w + (r0 + 1) * row_bytes, w + (r0 + 2) * row_bytes, w + (r0 + 3) * row_bytes};
      i2s_rows4(wr, row_bytes, q + t0 * n, n, out);
      for (int r = 0; r < 4; ++r) y[t0 * y_stride + r0 + r] = out[r];
    }
  }
  for (; r0 < n_rows; ++r0)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r0] = dot_i2s_i8(w + r0 * row_bytes, 0, q + t * n, n);
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
    t.dot_bf16_bf16 = avx512::dot_bf16_bf16;
    t.dot_f32_f32 = avx512::dot_f32_f32;
    t.to_bf16 = avx512::to_bf16;
    t.exp_f32 = avx512::exp_f32;
    t.softmax_f32 = avx512::softmax_f32;
    t.quantize_q8_k = avx512::quantize_q8_k;
    t.gemm_tq2_0_q8_k = avx512::gemm_tq2_0_q8_k;
    t.gemm_i2s_i8 = avx512::gemm_i2s_i8;
    t.gemm_f16 = avx512::gemm_f16;
    t.dot_q6_k_q8_k = avx512::dot_q6_k_q8_k;
    t.gemm_q6_k_q8_k = avx512::gemm_q6_k_q8_k;
    t.quantize_q8_0 = avx512::quantize_q8_0;
    t.dot_q8_0_q8_0 = avx512::dot_q8_0_q8_0;
    t.dot_q4_0_q8_0 = avx512::dot_q4_0_q8_0;
    t.gemm_q8_0_q8_0 = avx512::gemm_q8_0_q8_0;
    t.weighted_sum_q8_0 = avx512::weighted_sum_q8_0;
    t.gemm_q4_0_q8_0 = avx512::gemm_q4_0_q8_0;
    return t;
  }();
  return table;
}

}  // namespace bitnet::backends
