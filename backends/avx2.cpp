// AVX2 kernels (SPEC.md 5): ternary codes unpacked with shifts and masks, multiplied by int8
// activations with maddubs (unsigned code x signed activation), widened to int32 per block so
// no int16 sum can overflow. Integer results equal the reference exactly; ternary x Q8_K dots
// accumulate their per-block floats in the reference's order, so they match it bit for bit too.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "backends/avx2.hpp"
#include "backends/exp.hpp"
#include "backends/q6k.hpp"
#include "backends/q8_0.hpp"
#include "backends/screen.hpp"
#include "backends/row_quads.hpp"
#include "backends/tables.hpp"
#include "core/kernels/reference.hpp"

namespace bitnet::backends::avx2 {
namespace {

using kernels::BlockQ8K;
constexpr int64_t kQK = kernels::kQK_K;

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// Sum over 128 elements of code * q: 32 packed bytes whose 2-bit fields at shifts s0..s3 hold
// elements 0-31, 32-63, 64-95, 96-127 of the group.
template <int S0, int S1, int S2, int S3>
inline __m256i group_dot(__m256i x, const int8_t* q) {
  const __m256i mask = _mm256_set1_epi8(3);
  const __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, S0), mask), load(q));
  const __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, S1), mask), load(q + 32));
  const __m256i p2 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, S2), mask), load(q + 64));
  const __m256i p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(x, S3), mask), load(q + 96));
  // |code * q| <= 3 * 128 per product: each int16 lane holds at most 4 * 2 * 384 < 32768.
  const __m256i s = _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
  return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

inline int32_t block_qsum(const BlockQ8K* a) {
  int32_t s = 0;
  for (int16_t b : a->bsums) s += b;
  return s;
}

// Sum of a Q8_K block's q from its 16 bsums.
inline int32_t block_qsum_v(const BlockQ8K* a) {
  return hsum(_mm256_madd_epi16(load(a->bsums), _mm256_set1_epi16(1)));
}

// Trits (0..2) of TQ1_0's base-3 bytes (SPEC 1.5): trit n of byte b is ((b * 3^n) mod 256) * 3 >> 8.
inline __m256i trits(__m256i b, int pow3) {
  const __m256i lo_mask = _mm256_set1_epi16(0x00FF);
  const __m256i m = _mm256_set1_epi16(static_cast<int16_t>(pow3));
  // Byte-wise multiply mod 256 from two 16-bit multiplies (low bytes, then high bytes).
  const __m256i lo = _mm256_and_si256(_mm256_mullo_epi16(b, m), lo_mask);
  const __m256i hi = _mm256_mullo_epi16(_mm256_srli_epi16(b, 8), m);
  const __m256i three = _mm256_set1_epi16(3);
  const __m256i t_lo = _mm256_srli_epi16(_mm256_mullo_epi16(lo, three), 8);
  const __m256i t_hi = _mm256_srli_epi16(_mm256_mullo_epi16(_mm256_and_si256(hi, lo_mask), three), 8);
  return _mm256_or_si256(t_lo, _mm256_slli_epi16(t_hi, 8));
}

// TQ1_0 block -> 256 trits in element order (SPEC 1.5 layout).
inline void unpack_tq1_0(const uint8_t* b, uint8_t* t) {
  static constexpr int kPow3[5] = {1, 3, 9, 27, 81};
  const __m256i q32 = load(b);
  for (int n = 0; n < 5; ++n) _mm256_storeu_si256(reinterpret_cast<__m256i*>(t + 32 * n), trits(q32, kPow3[n]));
  // Bytes 32..47: elements 160 + m + 16n. Duplicate the 16 bytes into both lanes, keep one half.
  const __m256i q16 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32)));
  for (int n = 0; n < 5; ++n)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(t + 160 + 16 * n), _mm256_castsi256_si128(trits(q16, kPow3[n])));
  // qh: byte j holds elements 240 + j + 4n for n < 4.
  for (int j = 0; j < 4; ++j)
    for (int n = 0; n < 4; ++n) {
      const auto shifted = static_cast<uint8_t>(b[48 + j] * kPow3[n]);
      t[240 + j + 4 * n] = static_cast<uint8_t>((shifted * 3) >> 8);
    }
}

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return kernels::f16_to_f32(h);
}

}  // namespace

