// The kernel contract: a table of functions, one per operation and quant type. Every backend
// (core's scalar reference, backends/ AVX2, AVX-512...) fills the same table, and every
// optimised entry is tested against the reference entry. Weight rows use ggml's block layouts
// (SPEC.md 1.2-1.5); activations are quantized the way the weight format's home engine does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/base/memory_pool.hpp"

#include "core/gguf/types.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::kernels {

inline constexpr int64_t kQK_K = 256;   // super-block of the K and TQ types
inline constexpr int64_t kQK8_0 = 32;
inline constexpr int64_t kQK_I2S = 128; // I2_S packing group

// Activation partner of TQ1_0/TQ2_0/Q6_K (ggml's Q8_K layout, 292 bytes).
struct BlockQ8K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8K) == 292);

// Activation partner of Q8_0/Q4_0 (ggml's Q8_0 layout, 34 bytes).
struct BlockQ8_0 {
  uint16_t d;  // f16
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct KernelTable {
  std::string_view name;  // "reference", "avx2", "avx512"

  // --- activation quantizers (one token row of n elements) ---
  // I2_S scheme (bitnet.cpp, SPEC 2.5): s = 127/max(|x|, 1e-5), q = round-half-even(x*s) clamped
  // to [-128, 127]; writes q[0..n), *scale = s, *sum = sum of q.
  void (*quantize_i8)(const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum) = nullptr;
  // Q8_K per 256 elements (n multiple of 256), including bsums.
  void (*quantize_q8_k)(const float* x, int64_t n, BlockQ8K* y) = nullptr;
  // Q8_0 per 32 elements (n multiple of 32).
  void (*quantize_q8_0)(const float* x, int64_t n, BlockQ8_0* y) = nullptr;
  // f32 -> f16 (round to nearest even), as ggml converts activations for F16 weights.
  void (*to_f16)(const float* x, int64_t n, uint16_t* y) = nullptr;
  // f32 -> bf16 (round to nearest even), for BF16 weights.
  void (*to_bf16)(const float* x, int64_t n, uint16_t* y) = nullptr;
  // y[i] = exp_f32(x[i]) (below), bit for bit; y may be x. Softmax and SiLU.
  void (*exp_f32)(const float* x, int64_t n, float* y) = nullptr;
  // x <- softmax(scale * x) over n elements, and its F16 rounding into y16 when not null (the
  // attention weights of one head). With s = x * scale and m = max s: e = exp_f32(s - m), the sum
  // of e by sum_double (sum_double.hpp), then x = e * float(1 / sum). NaN scores are skipped by
  // the max and make every result NaN.
  void (*softmax_f32)(float* x, int64_t n, float scale, uint16_t* y16) = nullptr;

  // --- dot products of one weight row (n elements) with one activation row ---
  // I2_S: sum over k of code[k] * q[k] with raw codes {0,1,2} (= w+1). `w` is the tensor's packed
  // data and `first` the flat index of the row's first element (rows may start mid-block when
  // the row length is not a multiple of 128). The caller applies (dot - qsum) / s * wscale.
  int32_t (*dot_i2s_i8)(const uint8_t* w, int64_t first, const int8_t* q, int64_t n) = nullptr;
  float (*dot_tq2_0_q8_k)(const void* w, const BlockQ8K* a, int64_t n) = nullptr;
  float (*dot_tq1_0_q8_k)(const void* w, const BlockQ8K* a, int64_t n) = nullptr;
  float (*dot_q6_k_q8_k)(const void* w, const BlockQ8K* a, int64_t n) = nullptr;
  float (*dot_q8_0_q8_0)(const void* w, const BlockQ8_0* a, int64_t n) = nullptr;
  float (*dot_q4_0_q8_0)(const void* w, const BlockQ8_0* a, int64_t n) = nullptr;
  float (*dot_f16_f16)(const uint16_t* w, const uint16_t* a, int64_t n) = nullptr;
  float (*dot_bf16_bf16)(const uint16_t* w, const uint16_t* a, int64_t n) = nullptr;
  float (*dot_f32_f32)(const float* w, const float* a, int64_t n) = nullptr;

  // --- optional many-row, many-token products: nullptr means matmul calls the dot entry per
  // (row, token). Each result must equal the reference dot bit for bit; the gain is reusing each
  // unpacked weight vector across several tokens (prefill) and each activation load and block sum
  // across several rows (decode). ---
  // n_rows consecutive TQ2_0 rows of n elements (n / 256 blocks each) times n_tokens Q8_K rows
  // (n / 256 blocks each, consecutive): y[t * y_stride + r].
  void (*gemm_tq2_0_q8_k)(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                          int64_t y_stride) = nullptr;
  // The same for n_rows consecutive Q6_K rows: each result equals dot_q6_k_q8_k's bits.
  void (*gemm_q6_k_q8_k)(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                         int64_t y_stride) = nullptr;
  // The same for n_rows consecutive Q8_0 / Q4_0 rows times n_tokens Q8_0 rows (n / 32 blocks
  // each): each result equals dot_q8_0_q8_0's / dot_q4_0_q8_0's bits.
  void (*gemm_q8_0_q8_0)(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                         int64_t y_stride) = nullptr;
  void (*gemm_q4_0_q8_0)(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                         int64_t y_stride) = nullptr;
  // n_rows consecutive I2_S rows starting at a multiple of 128 elements (`w` points at the first
  // row's codes) times n_tokens int8 rows of n elements (n a multiple of 128): raw code dots.
  void (*gemm_i2s_i8)(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                      int64_t y_stride) = nullptr;
  // n_rows F16 rows of n elements (w_stride elements apart) times n_tokens F16 rows (a_stride
  // apart): y[t * y_stride + r], each equal to dot_f16_f16 of its row and token, bit for bit
  // (its lane order). Used by F16 matmuls and by attention, where the query
  // heads sharing a KV head are the tokens.
  void (*gemm_f16)(const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a, int64_t a_stride,
                   int64_t n_tokens, int64_t n, float* y, int64_t y_stride) = nullptr;

  // --- attention over an 8-bit KV cache ---
  // The weighted sum of Q8_0 V rows: y[h * y_stride + c] for h < n_heads, c < n (a multiple of
  // 32) is the sum over keys j < n_keys, in key order from +0, of fma(p[h * p_stride + j], v, .)
  // where v = d * q of row j's block c / 32 (exact in float: an F16 scale times an int8). Row j
  // is n / 32 blocks at v + j * v_stride.
  void (*weighted_sum_q8_0)(const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                            int64_t n_heads, int64_t n, float* y, int64_t y_stride) = nullptr;

  // --- output screening (OutputScreen) ---
  // y[r] = sum over k < n of w[r * n + k] * a[k] for r < n_rows: int8 rows times one int16
  // activation row, in int32. The caller keeps every partial sum inside int32.
  void (*gemv_i8_i16)(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y) = nullptr;
};

// The scalar reference table: plain C++, the oracle for every other backend.
const KernelTable& reference_table();

// --- helpers shared by all backends (scalar, exact) ---
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

// exp(x) in float, within 1.5 ulp of the exact value for normal results; NaN stays NaN, below
// kExpMin 0 and above kExpMax inf (from the clamped input, not a special case). A definition
// rather than libm's expf, so that the vector entries can give the same bits: n = x log2(e)
// rounded to even, r = x - n ln2 (two fmas), a degree-7 polynomial in r, times 2^n.
float exp_f32(float x);
inline constexpr float kExpMin = -104.0f, kExpMax = 89.0f;
inline constexpr float kExpLog2e = 1.44269504088896341f;
inline constexpr float kExpLn2Hi = 0.693359375f, kExpLn2Lo = -2.12194440e-4f;
// p(r) = ((((c0 r + c1) r + c2) r + c3) r + c4) r + c5; exp(r) ~ 1 + r + r^2 p(r).
inline constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// Dequantizes n elements starting at flat element index `first` of a tensor of type `type`
// whose packed data starts at `data`. For block types `first` and `n` are multiples of the
// block size; I2_S takes any index and multiplies by `i2s_scale` (see i2s_tensor_scale).
void dequantize(gguf::GgmlType type, const std::byte* data, int64_t first, int64_t n, float* out,
                float i2s_scale = 1.0f);

// The per-tensor scale of an I2_S tensor of n elements (the f32 right after the codes).
float i2s_tensor_scale(const std::byte* data, int64_t n_elements);

// A weight matrix as stored in GGUF: `rows` output rows of `cols` elements each (ne = [cols, rows]).
struct WeightView {
  gguf::GgmlType type = gguf::GgmlType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  const std::byte* data = nullptr;
  float i2s_scale = 1.0f;  // I2_S only
};

// Scratch for matmul's quantized activations: a block of a memory pool (tag "scratch" unless
// told), grown on demand and reused across calls. A session sizes it once from
// matmul_scratch_bytes so that generation never allocates.
class MatmulScratch {
 public:
  MatmulScratch() : MatmulScratch(default_memory_pool()) {}
  explicit MatmulScratch(MemoryPool& pool, std::string tag = "scratch") : pool_(&pool), tag_(std::move(tag)) {}

