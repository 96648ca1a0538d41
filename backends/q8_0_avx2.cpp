// Q8_0 and Q4_0 x Q8_0 with AVX2, and the Q8_0 activation quantizer.
//
// Q8_0 blocks are signed bytes on both sides, which vpmaddubsw (unsigned x signed, saturating
// pairs) cannot take exactly for every value (-128 x -128 pairs overflow it), so they widen to
// int16 and go through vpmaddwd. Q4_0's nibbles (w + 8) are unsigned: vpmaddubsw of the nibbles
// minus vpmaddubsw of 8, both exact (|pair| <= 3840). Eight blocks' sums are reduced to one
// vector in block order, whose float terms (d_w * d_a, times the sum) are the reference's, added
// to the row's sum one by one (q8_0_driver.hpp).
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cstring>

#include "backends/q8_0.hpp"

namespace bitnet::backends::avx2 {
namespace {

using kernels::BlockQ8_0;

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

constexpr int kGroup = 8;

// One block's eight int32 partial sums of w * q.
struct Q8Weights {
  static constexpr int64_t kBytes = 34;
  static __m256i sums(const uint8_t* b, const int8_t* q) {
    const __m256i lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(b + 2)), _mm256_cvtepi8_epi16(load128(q)));
    const __m256i hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(load128(b + 18)), _mm256_cvtepi8_epi16(load128(q + 16)));
    return _mm256_add_epi32(lo, hi);
  }
};

struct Q4Weights {
  static constexpr int64_t kBytes = 18;
  static __m256i sums(const uint8_t* b, const int8_t* q) {
    // Low nibbles are elements 0-15, high nibbles 16-31.
    const __m128i x = load128(b + 2);
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(0x0f));
    const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(nib, qv), _mm256_maddubs_epi16(_mm256_set1_epi8(8), qv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
};

// Lane k = the sum of the eight lanes of s[k].
inline __m256i block_sums(const __m256i* s) {
  const __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
  const __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20), _mm256_permute2x128_si256(g0, g1, 0x31));
}

// The f16 scales at the start of 8 blocks `stride` bytes apart, as f32 (F16C converts exactly).
inline __m256 scales8(const void* p, size_t stride) {
  alignas(16) uint16_t h[8];
  for (size_t k = 0; k < 8; ++k) std::memcpy(&h[k], static_cast<const uint8_t*>(p) + k * stride, 2);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
}

// The 8 blocks' terms float(isum) * (d_w * d_a), the reference's operations.
template <typename F>
inline void terms(const uint8_t* w, const BlockQ8_0* a, float* t) {
  __m256i s[8];
  for (int k = 0; k < 8; ++k) s[k] = F::sums(w + k * F::kBytes, a[k].qs);
  const __m256 d = _mm256_mul_ps(scales8(w, F::kBytes), scales8(a, sizeof(BlockQ8_0)));
  _mm256_store_ps(t, _mm256_mul_ps(_mm256_cvtepi32_ps(block_sums(s)), d));
}

// roundf's rounding (half away from zero), exactly: the truncation is exact, so is v minus it,
// and a fraction of at least one half moves one step away from zero.
inline __m256i round_away(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 up = _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 step = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

}  // namespace

#include "backends/q8_0_driver.hpp"

// The reference's steps block by block, as avx512's quantize_q8_0 (q8_0_avx512.cpp): the same
// blocks go to the reference.
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y) {
  const __m256i exp = _mm256_set1_epi32(0x7f800000);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kernels::kQK8_0; ++b, x += kernels::kQK8_0, ++y) {
    __m256 v[4];
    __m256i bad = _mm256_setzero_si256();
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v[j]), exp), exp));
      vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, v[j]));
    }
    const float d = hmax(vmax) / 127.0f;
    if (!_mm256_testz_si256(bad, bad) || (d != 0.0f && d < FLT_MIN)) {
      kernels::reference_table().quantize_q8_0(x, kernels::kQK8_0, y);
      continue;
    }
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = round_away(_mm256_mul_ps(v[j], vid));
    // |q| <= 127: the saturating packs are exact. They interleave 128-bit lanes (dword k of the
    // packed bytes holds four values of q[k % 4]), which the permute puts back in order.
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y->qs),
                        _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}

