// AMX-INT8 kernels for prefill. One tile multiply adds the int8 products of 16 tokens x 64
// activations and 64 weights of 16 rows into 16x16 int32 sums: 16 times the work of a VNNI
// instruction. Weights are unpacked per call into the tiles' layout (tile row k holds elements
// 4k..4k+3 of 16 rows, one row per dword), each unpacked block serving every token of the call;
// activations load straight from their rows with the tile's row stride. Batches of fewer than 16
// tokens (decode) and everything else come from the AVX-512 table.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backends/tables.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::backends::amx {
namespace {

using kernels::BlockQ8K;

constexpr int64_t kTile = 16;        // tokens per activation tile, rows per weight tile
constexpr int64_t kChunk = 64;       // elements per tile multiply (the K of one tile row)
constexpr int64_t kTileBytes = 1024; // 16 x 64 bytes

// Tiles 0-3 hold sums (token group tg and row group rg at 2 * tg + rg), 4-5 activations, 6-7
// weights; all 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// The tile registers are per thread and configured per call; releasing them at the end keeps
// the kernel from saving 8 KB of tile state at every context switch of an idle thread.
class TileScope {
 public:
  TileScope() {
    static const TileConfig cfg = [] {
      TileConfig c;
      for (int i = 0; i < 8; ++i) {
        c.colsb[i] = 64;
        c.rows[i] = 16;
      }
      return c;
    }();
    _tile_loadconfig(&cfg);
  }
  ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

// Byte offsets of 16 consecutive rows, one per int32 lane.
inline __m512i row_offsets(int64_t row_bytes) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
}

// One 128-element group of 16 rows into tile layout: `g` is row 0's 32 packed bytes of the
// group (row j's at g + offsets[j]), whose 2-bit field m of byte b holds element 32m + b, field m
// at bit 2m (TQ2_0) or 6 - 2m (I2_S). Gathering dword d of the 16 rows puts elements
// 32m + 4d .. 32m + 4d + 3 of row j in lane j for every field: tile row 8(m % 2) + d of chunk
// m / 2. kSigned stores the weight (code - 1) instead of the code.
template <bool kI2S, bool kSigned>
inline void unpack_group(const uint8_t* g, __m512i offsets, int8_t* out /* 2 chunks of 16 x 64 */) {
  const __m512i mask = _mm512_set1_epi8(3);
  for (int d = 0; d < 8; ++d) {
    const __m512i v = _mm512_i32gather_epi32(_mm512_add_epi32(offsets, _mm512_set1_epi32(4 * d)), g, 1);
    for (int m = 0; m < 4; ++m) {
      // A 32-bit shift of at most 6 keeps each field's two bits inside their own byte.
      __m512i c = _mm512_and_si512(_mm512_srli_epi32(v, kI2S ? 6 - 2 * m : 2 * m), mask);
      if constexpr (kSigned) c = _mm512_sub_epi8(c, _mm512_set1_epi8(1));
      _mm512_store_si512(out + ((m / 2) * kTile + (m % 2) * 8 + d) * 64, c);
    }
  }
}

// --- TQ2_0 x Q8_K: exact int32 block sums, then the dot entry's float order per block ---

// The sums of one 256-element block for NT token groups x NR row groups: weights at b (row group
// rg's 4 chunks at rg * 4096), token group 0's activations at a0 with `stride` bytes between
// tokens. Stores tile 2 * tg + rg at c + (2 * tg + rg) * 256.
template <int NT, int NR>
void tq2_0_block(const int8_t* b, const int8_t* a0, int64_t stride, int32_t* c) {
  _tile_zero(0);
  if constexpr (NR == 2) _tile_zero(1);
  if constexpr (NT == 2) _tile_zero(2);
  if constexpr (NT == 2 && NR == 2) _tile_zero(3);
  for (int k = 0; k < 4; ++k) {
    _tile_loadd(4, a0 + kChunk * k, stride);
    _tile_loadd(6, b + kTileBytes * k, 64);
    _tile_dpbssd(0, 4, 6);
    if constexpr (NR == 2) {
      _tile_loadd(7, b + 4 * kTileBytes + kTileBytes * k, 64);
      _tile_dpbssd(1, 4, 7);
    }
    if constexpr (NT == 2) {
      _tile_loadd(5, a0 + kTile * stride + kChunk * k, stride);
      _tile_dpbssd(2, 5, 6);
      if constexpr (NR == 2) _tile_dpbssd(3, 5, 7);
    }
  }
  _tile_stored(0, c, 64);
  if constexpr (NR == 2) _tile_stored(1, c + 256, 64);
  if constexpr (NT == 2) _tile_stored(2, c + 512, 64);
  if constexpr (NT == 2 && NR == 2) _tile_stored(3, c + 768, 64);
}

void tq2_0_block_n(int nt, int nr, const int8_t* b, const int8_t* a0, int64_t stride, int32_t* c) {
  if (nt == 2 && nr == 2) return tq2_0_block<2, 2>(b, a0, stride, c);
  if (nt == 2) return tq2_0_block<2, 1>(b, a0, stride, c);
  if (nr == 2) return tq2_0_block<1, 2>(b, a0, stride, c);
  tq2_0_block<1, 1>(b, a0, stride, c);
}

}  // namespace