  // 64-byte aligned, at least `bytes`; contents are not kept when it grows.
  void* get(size_t bytes);
  size_t capacity() const { return buf_.bytes(); }

 private:
  MemoryPool* pool_;
  std::string tag_;
  PoolBuffer buf_;  // movable, not copyable: so is the scratch
};

// F16 products of many rows and tokens (the layout of KernelTable::gemm_f16): the table's
// gemm_f16, or its dot_f16_f16 pair by pair when it has none. F16 matmuls and attention both go
// through here.
void f16_products(const KernelTable& k, const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a,
                  int64_t a_stride, int64_t n_tokens, int64_t n, float* y, int64_t y_stride);

// Q8_0 products of n_rows consecutive rows of n elements and n_tokens Q8_0 rows (consecutive):
// the table's gemm_q8_0_q8_0, or its dot pair by pair when it has none. Attention over a Q8_0 KV
// cache (keys as rows, query heads as tokens).
void q8_0_products(const KernelTable& k, const BlockQ8_0* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens,
                   int64_t n, float* y, int64_t y_stride);

// The entry matmul uses for these weights ("gemm_tq2_0_q8_k", "dot_q6_k_q8_k", ...), or "" when
// the table has none. For reports (bench --kernels).
std::string_view matmul_entry(const KernelTable& k, const WeightView& w);

// Bytes of scratch matmul asks for with these weights and n_tokens activation rows.
size_t matmul_scratch_bytes(const WeightView& w, int64_t n_tokens);

// Bytes of a matrix's data as matmul reads them (I2_S: the packed codes, without the scale).
uint64_t weight_bytes(const WeightView& w);

// y[t*y_stride + r] = W[r,:] . x[t*x_stride + :] for t < n_tokens, r < w.rows, computed the way
// the weight format's home engine does (activation quantization per SPEC 2.5 / 1.5; F16 and BF16
// weights see activations rounded to F16/BF16; F32 stays F32). With a pool, output rows are
// split across its threads; every result is computed by the same code either way, so the
// output does not depend on the thread count.
void matmul(const KernelTable& k, const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, MatmulScratch& scratch, ThreadPool* pool = nullptr);

// One token, only the listed rows: y[r] for r in rows, each the value
// matmul gives it, bit for bit (the same entries and activation rounding); other rows of y are
// not written.
void matmul_rows(const KernelTable& k, const WeightView& w, const float* x, std::span<const int32_t> rows, float* y,
                 MatmulScratch& scratch, ThreadPool* pool = nullptr);

// The activation values matmul multiplies w's rows with, for one token x (rounded to F16/BF16,
// or quantized to Q8_K/Q8_0 and dequantized), exactly, as doubles: each of w's dots is a sum of
// (weight value) x out[k] terms. False for I2_S, whose dot scales by a per-token integer factor.
bool matmul_activation(const KernelTable& k, const WeightView& w, const float* x, double* out);

// One output of matmul_group: y[t*y_stride + r] = W[r,:] . x[t]
struct MatmulTarget {
  const WeightView* w;
  float* y;
  int64_t y_stride;
};

// Several weights that read the same activations (Q/K/V, gate/up): when they share a type and a
// width the activations are quantized once and all their rows go through the pool in one pass
// (one wait instead of one per weight); otherwise one matmul each. The same values as separate
// matmuls either way.
void matmul_group(const KernelTable& k, std::span<const MatmulTarget> targets, const float* x, int64_t x_stride,
                  int64_t n_tokens, MatmulScratch& scratch, ThreadPool* pool = nullptr);

}  // namespace bitnet::kernels