int32_t dot_i2s_i8(const uint8_t* w, int64_t first, const int8_t* q, int64_t n) {
  if (first % kernels::kQK_I2S != 0 || n % kernels::kQK_I2S != 0) return kernels::ref::dot_i2s_i8(w, first, q, n);
  const uint8_t* p = w + first / 4;
  __m256i acc = _mm256_setzero_si256();
  for (int64_t b = 0; b < n / kernels::kQK_I2S; ++b)
    acc = _mm256_add_epi32(acc, group_dot<6, 4, 2, 0>(load(p + 32 * b), q + 128 * b));  // MSB-first
  return hsum(acc);
}

// Q8_K quantization with the reference's bits (the AVX-512 entry's method in 8-float vectors):
// the signed value of largest magnitude, the first on ties, fixes the scale; products round to
// nearest even; a block holding a NaN or an infinity goes to the reference.
void quantize_q8_k(const float* x, int64_t n, BlockQ8K* y) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i exponent = _mm256_set1_epi32(0x7f800000);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, ++y) {
    __m256 vmax = _mm256_setzero_ps();
    __m256i bad = _mm256_setzero_si256();
    for (int j = 0; j < kQK / 8; ++j) {
      const __m256 v = _mm256_loadu_ps(x + 8 * j);
      bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v), exponent), exponent));
      vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, v));
    }
    if (!_mm256_testz_si256(bad, bad)) {
      kernels::reference_table().quantize_q8_k(x, kQK, y);
      continue;
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    if (amax == 0.0f) {
      std::memset(y, 0, sizeof *y);
      continue;
    }
    float max = 0.0f;
    for (int j = 0; j < kQK / 8; ++j) {
      const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * j));
      const int m = _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (m != 0) {
        max = x[8 * j + __builtin_ctz(static_cast<unsigned>(m))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int j = 0; j < kQK / 16; ++j) {
      const __m256i v0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + 16 * j))), top);
      const __m256i v1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + 16 * j + 8))), top);
      // packs works within 128-bit lanes: the 64-bit permute puts the 16 int16 back in order.
      const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y->qs + 16 * j),
                       _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
      y->bsums[j] = static_cast<int16_t>(hsum(_mm256_add_epi32(v0, v1)));
    }
    y->d = 1.0f / iscale;
  }
}

float dot_tq2_0_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(w);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i, b += 66, ++a) {
    // Two 128-element halves, LSB-first fields; codes are w + 1, so subtract the sum of q.
    const __m256i s = _mm256_add_epi32(group_dot<0, 2, 4, 6>(load(b), a->qs),
                                       group_dot<0, 2, 4, 6>(load(b + 32), a->qs + 128));
    const int32_t isum = hsum(s) - block_qsum(a);
    sum += static_cast<float>(isum) * (f16(b + 64) * a->d);
  }
  return sum;
}

float dot_tq1_0_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(w);
  alignas(32) uint8_t t[kQK];
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i, b += 54, ++a) {
    unpack_tq1_0(b, t);
    __m256i acc = _mm256_setzero_si256();
    for (int k = 0; k < kQK; k += 64) {
      const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(load(t + k), load(a->qs + k)),
                                         _mm256_maddubs_epi16(load(t + k + 32), load(a->qs + k + 32)));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    }
    const int32_t isum = hsum(acc) - block_qsum(a);
    sum += static_cast<float>(isum) * (f16(b + 52) * a->d);
  }
  return sum;
}

namespace {

// Lanes 0-3: the sums of the eight int32 lanes of s[0..3].
inline __m128i sum4(const __m256i* s) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// The f16 scales at byte `off` of four rows, as f32 (F16C converts exactly).
inline __m128 scales4(const uint8_t* const* w, int64_t off) {
  uint16_t h[4];
  for (int r = 0; r < 4; ++r) std::memcpy(&h[r], w[r] + off, 2);
  uint64_t packed;
  std::memcpy(&packed, h, 8);
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(packed)));
}

