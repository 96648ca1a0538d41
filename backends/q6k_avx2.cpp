// Q6_K x Q8_K with AVX2 (plus FMA/F16C: the avx2 table's gate; no fused multiply-adds here).
//
// The reference (ggml's scalar order) keeps eight int32 sums per block, element k going to sum
// k % 8 ("class" k % 8), then adds d * float(sum) to eight float lanes block by block. vpmaddubsw
// pairs adjacent bytes and vpmaddwd adjacent words, so the 6-bit weights and the activations are
// put in a "class layout" where every dword holds four elements of one class: the two words are
// (c, c+8) of one 16-element sub-block and (c+16, c+24) of the next, so each word gets its own
// sub-block scale. Per 32 elements, 128-bit lane 0 then holds classes 0-3 and lane 1 classes 4-7,
// so the int32 accumulator is the eight class sums in order with no reduction. A vpermd and an
// in-lane vpshufb on the packed bytes (before the nibbles are split) give the layout; the
// activations get the same permutation once per block and token, shared by the rows. Weights stay
// unsigned (0..63, the stored value); the -32 offset is the per-word correction 32 * (q_a + q_b).
// Every integer step is exact (|word| <= 8192, class sums <= 2^24).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "backends/q6k.hpp"
#include "core/kernels/blocks.hpp"
#include "backends/row_quads.hpp"

namespace bitnet::backends::avx2 {
namespace {

using kernels::BlockQ8K;
using Layout = kernels::detail::Q6_KLayout;  // ql[128], qh[64], scales[16], f16 d
constexpr int64_t kBlockBytes = Layout::bytes;
constexpr int64_t kQhOff = Layout::qh, kScOff = Layout::scales, kDOff = Layout::d;

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // exact, like the reference's conversion
}

// 32 consecutive bytes in the class layout: vpermd gathers dwords 0,2,4,6 (bytes 0-3, 8-11,
// 16-19, 24-27) into lane 0 and 1,3,5,7 into lane 1, then a 4x4 byte transpose per lane makes
// dword c of lane 0 bytes c, c+8, c+16, c+24 (and of lane 1 bytes 4+c, ...).
inline __m256i class_layout(__m256i x) {
  const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i t = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  return _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(x, idx), t);
}

// One row's block: e[j] holds elements 32j..32j+31 (unsigned 0..63) in the class layout, s[j]
// the int16 scales of sub-blocks 2j (low word) and 2j+1 (high word).
struct Weights {
  __m256i e[8];
  alignas(32) int32_t s[8];
};

// (x & 0x0f) | (h & 0x30)
inline __m256i six_bits(__m256i x, __m256i h) {
  return _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi8(0x0f)), _mm256_and_si256(h, _mm256_set1_epi8(0x30)));
}

inline void unpack(const uint8_t* b, Weights& w) {
  for (int half = 0; half < 2; ++half) {
    // ql[64h + l] holds elements 128h + l (low nibble) and +64 (high); ql[64h + 32 + l] elements
    // +32 and +96; qh[32h + l] their top two bits at bits 0-1, 2-3, 4-5, 6-7.
    const __m256i lo = class_layout(load(b + 64 * half));
    const __m256i hi = class_layout(load(b + 64 * half + 32));
    const __m256i h = class_layout(load(b + kQhOff + 32 * half));
    __m256i* e = w.e + 4 * half;
    e[0] = six_bits(lo, _mm256_slli_epi16(h, 4));
    e[1] = six_bits(hi, _mm256_slli_epi16(h, 2));
    e[2] = six_bits(_mm256_srli_epi16(lo, 4), h);
    e[3] = six_bits(_mm256_srli_epi16(hi, 4), _mm256_srli_epi16(h, 2));
  }
  // Dword m of the sign-extended scales is (sc[2m], sc[2m+1]).
  _mm256_store_si256(reinterpret_cast<__m256i*>(w.s),
                     _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kScOff))));
}

// One token's block in the class layout, and the words 32 * (q_a + q_b) that turn the unsigned
// weights' products into the signed ones.
struct Activations {
  __m256i q[8];
  __m256i corr[8];
};

inline void prepare(const int8_t* qs, Activations& a) {
  for (int j = 0; j < 8; ++j) {
    a.q[j] = class_layout(load(qs + 32 * j));
    a.corr[j] = _mm256_maddubs_epi16(_mm256_set1_epi8(32), a.q[j]);
  }
}

// The block's eight class sums, in class order. Each word is v_a*q_a + v_b*q_b (|.| <= 8192),
// times its sub-block scale into int32.
inline __m256i class_sums(const Weights& w, const Activations& a) {
  __m256i acc = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const __m256i words = _mm256_sub_epi16(_mm256_maddubs_epi16(w.e[j], a.q[j]), a.corr[j]);
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(words, _mm256_set1_epi32(w.s[j])));
  }
  return acc;
}

// The decode's streams are left to the hardware prefetcher: with this kernel software prefetch
// measured no faster on two threads and slower on one.
inline void prefetch_ahead(const uint8_t*, int64_t) {}

}  // namespace

#include "backends/q6k_driver.hpp"

}  // namespace bitnet::backends::avx2
