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

#include <algorithm>
#include <cfloat>
#include <cstdint>
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

// Weights as unsigned bytes (w + kOffset): two blocks in element order (codes), or 16 rows'
// block dword by dword (gather, for the many-row product).
struct Q8Weights {
  static constexpr int64_t kBytes = 34;
  static constexpr int32_t kOffset = 128;
  static __m512i offset() { return _mm512_set1_epi8(static_cast<char>(0x80)); }
  static __m512i codes(const uint8_t* b0, const uint8_t* b1) { return _mm512_xor_si512(pair(b0 + 2, b1 + 2), offset()); }
  // Dword k (elements 4k..4k+3) of 16 rows' block at `blk` (rows `off` bytes apart), as codes.
  static void gather(const uint8_t* blk, __m512i off, __mmask16 live, __m512i* k8) {
    for (int k = 0; k < 8; ++k)
      k8[k] = _mm512_xor_si512(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, off, blk + 2 + 4 * k, 1), offset());
  }
};

struct Q4Weights {
  static constexpr int64_t kBytes = 18;
  static constexpr int32_t kOffset = 8;
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
  // Dword j of the packed bytes holds elements 4j..4j+3 in its low nibbles and 16+4j.. in its high.
  static void gather(const uint8_t* blk, __m512i off, __mmask16 live, __m512i* k8) {
    for (int j = 0; j < 4; ++j) {
      const __m512i x = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, off, blk + 2 + 4 * j, 1);
      k8[j] = _mm512_and_si512(x, _mm512_set1_epi8(0x0f));
      k8[j + 4] = _mm512_and_si512(_mm512_srli_epi32(x, 4), _mm512_set1_epi8(0x0f));
    }
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

// --- many rows x many tokens ---
//
// Sixteen rows side by side, lane r of every vector being row r: per block, dword k (elements
// 4k..4k+3) of the 16 rows' codes is gathered once and kept for every token, whose dword k is
// broadcast from memory, so vpdpbusd leaves row r's block sum in lane r with no reduction (its
// accumulator starts at -kOffset * the block's sum of q). The float steps are then the dot's,
// lane by lane: sum += float(isum) * (d_w * d_a), from +0, block by block.
namespace {

constexpr int64_t kGemmRows = 64, kGemmTokens = 128;
// Fewer tokens go through the dot: the gathers cost more than one or two tokens' reuse saves
// (2560-wide rows, one thread: 80 ns per row and token at 2 tokens against the dot's 76, 56 at 3,
// 45 at 4, 27 at 8).
constexpr int64_t kGemmMinTokens = 3;

inline __mmask16 live_rows(int64_t rows) { return rows >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << rows) - 1u); }

inline int32_t qsum(const int8_t* q) {
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), load256(q));
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
  return _mm_cvtsi128_si32(x);
}

inline int32_t dword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Up to kGemmRows rows x kGemmTokens tokens; the running sums live in `sum` between blocks and
// the last block's go straight to y.
template <typename F>
void gemm_tile(const uint8_t* w, int64_t row_bytes, int64_t rows, const BlockQ8_0* a, int64_t nt, int64_t nb, float* y,
               int64_t y_stride) {
  alignas(64) float sum[kGemmTokens * kGemmRows];
  int32_t corr[kGemmTokens];
  float da[kGemmTokens];
  const __m512i off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t t = 0; t < nt; ++t) {
      const BlockQ8_0& q = a[t * nb + b];
      corr[t] = -F::kOffset * qsum(q.qs);
      da[t] = _cvtsh_ss(q.d);
    }
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
      const __mmask16 live = live_rows(rows - r0);
      const uint8_t* blk = w + r0 * row_bytes + b * F::kBytes;
      __m512i codes[8];
      F::gather(blk, off, live, codes);
      const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, off, blk, 1)));
      for (int64_t t = 0; t < nt; ++t) {
        const int8_t* q = a[t * nb + b].qs;
        __m512i acc = _mm512_set1_epi32(corr[t]);
        for (int k = 0; k < 8; ++k) acc = _mm512_dpbusd_epi32(acc, codes[k], _mm512_set1_epi32(dword(q + 4 * k)));
        const __m512 term = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dw, _mm512_set1_ps(da[t])));
        float* s = sum + t * kGemmRows + r0;
        const __m512 total = _mm512_add_ps(b == 0 ? _mm512_setzero_ps() : _mm512_load_ps(s), term);
        if (b + 1 < nb) _mm512_store_ps(s, total);
        else _mm512_mask_storeu_ps(y + t * y_stride + r0, live, total);
      }
    }
  }
}