// Code x q over 2 x 128 elements of one row with one 16-bit shift per 32 packed bytes instead of
// three: x & 3 and (x >> 4) & 3 are the fields at bits 0 and 4, x & 12 and (x >> 4) & 12 four times
// the fields at bits 2 and 6. The second kind is summed apart and divided by 4 (exactly: a sum of
// multiples of 4) before joining the first. x0/x1: the two 32-byte runs; q[k]: the activations of
// the field at bit 2k of x0 (k < 4) or of x1 (k >= 4), 32 each. Bounds per int16 lane, codes up
// to 3: the plain sum 8 * 3 * 128 = 3072, the scaled one 8 * 12 * 128 = 12288 (each vpmaddubsw
// pair at most 3072, far from its saturation).
inline __m256i fields_dot(__m256i x0, __m256i x1, const int8_t* const* q) {
  const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
  const __m256i y0 = _mm256_srli_epi16(x0, 4), y1 = _mm256_srli_epi16(x1, 4);
  const __m256i plain =
      _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(x0, m3), load(q[0])),
                                        _mm256_maddubs_epi16(_mm256_and_si256(y0, m3), load(q[2]))),
                       _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(x1, m3), load(q[4])),
                                        _mm256_maddubs_epi16(_mm256_and_si256(y1, m3), load(q[6]))));
  const __m256i four =
      _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(x0, m12), load(q[1])),
                                        _mm256_maddubs_epi16(_mm256_and_si256(y0, m12), load(q[3]))),
                       _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(x1, m12), load(q[5])),
                                        _mm256_maddubs_epi16(_mm256_and_si256(y1, m12), load(q[7]))));
  return _mm256_madd_epi16(_mm256_add_epi16(plain, _mm256_srai_epi16(four, 2)), _mm256_set1_epi16(1));
}

// Four TQ2_0 rows x one token: the activation loads and the block's sum of q serve all four;
// each row gets dot_tq2_0_q8_k's integer sums and float order. `ahead`: bytes on in each row's
// stream to prefetch.
void tq2_0_rows4(const uint8_t* const* w, const BlockQ8K* a, int64_t nb, int64_t ahead, float* out /* [4] */) {
  __m128 sum = _mm_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, ++a) {
    // TQ2_0 fields at bit 2m of byte b of run h: element 128h + 32m + b.
    const int8_t* q[8];
    for (int k = 0; k < 8; ++k) q[k] = a->qs + 128 * (k / 4) + 32 * (k % 4);
    __m256i s[4];
    for (int r = 0; r < 4; ++r) {
      const uint8_t* b = w[r] + i * 66;
      _mm_prefetch(reinterpret_cast<const char*>(b + ahead), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(b + ahead) + 65, _MM_HINT_T1);
      s[r] = fields_dot(load(b), load(b + 32), q);
    }
    const __m128i isum = _mm_sub_epi32(sum4(s), _mm_set1_epi32(block_qsum_v(a)));
    sum = _mm_add_ps(sum, _mm_mul_ps(_mm_cvtepi32_ps(isum), _mm_mul_ps(scales4(w, i * 66 + 64), _mm_set1_ps(a->d))));
  }
  _mm_storeu_ps(out, sum);
}

// Four I2_S rows x one token: int32 sums over the whole row, as dot_i2s_i8. Two 128-element
// groups per step (the fields at bit 6 - 2m of group g's byte b: element 128g + 32m + b).
void i2s_rows4(const uint8_t* const* w, int64_t ahead, const int8_t* q, int64_t n, int32_t* out /* [4] */) {
  __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  const int64_t groups = n / kernels::kQK_I2S;
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    const int8_t* qg = q + 128 * g;
    const int8_t* qk[8] = {qg + 96, qg + 64, qg + 32, qg, qg + 224, qg + 192, qg + 160, qg + 128};
    for (int r = 0; r < 4; ++r) {
      const uint8_t* p = w[r] + 32 * g;
      _mm_prefetch(reinterpret_cast<const char*>(p + ahead), _MM_HINT_T1);
      s[r] = _mm256_add_epi32(s[r], fields_dot(load(p), load(p + 32), qk));
    }
  }
  if (g < groups)
    for (int r = 0; r < 4; ++r) s[r] = _mm256_add_epi32(s[r], group_dot<6, 4, 2, 0>(load(w[r] + 32 * g), q + 128 * g));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), sum4(s));
}

