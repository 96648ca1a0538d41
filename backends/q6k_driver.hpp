// The Q6_K x Q8_K driver loops shared by the AVX2 and AVX-512 tables: which rows and tokens meet,
// in which order. Each ISA's translation unit includes this inside its own namespace, after
// defining its primitives (Activations, Weights, prepare, unpack, class_sums giving the eight
// int32 class sums of a block, f16, kBlockBytes, kDOff and prefetch_ahead), so every copy is compiled with its
// table's flags. No include guard on purpose.

namespace {

// lanes[l] += d * float(sum[l]): the reference's per-block float step (no fused multiply-add).
inline __m256 add_block(__m256 lanes, float d, __m256i sums) {
  return _mm256_add_ps(lanes, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sums)));
}

// The reference's final sum: lanes 0..7 added in order from 0.
inline float lane_sum(__m256 lanes) {
  alignas(32) float l[8];
  _mm256_store_ps(l, lanes);
  float s = 0.0f;
  for (float v : l) s += v;
  return s;
}

// Four rows (anywhere) x one token: each block's activations are laid out once for the four.
void rows4_token(const uint8_t* const* w, const kernels::BlockQ8K* a, int64_t nb, int64_t row_bytes,
                 float* out /* [4] */) {
  __m256 lanes[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t i = 0; i < nb; ++i, ++a) {
    Activations act;
    prepare(a->qs, act);
    for (int r = 0; r < 4; ++r) {
      const uint8_t* b = w[r] + i * kBlockBytes;
      prefetch_ahead(b, row_bytes);
      Weights wt;
      unpack(b, wt);
      lanes[r] = add_block(lanes[r], f16(b + kDOff) * a->d, class_sums(wt, act));
    }
  }
  for (int r = 0; r < 4; ++r) out[r] = lane_sum(lanes[r]);
}

// Four rows x up to kChunk tokens (prefill): each row's block is unpacked once for all of them.
constexpr int kChunk = 32;

void rows4_tokens(const uint8_t* const* w, const kernels::BlockQ8K* a, int64_t a_stride, int nt, int64_t nb,
                  float* const* y, int64_t y_stride) {
  __m256 lanes[kChunk][4];
  for (int t = 0; t < nt; ++t)
    for (auto& l : lanes[t]) l = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    Weights wt[4];
    float dw[4];
    for (int r = 0; r < 4; ++r) {
      unpack(w[r] + i * kBlockBytes, wt[r]);
      dw[r] = f16(w[r] + i * kBlockBytes + kDOff);
    }
    for (int t = 0; t < nt; ++t) {
      const kernels::BlockQ8K& at = a[t * a_stride + i];
      Activations act;
      prepare(at.qs, act);
      for (int r = 0; r < 4; ++r) lanes[t][r] = add_block(lanes[t][r], dw[r] * at.d, class_sums(wt[r], act));
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int r = 0; r < 4; ++r) y[r][t * y_stride] = lane_sum(lanes[t][r]);
}

}  // namespace

float dot_q6_k_q8_k(const void* w, const kernels::BlockQ8K* a, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(w);
  __m256 lanes = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kernels::kQK_K; ++i, b += kBlockBytes, ++a) {
    Activations act;
    prepare(a->qs, act);
    Weights wt;
    unpack(b, wt);
    lanes = add_block(lanes, f16(b + kDOff) * a->d, class_sums(wt, act));
  }
  return lane_sum(lanes);
}

void gemm_q6_k_q8_k(const void* w, int64_t n_rows, const kernels::BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride) {
  const int64_t nb = n / kernels::kQK_K;
  const int64_t row_bytes = nb * kBlockBytes;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto row = [&](int64_t r) { return wb + r * row_bytes; };
  const int64_t left = for_row_quads(n_rows, n_tokens, [&](const std::array<int64_t, 4>& rows) {
    const uint8_t* wr[4] = {row(rows[0]), row(rows[1]), row(rows[2]), row(rows[3])};
    if (n_tokens < 4) {
      // Decode: the four quarters of the range (for_row_quads), each its own stream.
      for (int64_t t = 0; t < n_tokens; ++t) {
        alignas(16) float out[4];
        rows4_token(wr, a + t * nb, nb, row_bytes, out);
        for (int r = 0; r < 4; ++r) y[t * y_stride + rows[r]] = out[r];
      }
      return;
    }
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kChunk) {
      const int nt = static_cast<int>(std::min<int64_t>(kChunk, n_tokens - t0));
      float* yr[4];
      for (int r = 0; r < 4; ++r) yr[r] = y + t0 * y_stride + rows[r];
      rows4_tokens(wr, a + t0 * nb, nb, nt, nb, yr, y_stride);
    }
  });
  for (int64_t r = left; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot_q6_k_q8_k(row(r), a + t * nb, n);
}
