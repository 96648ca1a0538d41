// Q6_K x Q8_K with AVX-512 (F, BW, VL, VNNI only: the avx512 table's gate).
//
// The reference (ggml's scalar order) keeps eight int32 sums per block, element k going to sum
// k % 8 ("class" k % 8), then adds d * float(sum) to eight float lanes block by block. The byte
// products of vpmaddubsw pair adjacent bytes and vpdpwssd adjacent words, so the 6-bit weights
// and the activations are put in a "class layout" where every dword holds four elements of one
// class: the two words are (c, c+8) of one 16-element sub-block and (c+16, c+24) of the next, so
// each word is scaled by its own sub-block scale. A vpermd and an in-lane vpshufb on the packed
// bytes (before the nibbles are split) give that layout; the activations get the same permutation,
// once per block and token, shared by the rows. Weights stay unsigned (0..63, the stored value);
// the -32 offset is the per-word correction 32 * (q_a + q_b), also per token. All integer steps
// are exact (|word| <= 8192, class sums <= 2^24) and the float steps are the reference's.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "backends/q6k.hpp"
#include "core/kernels/blocks.hpp"
#include "backends/row_quads.hpp"

namespace bitnet::backends::avx512 {
namespace {

using kernels::BlockQ8K;
using Layout = kernels::detail::Q6_KLayout;  // ql[128], qh[64], scales[16], f16 d
constexpr int64_t kBlockBytes = Layout::bytes;
constexpr int64_t kQhOff = Layout::qh, kScOff = Layout::scales, kDOff = Layout::d;

inline __m512i load(const void* p) { return _mm512_loadu_si512(p); }

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // exact, like the reference's conversion
}

// vpermd indices: 128-bit lane 0 gets dwords 0,2,4,6 (bytes 0-3, 8-11, 16-19, 24-27) of the
// 32 bytes at dword `lo`, lane 1 their dwords 1,3,5,7; lanes 2 and 3 the same of the 32 bytes at
// dword `hi`.
inline __m512i dwords_of(int lo, int hi) {
  return _mm512_setr_epi32(lo, lo + 2, lo + 4, lo + 6, lo + 1, lo + 3, lo + 5, lo + 7, hi, hi + 2, hi + 4, hi + 6,
                           hi + 1, hi + 3, hi + 5, hi + 7);
}

// In-lane 4x4 byte transpose: dword c of a lane gets byte c of each of its four dwords, so lane 0
// dword c holds bytes c, c+8, c+16, c+24 of the 32-byte half (one class, two sub-blocks).
inline __m512i transpose4x4() {
  return _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
}

// 64 consecutive bytes (two 32-byte halves) in the class layout.
inline __m512i class_layout(__m512i x, __m512i idx) {
  return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, x), transpose4x4());
}

// One row's block: e[j] holds elements 64j..64j+63 (unsigned 0..63) in the class layout, s[j]
// the int16 scales of each word (lanes 0-1: sub-blocks 4j, 4j+1; lanes 2-3: 4j+2, 4j+3).
struct Weights {
  __m512i e[4];
  __m512i s[4];
};

// (x & 0x0f) | (h & 0x30), one vpternlogd after the mask of h.
inline __m512i six_bits(__m512i x, __m512i h) {
  return _mm512_ternarylogic_epi32(x, _mm512_set1_epi8(0x0f), _mm512_and_si512(h, _mm512_set1_epi8(0x30)), 0xEA);
}

inline void unpack(const uint8_t* b, Weights& w) {
  const __m512i per_half = dwords_of(0, 8);
  const __m512i x0 = class_layout(load(b), per_half);       // ql[0..63]: elements 0-63 low, 64-127 high
  const __m512i x1 = class_layout(load(b + 64), per_half);  // ql[64..127]: elements 128-191, 192-255
  const __m512i y = load(b + kQhOff);
  // qh[0..31] serves elements 0-127 and qh[32..63] 128-255: each copied into both halves.
  const __m512i h0 = class_layout(y, dwords_of(0, 0)), h1 = class_layout(y, dwords_of(8, 8));
  // Per 256-bit half (k = 0,1 for low nibbles; k = 2,3 for high nibbles) qh bits 2k..2k+1 go
  // to bits 4-5: left 4 / left 2 for the low nibbles' halves, right 0 / right 2 for the high.
  const __m512i left = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i right = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
  w.e[0] = six_bits(x0, _mm512_sllv_epi16(h0, left));
  w.e[1] = six_bits(_mm512_srli_epi16(x0, 4), _mm512_srlv_epi16(h0, right));
  w.e[2] = six_bits(x1, _mm512_sllv_epi16(h1, left));
  w.e[3] = six_bits(_mm512_srli_epi16(x1, 4), _mm512_srlv_epi16(h1, right));
  // Scales as int16 pairs: dword m = (sc[2m], sc[2m+1]); e[j] takes dword 2j in its low half and
  // dword 2j+1 in its high half.
  const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kScOff));
  const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(sc8));
  for (int j = 0; j < 4; ++j) {
    const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(2 * j), _mm256_set1_epi32(2 * j + 1), 1);
    w.s[j] = _mm512_permutexvar_epi32(idx, sc);
  }
}

// One token's block in the class layout, and the words 32 * (q_a + q_b) that turn the unsigned
// weights' products into the signed ones.
struct Activations {
  __m512i q[4];
  __m512i corr[4];
};

inline void prepare(const int8_t* qs, Activations& a) {
  const __m512i per_half = dwords_of(0, 8);
  for (int j = 0; j < 4; ++j) {
    a.q[j] = class_layout(load(qs + 64 * j), per_half);
    a.corr[j] = _mm512_maddubs_epi16(_mm512_set1_epi8(32), a.q[j]);
  }
}

// The block's eight class sums, in class order. Each word is v_a*q_a + v_b*q_b (|.| <= 8192),
// times its sub-block scale into int32; lanes 0/2 hold classes 0-3 and lanes 1/3 classes 4-7.
inline __m256i class_sums(const Weights& w, const Activations& a) {
  __m512i acc = _mm512_setzero_si512();
  for (int j = 0; j < 4; ++j) {
    const __m512i words = _mm512_sub_epi16(_mm512_maddubs_epi16(w.e[j], a.q[j]), a.corr[j]);
    acc = _mm512_dpwssd_epi32(acc, words, w.s[j]);
  }
  return _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
}

// Software prefetch into L2 for the decode's four streams. On the 2B model's output matrix
// (32000 x 2560, 2 threads, a busy machine) it took the call from 3.4-3.8 ms to 1.9-2.7 ms.
inline void prefetch_block(const uint8_t* p) {
  // The 210 bytes span four or five lines; one prefetch per 64 bytes of each block covers every
  // line of the row once the blocks follow each other.
  for (int off = 0; off < 256; off += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + off, _MM_HINT_T1);
}

// Each decode stream prefetches its block 8 rows on.
inline void prefetch_ahead(const uint8_t* block, int64_t row_bytes) { prefetch_block(block + 8 * row_bytes); }

}  // namespace

#include "backends/q6k_driver.hpp"

}  // namespace bitnet::backends::avx512