// The four-row entries: decode (far-apart quarters) and what prefill leaves over.
void tq2_0_quads(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                 int64_t y_stride) {
  const int64_t nb = n / kQK;
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t ahead = (n_tokens < 4 ? 8 : 32) * nb * 66;  // 8 rows on in a stream; 8 quads on
  const int64_t left = for_row_quads(n_rows, n_tokens, [&](const std::array<int64_t, 4>& rows) {
    const uint8_t* wr[4];
    for (int r = 0; r < 4; ++r) wr[r] = wb + rows[r] * nb * 66;
    for (int64_t t = 0; t < n_tokens; ++t) {
      alignas(16) float out[4];
      tq2_0_rows4(wr, a + t * nb, nb, ahead, out);
      for (int r = 0; r < 4; ++r) y[t * y_stride + rows[r]] = out[r];
    }
  });
  for (int64_t r = left; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot_tq2_0_q8_k(wb + r * nb * 66, a + t * nb, n);
}

void i2s_quads(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
               int64_t y_stride) {
  const int64_t row_bytes = n / 4;
  const int64_t ahead = (n_tokens < 4 ? 8 : 32) * row_bytes;
  const int64_t left = for_row_quads(n_rows, n_tokens, [&](const std::array<int64_t, 4>& rows) {
    const uint8_t* wr[4];
    for (int r = 0; r < 4; ++r) wr[r] = w + rows[r] * row_bytes;
    for (int64_t t = 0; t < n_tokens; ++t) {
      alignas(16) int32_t out[4];
      i2s_rows4(wr, ahead, q + t * n, n, out);
      for (int r = 0; r < 4; ++r) y[t * y_stride + rows[r]] = out[r];
    }
  });
  for (int64_t r = left; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot_i2s_i8(w + r * row_bytes, 0, q + t * n, n);
}


// --- Prefill: rows unpacked once per call, each unpacked vector reused by every token ---
//
// Layout: one ymm holds 4 consecutive elements (a "quad") of 8 rows, row r's codes in dword r.
// Broadcasting a token's 4 activation bytes of the same quad (vpbroadcastd) and vpmaddubsw give
// per row two int16 pair sums; with 2 weight vectors (16 rows) x 6 tokens the 12 accumulators,
// the two weights, the broadcast and one product fill the 16 ymm registers, so each weight load
// serves 6 tokens and each activation load 16 rows, and no horizontal sum is ever needed: a
// final vpmaddwd with ones leaves 8 rows' int32 sums in one vector. Every 128 elements (32 quads)
// the int16 sums are widened to int32: per quad an int16 lane adds at most 2 * 3 * 128 = 768 in
// magnitude (codes up to 3, which the I2_S format cannot hold but the tests feed), 32 of them
// 24576 < 32768.
constexpr int64_t kGroupRows = 16;   // rows per pair of weight vectors
constexpr int64_t kCallRows = 64;    // rows unpacked at a time: 4 groups x 256 elements = 16 KiB
constexpr int kTokens = 6;           // tokens per register block
constexpr int kHalfQuads = 32;       // quads of one 128-element half (TQ2_0) or group (I2_S)

// 8 rows' 32 packed bytes (row r at p + r * stride) transposed as dwords: out[d] holds bytes
// 4d..4d+3 of row r in dword r.
inline void transpose8(const uint8_t* p, int64_t stride, __m256i out[8]) {
  __m256i r[8];
  for (int i = 0; i < 8; ++i) r[i] = load(p + i * stride);
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);      // d0 d0 d1 d1 | d4 d4 d5 d5
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);  // d2 d2 d3 d3 | d6 d6 d7 d7
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);      // d0 of 4 rows | d4
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);      // d1 | d5
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);  // d2 | d6
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);  // d3 | d7
  }
  for (int d = 0; d < 4; ++d) {
    out[d] = _mm256_permute2x128_si256(u[d], u[4 + d], 0x20);
    out[d + 4] = _mm256_permute2x128_si256(u[d], u[4 + d], 0x31);
  }
}

