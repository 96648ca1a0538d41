// AVX2 kernels (SPEC.md 5): ternary codes unpacked with shifts and masks, multiplied by int8
// activations with maddubs (unsigned code x signed activation), widened to int32 per block so
// no int16 sum can overflow. Integer results equal the reference exactly; ternary x Q8_K dots
// accumulate their per-block floats in the reference's order, so they match it bit for bit too.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "backends/avx2.hpp"
#include "backends/q6k.hpp"
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

// The last three levels of f16_lane_sum's tree over 8 lanes: j + j+4, then j + j+2, then 0 + 1.
inline float hsum8_tree(__m256 u) {
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
  const __m128 s = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n) {
  // The reference's 64 float lanes as eight 8-float accumulators: acc[k] holds lanes 8k..8k+7.
  // Products of two f16 values are exact in f32, so the fused multiply-add rounds as its add.
  __m256 acc[8];
  for (auto& v : acc) v = _mm256_setzero_ps();
  auto half8 = [](const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); };
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_fmadd_ps(half8(w + i + 8 * k), half8(a + i + 8 * k), acc[k]);
  // The tail, zero-padded: a +0 product leaves a lane (which is never -0) unchanged.
  for (int k = 0; i < n; ++k, i += 8) {
    alignas(16) uint16_t wt[8] = {}, at[8] = {};
    const int64_t m = std::min<int64_t>(8, n - i);
    std::memcpy(wt, w + i, static_cast<size_t>(m) * sizeof(uint16_t));
    std::memcpy(at, a + i, static_cast<size_t>(m) * sizeof(uint16_t));
    acc[k] = _mm256_fmadd_ps(half8(wt), half8(at), acc[k]);
  }
  // f16_lane_sum's tree: lanes j and j+16 are acc[k] and acc[k+2], j+32 and j+48 acc[k+4], acc[k+6].
  const __m256 v0 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[4], acc[6]));
  const __m256 v1 = _mm256_add_ps(_mm256_add_ps(acc[1], acc[3]), _mm256_add_ps(acc[5], acc[7]));
  return hsum8_tree(_mm256_add_ps(v0, v1));
}

void to_f16(const float* x, int64_t n, uint16_t* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = kernels::f32_to_f16(x[i]);
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

// Four TQ2_0 rows x one token: the activation loads and the block's sum of q serve all four;
// each row gets dot_tq2_0_q8_k's integer sums and float order. `ahead`: bytes on in each row's
// stream to prefetch.
void tq2_0_rows4(const uint8_t* const* w, const BlockQ8K* a, int64_t nb, int64_t ahead, float* out /* [4] */) {
  __m128 sum = _mm_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, ++a) {
    __m256i s[4];
    for (int r = 0; r < 4; ++r) {
      const uint8_t* b = w[r] + i * 66;
      _mm_prefetch(reinterpret_cast<const char*>(b + ahead), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(b + ahead) + 65, _MM_HINT_T1);
      s[r] = _mm256_add_epi32(group_dot<0, 2, 4, 6>(load(b), a->qs), group_dot<0, 2, 4, 6>(load(b + 32), a->qs + 128));
    }
    const __m128i isum = _mm_sub_epi32(sum4(s), _mm_set1_epi32(block_qsum(a)));
    sum = _mm_add_ps(sum, _mm_mul_ps(_mm_cvtepi32_ps(isum), _mm_mul_ps(scales4(w, i * 66 + 64), _mm_set1_ps(a->d))));
  }
  _mm_storeu_ps(out, sum);
}

// Four I2_S rows x one token: int32 sums over the whole row, as dot_i2s_i8.
void i2s_rows4(const uint8_t* const* w, int64_t ahead, const int8_t* q, int64_t n, int32_t* out /* [4] */) {
  __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int64_t g = 0; g < n / kernels::kQK_I2S; ++g) {
    for (int r = 0; r < 4; ++r) {
      const uint8_t* p = w[r] + 32 * g;
      if ((g & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(p + ahead), _MM_HINT_T1);
      s[r] = _mm256_add_epi32(s[r], group_dot<6, 4, 2, 0>(load(p), q + 128 * g));
    }
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), sum4(s));
}

}  // namespace

void gemm_tq2_0_q8_k(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
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

void gemm_i2s_i8(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
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

}  // namespace bitnet::backends::avx2

namespace bitnet::backends {

const kernels::KernelTable& avx2_table() {
  static const kernels::KernelTable table = [] {
    kernels::KernelTable t = kernels::reference_table();
    t.name = "avx2";
    t.dot_i2s_i8 = avx2::dot_i2s_i8;
    t.dot_tq2_0_q8_k = avx2::dot_tq2_0_q8_k;
    t.dot_tq1_0_q8_k = avx2::dot_tq1_0_q8_k;
    t.dot_f16_f16 = avx2::dot_f16_f16;
    t.to_f16 = avx2::to_f16;
    t.gemm_tq2_0_q8_k = avx2::gemm_tq2_0_q8_k;
    t.gemm_i2s_i8 = avx2::gemm_i2s_i8;
    t.dot_q6_k_q8_k = avx2::dot_q6_k_q8_k;
    t.gemm_q6_k_q8_k = avx2::gemm_q6_k_q8_k;
    return t;
  }();
  return table;
}

}  // namespace bitnet::backends