// Rows of at most kShortRowBlocks blocks (a Q8_0 KV cache's keys: 136 bytes for a head of 128)
// are read from DRAM in a decode, where the tile's gathers wait on every line: the tile two on
// is prefetched into L1 first (17 KB at most), as the hardware prefetcher cannot see the gathers'
// pattern. Long weight rows stream well enough without.
constexpr int64_t kShortRowBlocks = 8;

template <typename F>
void gemm_blocks(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                 int64_t y_stride) {
  const int64_t nb = n / kernels::kQK8_0;
  const int64_t row_bytes = nb * F::kBytes;
  const auto* wb = static_cast<const uint8_t*>(w);
  // The gathers' offsets are int32 (15 rows on at most).
  if (n_tokens < kGemmMinTokens || row_bytes > INT32_MAX / 16) {
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot_blocks<F>(wb + r * row_bytes, a + t * nb, n);
    return;
  }
  const bool ahead = nb <= kShortRowBlocks;
  for (int64_t r0 = 0; r0 < n_rows; r0 += kGemmRows) {
    if (ahead && r0 + 2 * kGemmRows < n_rows) {
      const uint8_t* next = wb + (r0 + 2 * kGemmRows) * row_bytes;
      const int64_t bytes = std::min(kGemmRows, n_rows - r0 - 2 * kGemmRows) * row_bytes;
      for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(next + o), _MM_HINT_T0);
    }
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kGemmTokens)
      gemm_tile<F>(wb + r0 * row_bytes, row_bytes, std::min(kGemmRows, n_rows - r0), a + t0 * nb,
                   std::min(kGemmTokens, n_tokens - t0), nb, y + t0 * y_stride + r0, y_stride);
  }
}

}  // namespace

void gemm_q8_0_q8_0(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride) {
  gemm_blocks<Q8Weights>(w, n_rows, a, n_tokens, n, y, y_stride);
}

void gemm_q4_0_q8_0(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride) {
  gemm_blocks<Q4Weights>(w, n_rows, a, n_tokens, n, y, y_stride);
}

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

namespace {

// Heads NH (<= 4) x 16 * NV channels (NV = 4: two blocks, 2: one) in registers; each V block is
// widened and scaled once per key for all the heads (d * q is exact, as in the reference).
template <int NH, int NV>
void weighted_tile(const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride, float* y,
                   int64_t y_stride) {
  __m512 acc[NH][NV];
  for (auto& h : acc)
    for (auto& a : h) a = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_keys; ++j) {
    const BlockQ8_0* row = v + j * v_stride;
    __m512 x[NV];
    for (int b = 0; b < NV / 2; ++b) {
      const __m512 d = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(row[b].d)));
      const __m256i q = load256(row[b].qs);
      x[2 * b] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))));
      x[2 * b + 1] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))));
    }
    for (int h = 0; h < NH; ++h) {
      const __m512 w = _mm512_set1_ps(p[h * p_stride + j]);
      for (int k = 0; k < NV; ++k) acc[h][k] = _mm512_fmadd_ps(w, x[k], acc[h][k]);
    }
  }
  for (int h = 0; h < NH; ++h)
    for (int k = 0; k < NV; ++k) _mm512_storeu_ps(y + h * y_stride + 16 * k, acc[h][k]);
}

template <int NV>
void weighted_heads(int64_t nh, const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                    float* y, int64_t y_stride) {
  switch (nh) {
    case 1: return weighted_tile<1, NV>(v, v_stride, n_keys, p, p_stride, y, y_stride);
    case 2: return weighted_tile<2, NV>(v, v_stride, n_keys, p, p_stride, y, y_stride);
    case 3: return weighted_tile<3, NV>(v, v_stride, n_keys, p, p_stride, y, y_stride);
    default: return weighted_tile<4, NV>(v, v_stride, n_keys, p, p_stride, y, y_stride);
  }
}

}  // namespace

void weighted_sum_q8_0(const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                       int64_t n_heads, int64_t n, float* y, int64_t y_stride) {
  for (int64_t h = 0; h < n_heads; h += 4) {
    const int64_t nh = std::min<int64_t>(4, n_heads - h);
    for (int64_t c = 0; c < n; c += 64) {
      const BlockQ8_0* col = v + c / 32;
      float* out = y + h * y_stride + c;
      if (n - c >= 64) weighted_heads<4>(nh, col, v_stride, n_keys, p + h * p_stride, p_stride, out, y_stride);
      else weighted_heads<2>(nh, col, v_stride, n_keys, p + h * p_stride, p_stride, out, y_stride);
    }
  }
}

}  // namespace bitnet::backends::avx512