// Field at bit S of every byte (a 32-bit shift of at most 6 keeps each byte's field in its byte).
template <int S>
inline __m256i field(__m256i v) {
  return _mm256_and_si256(_mm256_srli_epi32(v, S), _mm256_set1_epi8(3));
}

// One 128-element run of 16 rows (32 packed bytes each, row r at p + r * stride) into 32 quads x
// 2 vectors. Field m of byte b holds element 32m + b, at bit 2m (TQ2_0) or 6 - 2m (I2_S): dword d
// of the transposed bytes gives quad 8m + d of the run.
template <bool kI2S>
inline void unpack_run(const uint8_t* p, int64_t stride, __m256i* out) {
  for (int g = 0; g < 2; ++g) {
    __m256i t[8];
    transpose8(p + 8 * g * stride, stride, t);
    for (int d = 0; d < 8; ++d) {
      out[2 * (0 + d) + g] = field<kI2S ? 6 : 0>(t[d]);
      out[2 * (8 + d) + g] = field<kI2S ? 4 : 2>(t[d]);
      out[2 * (16 + d) + g] = field<kI2S ? 2 : 4>(t[d]);
      out[2 * (24 + d) + g] = field<kI2S ? 0 : 6>(t[d]);
    }
  }
}

inline int32_t bcast_word(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// s0 += maddubs(w0, a), s1 += maddubs(w1, a) with a = the dword at p in every lane. In inline
// assembly because GCC 12 allocates the 6-token block's 12 accumulators badly from intrinsics
// (half of them spilled and copied back every quad, 40% more instructions in the loop).
inline __attribute__((always_inline)) void madd_step(__m256i w0, __m256i w1, const int8_t* p, __m256i& s0, __m256i& s1) {
  __m256i x, y;
  asm("vpbroadcastd %[p], %[x]\n\t"
      "vpmaddubsw %[x], %[w1], %[y]\n\t"
      "vpmaddubsw %[x], %[w0], %[x]\n\t"
      "vpaddw %[x], %[s0], %[s0]\n\t"
      "vpaddw %[y], %[s1], %[s1]"
      : [s0] "+x"(s0), [s1] "+x"(s1), [x] "=&x"(x), [y] "=&x"(y)
      : [w0] "x"(w0), [w1] "x"(w1), [p] "m"(*reinterpret_cast<const int32_t*>(p)));
}

// acc[2t + g] (int32, rows 8g..8g+7) += the T tokens' sums over one 32-quad run: w holds the
// run's unpacked 16 rows, act[t] token t's 128 activations of it.
template <int T>
inline void run_block(const __m256i* w, const int8_t* const* act, __m256i* acc) {
  __m256i s0[T], s1[T];
  const int8_t* p[T];
  for (int t = 0; t < T; ++t) {
    s0[t] = s1[t] = _mm256_setzero_si256();
    p[t] = act[t];
  }
  for (int j = 0; j < kHalfQuads; ++j) {
    const __m256i w0 = _mm256_load_si256(w + 2 * j), w1 = _mm256_load_si256(w + 2 * j + 1);
    for (int t = 0; t < T; ++t) madd_step(w0, w1, p[t] + 4 * j, s0[t], s1[t]);
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int t = 0; t < T; ++t) {
    acc[2 * t] = _mm256_add_epi32(acc[2 * t], _mm256_madd_epi16(s0[t], ones));
    acc[2 * t + 1] = _mm256_add_epi32(acc[2 * t + 1], _mm256_madd_epi16(s1[t], ones));
  }
}

inline void run_block_n(int nt, const __m256i* w, const int8_t* const* act, __m256i* acc) {
  switch (nt) {
    case 1: return run_block<1>(w, act, acc);
    case 2: return run_block<2>(w, act, acc);
    case 3: return run_block<3>(w, act, acc);
    case 4: return run_block<4>(w, act, acc);
    case 5: return run_block<5>(w, act, acc);
    default: return run_block<6>(w, act, acc);
  }
}

// TQ2_0 rows [0, n_rows) with n_rows a multiple of 16, n_tokens tokens.
void tq2_0_prefill(const uint8_t* wb, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t nb, float* y,
                   int64_t y_stride) {
  const int64_t row_bytes = nb * 66;
  alignas(32) __m256i buf[kCallRows / kGroupRows][2 * kHalfQuads * 2];  // [group][quad][8-row half]
  for (int64_t r0 = 0; r0 < n_rows; r0 += kCallRows) {
    const int64_t groups = std::min(kCallRows, n_rows - r0) / kGroupRows;
    for (int64_t i = 0; i < nb; ++i) {
      __m256 dw[kCallRows / kGroupRows][2];
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* blk = wb + (r0 + kGroupRows * g) * row_bytes + i * 66;
        unpack_run<false>(blk, row_bytes, buf[g]);
        unpack_run<false>(blk + 32, row_bytes, buf[g] + 2 * kHalfQuads);
        alignas(32) uint16_t h[kGroupRows];
        for (int r = 0; r < kGroupRows; ++r) std::memcpy(&h[r], blk + r * row_bytes + 64, 2);
        dw[g][0] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
        dw[g][1] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h + 8)));
      }
      // Token blocks outside the row groups: the block's 6 x 256 activation bytes stay in L1
      // for the 4 groups, as do the 16 KiB of unpacked rows for all token blocks.
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokens) {
        for (int64_t g = 0; g < groups; ++g) {
          const int nt = static_cast<int>(std::min<int64_t>(kTokens, n_tokens - t0));
          const int8_t* act[kTokens];
          for (int t = 0; t < nt; ++t) act[t] = a[(t0 + t) * nb + i].qs;
          __m256i acc[2 * kTokens];
          for (auto& v : acc) v = _mm256_setzero_si256();
          run_block_n(nt, buf[g], act, acc);
          for (int t = 0; t < nt; ++t) act[t] += 128;
          run_block_n(nt, buf[g] + 2 * kHalfQuads, act, acc);
          // dot_tq2_0_q8_k's float step per row: sum += float(isum - qsum) * (d_w * d_a).
          for (int t = 0; t < nt; ++t) {
            const BlockQ8K* at = a + (t0 + t) * nb + i;
            const __m256i qsum = _mm256_set1_epi32(block_qsum_v(at));
            const __m256 da = _mm256_set1_ps(at->d);
            float* yt = y + (t0 + t) * y_stride + r0 + kGroupRows * g;
            for (int h = 0; h < 2; ++h) {
              const __m256 term = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[2 * t + h], qsum)),
                                                _mm256_mul_ps(dw[g][h], da));
              const __m256 prev = i == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(yt + 8 * h);
              _mm256_storeu_ps(yt + 8 * h, _mm256_add_ps(prev, term));
            }
          }
        }
      }
    }
  }
}

