// Scalar reference dot products and the reference KernelTable. Integer parts are exact; the float
// parts round in the same order as ggml's scalar (*_generic) kernels, so these are the oracle
// every optimised backend is compared with.
#include <cmath>
#include <cstring>

#include "core/base/error.hpp"
#include "core/kernels/blocks.hpp"
#include "core/kernels/reference.hpp"

namespace bitnet::kernels::ref {
namespace {

using namespace detail;

const uint8_t* bytes_of(const void* w) { return static_cast<const uint8_t*>(w); }

int32_t dot_i8(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Ternary weights with one f16 scale per 256 against Q8_K: integer sum per block, then
// (d_w * d_a) * sum accumulated in float, block by block.
template <size_t kD, size_t kBytes, void (*Unpack)(const uint8_t*, int8_t*)>
float dot_ternary_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  BITNET_CHECK(n % kQK_K == 0);
  const uint8_t* b = bytes_of(w);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i, b += kBytes, ++a) {
    int8_t t[kQK_K];
    Unpack(b, t);
    const int32_t isum = dot_i8(t, a->qs, kQK_K);
    sum += static_cast<float>(isum) * (f16_to_f32(load_u16(b + kD)) * a->d);
  }
  return sum;
}

// Q8_0 / Q4_0 against Q8_0: the same per-block shape with 32-element blocks and f16 activation d.
template <size_t kD, size_t kBytes, void (*Unpack)(const uint8_t*, int8_t*)>
float dot_q_q8_0(const void* w, const BlockQ8_0* a, int64_t n) {
  BITNET_CHECK(n % kQK8_0 == 0);
  const uint8_t* b = bytes_of(w);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK8_0; ++i, b += kBytes, ++a) {
    int8_t v[kQK8_0];
    Unpack(b, v);
    const int32_t isum = dot_i8(v, a->qs, kQK8_0);
    sum += static_cast<float>(isum) * (f16_to_f32(load_u16(b + kD)) * f16_to_f32(a->d));
  }
  return sum;
}

}  // namespace

int32_t dot_i2s_i8(const uint8_t* w, int64_t first, const int8_t* q, int64_t n) {
  BITNET_CHECK(first >= 0 && n >= 0);
  // Raw codes (w + 1) times q; the caller removes the offset with the row's sum of q.
  int32_t sum = 0;
  for (int64_t k = 0; k < n; ++k) sum += i2s_code(w, first + k) * q[k];
  return sum;
}

float dot_tq2_0_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  return dot_ternary_q8_k<TQ2_0Layout::d, TQ2_0Layout::bytes, unpack_tq2_0>(w, a, n);
}

float dot_tq1_0_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  return dot_ternary_q8_k<TQ1_0Layout::d, TQ1_0Layout::bytes, unpack_tq1_0>(w, a, n);
}

float dot_q6_k_q8_k(const void* w, const BlockQ8K* a, int64_t n) {
  BITNET_CHECK(n % kQK_K == 0);
  const uint8_t* b = bytes_of(w);
  // ggml's scalar Q6_K dot keeps 8 float lanes (element k goes to lane k % 8) and adds them up
  // only at the end; reproduce that so the float result matches it bit for bit.
  float lanes[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i, b += Q6_KLayout::bytes, ++a) {
    int8_t v[kQK_K];
    unpack_q6_k(b, v);
    const auto* sc = reinterpret_cast<const int8_t*>(b + Q6_KLayout::scales);
    int32_t isum[8] = {};
    for (int k = 0; k < kQK_K; ++k) isum[k % 8] += sc[k / 16] * (v[k] * a->qs[k]);
    const float d = f16_to_f32(load_u16(b + Q6_KLayout::d)) * a->d;
    for (int l = 0; l < 8; ++l) lanes[l] += d * static_cast<float>(isum[l]);
  }
  float sum = 0.0f;
  for (float l : lanes) sum += l;
  return sum;
}

float dot_q8_0_q8_0(const void* w, const BlockQ8_0* a, int64_t n) {
  return dot_q_q8_0<Q8_0Layout::d, Q8_0Layout::bytes, unpack_q8_0>(w, a, n);
}

float dot_q4_0_q8_0(const void* w, const BlockQ8_0* a, int64_t n) {
  return dot_q_q8_0<Q4_0Layout::d, Q4_0Layout::bytes, unpack_q4_0>(w, a, n);
}

// Keys in order, one fma per key and channel: an order every table follows with the channels in
// its lanes (ggml's flash attention accumulates V rows the same way, key by key).
void weighted_sum_q8_0(const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                       int64_t n_heads, int64_t n, float* y, int64_t y_stride) {
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t c = 0; c < n; ++c) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n_keys; ++j) {
        const BlockQ8_0& b = v[j * v_stride + c / kQK8_0];
        acc = std::fma(p[h * p_stride + j], f16_to_f32(b.d) * static_cast<float>(b.qs[c % kQK8_0]), acc);
      }
      y[h * y_stride + c] = acc;
    }
}

