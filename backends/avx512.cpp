// AVX-512 kernels with VNNI: vpdpbusd multiplies unsigned codes by signed int8 activations and
// accumulates straight into int32 (no int16 stage). Two 128-element I2_S groups per 512-bit
// load. Operations not specialised here come from the AVX2 table.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "backends/avx2.hpp"
#include "backends/q6k.hpp"
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

float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n) {
  // The reference's 64 float lanes as four 16-float accumulators; a masked load zero-pads the
  // tail (a +0 product leaves a lane, which is never -0, unchanged). Products of two f16 values
  // are exact in f32, so the fused multiply-add rounds as the reference's add.
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t left = n - i;
    const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
    const int j = static_cast<int>((i / 16) % 4);
    acc[j] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)),
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i)), acc[j]);
  }
  return f16_lane_sum(acc);
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
constexpr int64_t kF16MaxN = 4096;

template <int NT>
void f16_rows(const uint16_t* w, int64_t w_stride, int64_t n_rows, const float* af /* [NT][kF16MaxN] */, int64_t n,
              float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint16_t* row = w + r * w_stride;
    __m512 acc[NT][4];
    for (auto& t : acc) t[0] = t[1] = t[2] = t[3] = _mm512_setzero_ps();
    auto chunk = [&](const __m512 wf, int64_t i, int j) {
      for (int t = 0; t < NT; ++t) acc[t][j] = _mm512_fmadd_ps(wf, _mm512_load_ps(af + t * kF16MaxN + i), acc[t][j]);
    };
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      // 32 KB ahead (six 2560-wide rows) into L2: on the 2B model's output matrix, 2 threads read
      // 17.7 GB/s with the hardware prefetcher alone, 22.7 with this (measured with bench --kernels).
      _mm_prefetch(reinterpret_cast<const char*>(row + i) + 32768, _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(row + i) + 32768 + 64, _MM_HINT_T1);
      for (int j = 0; j < 4; ++j) chunk(_mm512_cvtph_ps(load256(row + i + 16 * j)), i + 16 * j, j);
    }
    for (int j = 0; i < n; i += 16, ++j) {
      const int64_t left = n - i;
      const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
      chunk(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + i)), i, j);
    }
    for (int t = 0; t < NT; ++t) y[t * y_stride + r] = f16_lane_sum(acc[t]);
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

// --- many-token products: tiles of 4 rows x 4 tokens, 16 int32 accumulators in registers ---
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

// One 4x4 tile of TQ2_0 rows x Q8_K tokens, with the dot entry's per-block float order.
void tq2_0_tile(const uint8_t* const* w, const BlockQ8K* const* a, int64_t nb, float* out /* [16], r*4+t */) {
  const __m512i s01 = half_shifts(0, 2), s23 = half_shifts(4, 6);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    __m512i acc[16];
    for (auto& v : acc) v = _mm512_setzero_si512();
    const int8_t* q[4];
    for (int t = 0; t < 4; ++t) q[t] = a[t][i].qs;
    // Elements 0-127 live in bytes 0-31 (fields 0,2,4,6 = elements 0-31,32-63,64-95,96-127),
    // elements 128-255 in bytes 32-63.
    for (int part = 0; part < 4; ++part) {
      __m512i codes[4];
      for (int r = 0; r < 4; ++r)
        codes[r] = codes64(load256(w[r] + i * 66 + (part / 2) * 32), part % 2 == 0 ? s01 : s23);
      tile_step(acc, codes, q, part * 64);
    }
    // Lane k = r * 4 + t: the block sums of q of token t, and the scale f16(d_w[r]) * d_a[t] (as
    // the dot entry rounds it).
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i bs[4];
    for (int t = 0; t < 4; ++t) bs[t] = _mm256_madd_epi16(load256(a[t][i].bsums), ones);
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(bs[0], bs[1]), _mm256_hadd_epi32(bs[2], bs[3]));
    const __m128i qsum4 = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    const __m128 dw4 = scales4(w, i * 66 + 64);
    const __m512 dw = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                            _mm512_castps128_ps512(dw4));
    const __m512 da = _mm512_broadcast_f32x4(_mm_setr_ps(a[0][i].d, a[1][i].d, a[2][i].d, a[3][i].d));
    const __m512i isum = _mm512_sub_epi32(reduce16(acc), _mm512_broadcast_i32x4(qsum4));
    sum = _mm512_add_ps(sum, _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, da)));
  }
  _mm512_storeu_ps(out, sum);
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