// I2_S rows [0, n_rows) with n_rows a multiple of 16: int32 sums kept in y between runs of 256
// elements.
void i2s_prefill(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride) {
  const int64_t row_bytes = n / 4, runs = n / kernels::kQK_I2S;
  alignas(32) __m256i buf[kCallRows / kGroupRows][2 * kHalfQuads * 2];
  for (int64_t r0 = 0; r0 < n_rows; r0 += kCallRows) {
    const int64_t groups = std::min(kCallRows, n_rows - r0) / kGroupRows;
    for (int64_t s0 = 0; s0 < runs; s0 += 2) {
      const int64_t ns = std::min<int64_t>(2, runs - s0);
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t s = 0; s < ns; ++s)
          unpack_run<true>(w + (r0 + kGroupRows * g) * row_bytes + (s0 + s) * 32, row_bytes, buf[g] + s * 2 * kHalfQuads);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokens) {  // as TQ2_0: activations kept in L1
        for (int64_t g = 0; g < groups; ++g) {
          const int nt = static_cast<int>(std::min<int64_t>(kTokens, n_tokens - t0));
          const int8_t* act[kTokens];
          for (int t = 0; t < nt; ++t) act[t] = q + (t0 + t) * n + s0 * kernels::kQK_I2S;
          __m256i acc[2 * kTokens];
          for (int t = 0; t < nt; ++t)
            for (int h = 0; h < 2; ++h) {
              const int32_t* yt = y + (t0 + t) * y_stride + r0 + kGroupRows * g + 8 * h;
              acc[2 * t + h] = s0 == 0 ? _mm256_setzero_si256() : load(yt);
            }
          for (int64_t s = 0; s < ns; ++s) {
            run_block_n(nt, buf[g] + s * 2 * kHalfQuads, act, acc);
            for (int t = 0; t < nt; ++t) act[t] += kernels::kQK_I2S;
          }
          for (int t = 0; t < nt; ++t)
            for (int h = 0; h < 2; ++h)
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + (t0 + t) * y_stride + r0 + kGroupRows * g + 8 * h),
                                  acc[2 * t + h]);
        }
      }
    }
  }
}