void gemm_tq2_0_q8_k(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                     int64_t y_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kernels::kQK_K, row_bytes = nb * 66;
  const int64_t full_rows = n_rows / kTile * kTile, full_tokens = n_tokens / kTile * kTile;
  const kernels::KernelTable& rest = avx512_table();
  if (full_rows == 0 || full_tokens == 0) return rest.gemm_tq2_0_q8_k(w, n_rows, a, n_tokens, n, y, y_stride);
  {
    const TileScope tiles;
    alignas(64) int8_t b[2 * 4 * kTileBytes];
    alignas(64) int32_t c[4 * 256];
    const __m512i offsets = row_offsets(row_bytes);
    const auto stride = static_cast<int64_t>(nb * sizeof(BlockQ8K));
    for (int64_t r0 = 0; r0 < full_rows; r0 += 2 * kTile) {
      const int nr = full_rows - r0 >= 2 * kTile ? 2 : 1;
      for (int64_t i = 0; i < nb; ++i) {
        __m512 dw[2];
        for (int rg = 0; rg < nr; ++rg) {
          const uint8_t* blk = wb + (r0 + kTile * rg) * row_bytes + i * 66;
          unpack_group<false, true>(blk, offsets, b + rg * 4 * kTileBytes);
          unpack_group<false, true>(blk + 32, offsets, b + rg * 4 * kTileBytes + 2 * kTileBytes);
          // Row j's f16 scale is the high half of the dword at byte 62 (bytes 64-65).
          const __m512i sc = _mm512_srli_epi32(_mm512_i32gather_epi32(_mm512_add_epi32(offsets, _mm512_set1_epi32(62)), blk, 1), 16);
          dw[rg] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sc));
        }
        for (int64_t t0 = 0; t0 < full_tokens; t0 += 2 * kTile) {
          const int nt = full_tokens - t0 >= 2 * kTile ? 2 : 1;
          tq2_0_block_n(nt, nr, b, a[t0 * nb + i].qs, stride, c);
          // sum += float(isum) * (d_w * d_a), the dot entry's order, kept in y between blocks.
          for (int64_t t = 0; t < nt * kTile; ++t) {
            const int64_t tok = t0 + t;
            const __m512 da = _mm512_set1_ps(a[tok * nb + i].d);
            for (int rg = 0; rg < nr; ++rg) {
              float* yv = y + tok * y_stride + r0 + kTile * rg;
              const __m512i isum = _mm512_load_si512(c + (2 * (t / kTile) + rg) * 256 + (t % kTile) * 16);
              const __m512 term = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw[rg], da));
              _mm512_storeu_ps(yv, _mm512_add_ps(i == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(yv), term));
            }
          }
        }
      }
    }
  }
  if (full_rows < n_rows)
    rest.gemm_tq2_0_q8_k(wb + full_rows * row_bytes, n_rows - full_rows, a, n_tokens, n, y + full_rows, y_stride);
  if (full_tokens < n_tokens)
    rest.gemm_tq2_0_q8_k(w, full_rows, a + full_tokens * nb, n_tokens - full_tokens, n, y + full_tokens * y_stride,
                         y_stride);
}

// --- I2_S x int8: whole-row int32 sums, accumulated in y's own tiles ---