// 16 TQ2_0 rows x NT tokens, one row per int32 lane: gathering dword d of the 16 rows' block puts
// row j's codes of 4 consecutive elements (at each of the 4 shifts) in lane j, which meets a
// broadcast of those 4 activations. The block sums then land one row per lane, with no horizontal
// reduction, and each gathered vector serves NT tokens. Same per-block float order as the dot.
template <int NT>
void tq2_0_rows16(const uint8_t* w, int64_t row_bytes, const BlockQ8K* const* a, int64_t nb, float* y, int64_t y_stride) {
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
  const __m512i mask = _mm512_set1_epi8(3);
  __m512 sum[NT];
  for (auto& v : sum) v = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* blk = w + i * 66;
    __m512i acc[NT];
    for (auto& v : acc) v = _mm512_setzero_si512();
    for (int d = 0; d < 16; ++d) {
      const __m512i v = _mm512_i32gather_epi32(_mm512_add_epi32(rows, _mm512_set1_epi32(4 * d)), blk, 1);
      for (int m = 0; m < 4; ++m) {
        const __m512i codes = _mm512_and_si512(_mm512_srli_epi32(v, 2 * m), mask);
        const int e = (d / 8) * 128 + 32 * m + 4 * (d % 8);
        for (int t = 0; t < NT; ++t) {
          int32_t q4;
          std::memcpy(&q4, a[t][i].qs + e, 4);
          acc[t] = _mm512_dpbusd_epi32(acc[t], codes, _mm512_set1_epi32(q4));
        }
      }
    }
    // Row j's scale is the high half of the dword at byte 62 (bytes 64-65; reading at 64 could
    // run past the last row's end).
    const __m512i sc = _mm512_srli_epi32(_mm512_i32gather_epi32(_mm512_add_epi32(rows, _mm512_set1_epi32(62)), blk, 1), 16);
    const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sc));
    for (int t = 0; t < NT; ++t) {
      const __m512i isum = _mm512_sub_epi32(acc[t], _mm512_set1_epi32(block_qsum(&a[t][i])));
      sum[t] = _mm512_add_ps(sum[t], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, _mm512_set1_ps(a[t][i].d))));
    }
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * y_stride, sum[t]);
}

// NT tokens (1..8) for 16 rows, NT a run-time value.
void tq2_0_rows16_n(int nt, const uint8_t* w, int64_t row_bytes, const BlockQ8K* const* a, int64_t nb, float* y,
                    int64_t y_stride) {
  switch (nt) {
    case 1: return tq2_0_rows16<1>(w, row_bytes, a, nb, y, y_stride);
    case 2: return tq2_0_rows16<2>(w, row_bytes, a, nb, y, y_stride);
    case 3: return tq2_0_rows16<3>(w, row_bytes, a, nb, y, y_stride);
    case 4: return tq2_0_rows16<4>(w, row_bytes, a, nb, y, y_stride);
    case 5: return tq2_0_rows16<5>(w, row_bytes, a, nb, y, y_stride);
    case 6: return tq2_0_rows16<6>(w, row_bytes, a, nb, y, y_stride);
    case 7: return tq2_0_rows16<7>(w, row_bytes, a, nb, y, y_stride);
    default: return tq2_0_rows16<8>(w, row_bytes, a, nb, y, y_stride);
  }
}

}  // namespace