// Below this many tokens the four-row kernels win: unpacking 16 rows costs about as much as
// multiplying them with a couple of tokens, and decode streams rows from memory in quarters.
constexpr int64_t kPrefillTokens = 4;

}  // namespace

void gemm_tq2_0_q8_k(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                     int64_t y_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kQK;
  const int64_t full = n_tokens >= kPrefillTokens ? n_rows / kGroupRows * kGroupRows : 0;
  if (full > 0) tq2_0_prefill(wb, full, a, n_tokens, nb, y, y_stride);
  if (full < n_rows) tq2_0_quads(wb + full * nb * 66, n_rows - full, a, n_tokens, n, y + full, y_stride);
}

void gemm_i2s_i8(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride) {
  const int64_t full = n_tokens >= kPrefillTokens ? n_rows / kGroupRows * kGroupRows : 0;
  if (full > 0) i2s_prefill(w, full, q, n_tokens, n, y, y_stride);
  if (full < n_rows) i2s_quads(w + full * (n / 4), n_rows - full, q, n_tokens, n, y + full, y_stride);
}

}  // namespace bitnet::backends::avx2

namespace bitnet::backends {

const kernels::KernelTable& avx2_table() {
  static const kernels::KernelTable table = [] {
    kernels::KernelTable t = kernels::reference_table();
    t.name = "avx2";
    t.dot_i2s_i8 = avx2::dot_i2s_i8;
    t.dot_tq2_0_q8_k = avx2::dot_tq2_0_q8_k;
    t.quantize_q8_k = avx2::quantize_q8_k;
    t.dot_tq1_0_q8_k = avx2::dot_tq1_0_q8_k;
    t.dot_f16_f16 = avx2::dot_f16_f16;
    t.dot_bf16_bf16 = avx2::dot_bf16_bf16;
    t.dot_f32_f32 = avx2::dot_f32_f32;
    t.to_f16 = avx2::to_f16;
    t.gemm_f16 = avx2::gemm_f16;
    t.to_bf16 = avx2::to_bf16;
    t.exp_f32 = avx2::exp_f32;
    t.softmax_f32 = avx2::softmax_f32;
    t.gemm_tq2_0_q8_k = avx2::gemm_tq2_0_q8_k;
    t.gemm_i2s_i8 = avx2::gemm_i2s_i8;
    t.dot_q6_k_q8_k = avx2::dot_q6_k_q8_k;
    t.gemm_q6_k_q8_k = avx2::gemm_q6_k_q8_k;
    t.quantize_q8_0 = avx2::quantize_q8_0;
    t.dot_q8_0_q8_0 = avx2::dot_q8_0_q8_0;
    t.gemm_q8_0_q8_0 = avx2::gemm_q8_0_q8_0;
    t.weighted_sum_q8_0 = avx2::weighted_sum_q8_0;
    t.dot_q4_0_q8_0 = avx2::dot_q4_0_q8_0;
    t.gemv_i8_i16 = avx2::gemv_i8_i16;
    return t;
  }();
  return table;
}

}  // namespace bitnet::backends