namespace {

constexpr int64_t kSpanGroups = 8;  // 128-element groups unpacked at a time (1024 elements)

// NT token groups x NR row groups over `chunks` 64-element chunks: weights at b (row group rg's
// at rg * kSpanGroups * 2 KB), activations of token group 0 at q (n bytes between tokens), sums
// added to y's tiles (zeroed first when `first`).
template <int NT, int NR>
void i2s_span(const int8_t* b, const int8_t* q, int64_t n, int64_t chunks, int32_t* y, int64_t y_stride, bool first) {
  const int64_t ys = y_stride * static_cast<int64_t>(sizeof(int32_t));
  const int64_t b_rg = kSpanGroups * 2 * kTileBytes;
  if (first) {
    _tile_zero(0);
    if constexpr (NR == 2) _tile_zero(1);
    if constexpr (NT == 2) _tile_zero(2);
    if constexpr (NT == 2 && NR == 2) _tile_zero(3);
  } else {
    _tile_loadd(0, y, ys);
    if constexpr (NR == 2) _tile_loadd(1, y + kTile, ys);
    if constexpr (NT == 2) _tile_loadd(2, y + kTile * y_stride, ys);
    if constexpr (NT == 2 && NR == 2) _tile_loadd(3, y + kTile * y_stride + kTile, ys);
  }
  for (int64_t k = 0; k < chunks; ++k) {
    _tile_loadd(4, q + kChunk * k, n);
    _tile_loadd(6, b + kTileBytes * k, 64);
    _tile_dpbsud(0, 4, 6);
    if constexpr (NR == 2) {
      _tile_loadd(7, b + b_rg + kTileBytes * k, 64);
      _tile_dpbsud(1, 4, 7);
    }
    if constexpr (NT == 2) {
      _tile_loadd(5, q + kTile * n + kChunk * k, n);
      _tile_dpbsud(2, 5, 6);
      if constexpr (NR == 2) _tile_dpbsud(3, 5, 7);
    }
  }
  _tile_stored(0, y, ys);
  if constexpr (NR == 2) _tile_stored(1, y + kTile, ys);
  if constexpr (NT == 2) _tile_stored(2, y + kTile * y_stride, ys);
  if constexpr (NT == 2 && NR == 2) _tile_stored(3, y + kTile * y_stride + kTile, ys);
}

void i2s_span_n(int nt, int nr, const int8_t* b, const int8_t* q, int64_t n, int64_t chunks, int32_t* y,
                int64_t y_stride, bool first) {
  if (nt == 2 && nr == 2) return i2s_span<2, 2>(b, q, n, chunks, y, y_stride, first);
  if (nt == 2) return i2s_span<2, 1>(b, q, n, chunks, y, y_stride, first);
  if (nr == 2) return i2s_span<1, 2>(b, q, n, chunks, y, y_stride, first);
  i2s_span<1, 1>(b, q, n, chunks, y, y_stride, first);
}

}  // namespace

void gemm_i2s_i8(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride) {
  const int64_t row_bytes = n / 4, groups = n / kernels::kQK_I2S;
  const int64_t full_rows = n_rows / kTile * kTile, full_tokens = n_tokens / kTile * kTile;
  const kernels::KernelTable& rest = avx512_table();
  if (full_rows == 0 || full_tokens == 0) return rest.gemm_i2s_i8(w, n_rows, q, n_tokens, n, y, y_stride);
  {
    const TileScope tiles;
    alignas(64) int8_t b[2 * kSpanGroups * 2 * kTileBytes];  // 32 KB: two row groups, 1024 elements
    const __m512i offsets = row_offsets(row_bytes);
    for (int64_t r0 = 0; r0 < full_rows; r0 += 2 * kTile) {
      const int nr = full_rows - r0 >= 2 * kTile ? 2 : 1;
      for (int64_t g0 = 0; g0 < groups; g0 += kSpanGroups) {
        const int64_t ng = std::min(kSpanGroups, groups - g0);
        for (int rg = 0; rg < nr; ++rg)
          for (int64_t g = 0; g < ng; ++g)
            unpack_group<true, false>(w + (r0 + kTile * rg) * row_bytes + (g0 + g) * 32, offsets,
                                      b + (rg * kSpanGroups + g) * 2 * kTileBytes);
        for (int64_t t0 = 0; t0 < full_tokens; t0 += 2 * kTile) {
          const int nt = full_tokens - t0 >= 2 * kTile ? 2 : 1;
          i2s_span_n(nt, nr, b, q + t0 * n + g0 * kernels::kQK_I2S, n, 2 * ng, y + t0 * y_stride + r0, y_stride, g0 == 0);
        }
      }
    }
  }
  if (full_rows < n_rows) rest.gemm_i2s_i8(w + full_rows * row_bytes, n_rows - full_rows, q, n_tokens, n, y + full_rows, y_stride);
  if (full_tokens < n_tokens)
    rest.gemm_i2s_i8(w, full_rows, q + full_tokens * n, n_tokens - full_tokens, n, y + full_tokens * y_stride, y_stride);
}

}  // namespace bitnet::backends::amx

namespace bitnet::backends {

const kernels::KernelTable& amx_table() {
  static const kernels::KernelTable table = [] {
    kernels::KernelTable t = avx512_table();
    t.name = "amx";
    t.gemm_tq2_0_q8_k = amx::gemm_tq2_0_q8_k;
    t.gemm_i2s_i8 = amx::gemm_i2s_i8;
    return t;
  }();
  return table;
}

}  // namespace bitnet::backends