// Q8_0 rows times Q8_0 tokens. Rows of at most kGroup blocks (a Q8_0 KV cache's keys: 4 blocks
// for a head of 128) would each go through the dot's zero-padded group of 8 blocks, half of it
// padding: here the (token, block) pairs of one row fill the groups instead, kGroup at a time,
// and each token's terms are added in block order from +0, as the dot does. Longer rows: the dot.
void gemm_q8_0_q8_0(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride) {
  const int64_t nb = n / kernels::kQK8_0;
  const auto* wb = static_cast<const uint8_t*>(w);
  if (nb > kGroup) {
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot_q8_0_q8_0(wb + r * nb * Q8Weights::kBytes, a + t * nb, n);
    return;
  }
  const int64_t per = kGroup / nb;  // tokens per group
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* row = wb + r * nb * Q8Weights::kBytes;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += per) {
      const int64_t nt = std::min(per, n_tokens - t0), pairs = nt * nb;
      __m256i s[kGroup];
      alignas(16) uint16_t dw[kGroup] = {}, da[kGroup] = {};
      for (int64_t k = 0; k < kGroup; ++k) {
        if (k >= pairs) {
          s[k] = _mm256_setzero_si256();
          continue;
        }
        const uint8_t* blk = row + (k % nb) * Q8Weights::kBytes;
        const BlockQ8_0& q = a[(t0 + k / nb) * nb + k % nb];
        s[k] = Q8Weights::sums(blk, q.qs);
        std::memcpy(&dw[k], blk, 2);
        da[k] = q.d;
      }
      const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dw))),
                                     _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(da))));
      alignas(32) float t[kGroup];
      _mm256_store_ps(t, _mm256_mul_ps(_mm256_cvtepi32_ps(block_sums(s)), d));
      for (int64_t j = 0; j < nt; ++j) {
        float sum = 0.0f;
        for (int64_t b = 0; b < nb; ++b) sum += t[j * nb + b];
        y[(t0 + j) * y_stride + r] = sum;
      }
    }
  }
}

namespace {

// Heads NH (<= 4) x 16 channels (half a block) in registers; each half block is widened and
// scaled once per key for all the heads (d * q is exact, as in the reference).
template <int NH>
void weighted_tile(const BlockQ8_0* v, int64_t v_stride, int64_t half, int64_t n_keys, const float* p, int64_t p_stride,
                   float* y, int64_t y_stride) {
  __m256 acc[NH][2];
  for (auto& h : acc) h[0] = h[1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n_keys; ++j) {
    const BlockQ8_0& b = v[j * v_stride];
    const __m256 d = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(b.d)));
    const __m128i q = load128(b.qs + 16 * half);
    const __m256 x0 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
    const __m256 x1 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))));
    for (int h = 0; h < NH; ++h) {
      const __m256 w = _mm256_set1_ps(p[h * p_stride + j]);
      acc[h][0] = _mm256_fmadd_ps(w, x0, acc[h][0]);
      acc[h][1] = _mm256_fmadd_ps(w, x1, acc[h][1]);
    }
  }
  for (int h = 0; h < NH; ++h) {
    _mm256_storeu_ps(y + h * y_stride, acc[h][0]);
    _mm256_storeu_ps(y + h * y_stride + 8, acc[h][1]);
  }
}

}  // namespace

void weighted_sum_q8_0(const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                       int64_t n_heads, int64_t n, float* y, int64_t y_stride) {
  for (int64_t h = 0; h < n_heads; h += 4) {
    const int64_t nh = std::min<int64_t>(4, n_heads - h);
    const float* ph = p + h * p_stride;
    for (int64_t c = 0; c < n; c += 16) {
      const BlockQ8_0* col = v + c / 32;
      float* out = y + h * y_stride + c;
      const int64_t half = (c / 16) % 2;
      switch (nh) {
        case 1: weighted_tile<1>(col, v_stride, half, n_keys, ph, p_stride, out, y_stride); break;
        case 2: weighted_tile<2>(col, v_stride, half, n_keys, ph, p_stride, out, y_stride); break;
        case 3: weighted_tile<3>(col, v_stride, half, n_keys, ph, p_stride, out, y_stride); break;
        default: weighted_tile<4>(col, v_stride, half, n_keys, ph, p_stride, out, y_stride); break;
      }
    }
  }
}

}  // namespace bitnet::backends::avx2