// F16 dots sum in float, as ggml's SIMD F16 loop does, in one fixed order that vector units
// can follow exactly: element i goes to lane i % 64 (four 16-float accumulators, or eight of 8),
// each lane in index order from +0, then the 64 lane sums are added by the tree of
// f16_lane_sum. A product of two F16 values is exact in float (two 11-bit significands), so a
// fused multiply-add rounds like the separate add: every table gives these bits. (Summing in
// double instead would cost the vector units two conversions per eight products; the F16
// output projection of the 2B model is a fifth of its decode time.)
float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n) {
  float lane[kF16Lanes] = {};
  for (int64_t i = 0; i < n; ++i) lane[i % kF16Lanes] += f16_to_f32(w[i]) * f16_to_f32(a[i]);
  return f16_lane_sum(lane);
}

float f16_lane_sum(const float* l) {
  // v[j] = (l[j] + l[j+16]) + (l[j+32] + l[j+48]); then halving: j + j+8, j + j+4, j + j+2, 0 + 1.
  float v[16];
  for (int j = 0; j < 16; ++j) v[j] = (l[j] + l[j + 16]) + (l[j + 32] + l[j + 48]);
  for (int half = 8; half >= 1; half /= 2)
    for (int j = 0; j < half; ++j) v[j] = v[j] + v[j + half];
  return v[0];
}

// BF16 and F32 dots use the F16 dot's 64 lanes and tree, for the same reason: summing in double
// in index order (ggml's scalar vec_dot_{bf16,f32}) is an order no vector unit can follow, so
// every optimised table would differ from the reference. Each lane takes one fused multiply-add
// per element. fma rounds once, exactly as the vector FMA instructions do, so the tables agree bit
// for bit; a separate multiply would not: an F32 product rounds, and a BF16 product, exact while
// it stays in range (8-bit significands), can still overflow or underflow, since bf16 has f32's
// exponent range. (ggml's AVX-512 F32 loop is the same shape: 4 x 16 lanes with FMA.)

float dot_bf16_bf16(const uint16_t* w, const uint16_t* a, int64_t n) {
  float lane[kF16Lanes] = {};
  for (int64_t i = 0; i < n; ++i) {
    float& l = lane[i % kF16Lanes];
    l = std::fma(bf16_to_f32(w[i]), bf16_to_f32(a[i]), l);
  }
  return f16_lane_sum(lane);
}

float dot_f32_f32(const float* w, const float* a, int64_t n) {
  float lane[kF16Lanes] = {};
  for (int64_t i = 0; i < n; ++i) {
    float& l = lane[i % kF16Lanes];
    l = std::fma(w[i], a[i], l);
  }
  return f16_lane_sum(lane);
}

void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y) {
  for (int64_t r = 0; r < n_rows; ++r) {
    int32_t s = 0;
    for (int64_t k = 0; k < n; ++k) s += int32_t{w[r * n + k]} * int32_t{a[k]};
    y[r] = s;
  }
}

}  // namespace bitnet::kernels::ref

namespace bitnet::kernels {

const KernelTable& reference_table() {
  // Designated: a new entry is one line here, and an entry left out is nullptr (the gemm entries:
  // the reference is the dot entry, pair by pair).
  static const KernelTable table{
      .name = "reference",
      .quantize_i8 = ref::quantize_i8,
      .quantize_q8_k = ref::quantize_q8_k,
      .quantize_q8_0 = ref::quantize_q8_0,
      .to_f16 = ref::to_f16,
      .to_bf16 = ref::to_bf16,
      .exp_f32 = ref::exp_f32,
      .softmax_f32 = ref::softmax_f32,
      .dot_i2s_i8 = ref::dot_i2s_i8,
      .dot_tq2_0_q8_k = ref::dot_tq2_0_q8_k,
      .dot_tq1_0_q8_k = ref::dot_tq1_0_q8_k,
      .dot_q6_k_q8_k = ref::dot_q6_k_q8_k,
      .dot_q8_0_q8_0 = ref::dot_q8_0_q8_0,
      .dot_q4_0_q8_0 = ref::dot_q4_0_q8_0,
      .dot_f16_f16 = ref::dot_f16_f16,
      .dot_bf16_bf16 = ref::dot_bf16_bf16,
      .dot_f32_f32 = ref::dot_f32_f32,
      .weighted_sum_q8_0 = ref::weighted_sum_q8_0,
      .gemv_i8_i16 = ref::gemv_i8_i16,
  };
  return table;
}

}  // namespace bitnet::kernels