void gemm_tq2_0_q8_k(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                     int64_t y_stride) {
  const int64_t nb = n / kernels::kQK_K;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto row = [&](int64_t r) { return wb + r * nb * 66; };
  int64_t r0 = 0;
  // Decode (fewer than 4 tokens): the one-token tile over the four quarters of the range.
  if (n_tokens < 4) {
    r0 = for_row_quads(n_rows, n_tokens, [&](const std::array<int64_t, 4>& rows) {
      const uint8_t* wr[4] = {row(rows[0]), row(rows[1]), row(rows[2]), row(rows[3])};
      for (int64_t t = 0; t < n_tokens; ++t) {
        alignas(16) float out[4];
        tq2_0_rows4(wr, a + t * nb, nb, out);
        for (int r = 0; r < 4; ++r) y[t * y_stride + rows[r]] = out[r];
      }
    });
  }
  // Prefill: 16 rows x up to 8 tokens per tile, then 4x4 tiles and the one-token tile for the
  // rows and tokens left (for decode only the last n_rows % 4 rows are left, to the dot entry).
  for (; r0 + 16 <= n_rows; r0 += 16) {
    for (int64_t t0 = 0; t0 < n_tokens; t0 += 8) {
      const int nt = static_cast<int>(std::min<int64_t>(8, n_tokens - t0));
      const BlockQ8K* at[8];
      for (int t = 0; t < nt; ++t) at[t] = a + (t0 + t) * nb;
      tq2_0_rows16_n(nt, row(r0), nb * 66, at, nb, y + t0 * y_stride + r0, y_stride);
    }
  }
  for (; r0 + 4 <= n_rows; r0 += 4) {
    const uint8_t* wr[4] = {row(r0), row(r0 + 1), row(r0 + 2), row(r0 + 3)};
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tokens; t0 += 4) {
      const BlockQ8K* at[4] = {a + t0 * nb, a + (t0 + 1) * nb, a + (t0 + 2) * nb, a + (t0 + 3) * nb};
      alignas(64) float out[16];
      tq2_0_tile(wr, at, nb, out);
      for (int r = 0; r < 4; ++r)
        for (int t = 0; t < 4; ++t) y[(t0 + t) * y_stride + r0 + r] = out[r * 4 + t];
    }
    for (; t0 < n_tokens; ++t0) {
      alignas(16) float out[4];
      tq2_0_rows4(wr, a + t0 * nb, nb, out);
      for (int r = 0; r < 4; ++r) y[t0 * y_stride + r0 + r] = out[r];
    }
  }
  for (; r0 < n_rows; ++r0)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r0] = dot_tq2_0_q8_k(row(r0), a + t * nb, n);
}

void gemm_f16(const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a, int64_t a_stride, int64_t n_tokens,
              int64_t n, float* y, int64_t y_stride) {
  if (n > kF16MaxN) {
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t r = 0; r < n_rows; ++r) y[t * y_stride + r] = dot_f16_f16(w + r * w_stride, a + t * a_stride, n);
    return;
  }
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
    switch (nt) {
      case 1: f16_quarters(w, w_stride, n_rows, af, n, yt); break;
      case 2: f16_rows<2>(w, w_stride, n_rows, af, n, yt, y_stride); break;
      case 3: f16_rows<3>(w, w_stride, n_rows, af, n, yt, y_stride); break;
      default: f16_rows<4>(w, w_stride, n_rows, af, n, yt, y_stride); break;
    }
  }
}

// I2_S: all-integer, so the 16 accumulators run over the whole row and are reduced once.
void gemm_i2s_i8(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride) {
  const int64_t row_bytes = n / 4;
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
    t.quantize_q8_k = avx512::quantize_q8_k;
    t.gemm_tq2_0_q8_k = avx512::gemm_tq2_0_q8_k;
    t.gemm_i2s_i8 = avx512::gemm_i2s_i8;
    t.gemm_f16 = avx512::gemm_f16;
    t.dot_q6_k_q8_k = avx512::dot_q6_k_q8_k;
    t.gemm_q6_k_q8_k = avx512::gemm_q6_k_q8_k;
    return t;
  }();
  return table;
}

}  // namespace bitnet::backends
