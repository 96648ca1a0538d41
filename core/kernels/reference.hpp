// The scalar reference kernels one by one (reference_table() collects them). Internal to
// core/kernels and its tests; the engine goes through the KernelTable.
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace bitnet::kernels::ref {

void quantize_i8(const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum);
void quantize_q8_k(const float* x, int64_t n, BlockQ8K* y);
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y);
void to_f16(const float* x, int64_t n, uint16_t* y);
void to_bf16(const float* x, int64_t n, uint16_t* y);
void exp_f32(const float* x, int64_t n, float* y);
void softmax_f32(float* x, int64_t n, float scale, uint16_t* y16);

int32_t dot_i2s_i8(const uint8_t* w, int64_t first, const int8_t* q, int64_t n);
float dot_tq2_0_q8_k(const void* w, const BlockQ8K* a, int64_t n);
float dot_tq1_0_q8_k(const void* w, const BlockQ8K* a, int64_t n);
float dot_q6_k_q8_k(const void* w, const BlockQ8K* a, int64_t n);
float dot_q8_0_q8_0(const void* w, const BlockQ8_0* a, int64_t n);
void weighted_sum_q8_0(const BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                       int64_t n_heads, int64_t n, float* y, int64_t y_stride);
float dot_q4_0_q8_0(const void* w, const BlockQ8_0* a, int64_t n);
float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n);
// The F16 dot's lane order (see dot_f16_f16), also the BF16 and F32 dots': element i of a row is
// summed in lane i % kF16Lanes, and f16_lane_sum adds the kF16Lanes lane sums in its fixed tree.
inline constexpr int kF16Lanes = 64;
float f16_lane_sum(const float* lanes);
float dot_bf16_bf16(const uint16_t* w, const uint16_t* a, int64_t n);
float dot_f32_f32(const float* w, const float* a, int64_t n);
void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y);

}  // namespace bitnet::kernels::ref
