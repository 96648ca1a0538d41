// AVX2 kernel entries, also reused by the AVX-512 table for the operations it does not
// specialise. Defined in avx2.cpp (compiled with -mavx2 -mfma -mf16c).
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace bitnet::backends::avx2 {

int32_t dot_i2s_i8(const uint8_t* w, int64_t first, const int8_t* q, int64_t n);
void quantize_q8_k(const float* x, int64_t n, kernels::BlockQ8K* y);
float dot_tq2_0_q8_k(const void* w, const kernels::BlockQ8K* a, int64_t n);
float dot_tq1_0_q8_k(const void* w, const kernels::BlockQ8K* a, int64_t n);
float dot_f16_f16(const uint16_t* w, const uint16_t* a, int64_t n);
float dot_bf16_bf16(const uint16_t* w, const uint16_t* a, int64_t n);
float dot_f32_f32(const float* w, const float* a, int64_t n);
void to_f16(const float* x, int64_t n, uint16_t* y);
void gemm_f16(const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a, int64_t a_stride, int64_t n_tokens,
              int64_t n, float* y, int64_t y_stride);
void to_bf16(const float* x, int64_t n, uint16_t* y);
void gemm_tq2_0_q8_k(const void* w, int64_t n_rows, const kernels::BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                     int64_t y_stride);
void gemm_i2s_i8(const uint8_t* w, int64_t n_rows, const int8_t* q, int64_t n_tokens, int64_t n, int32_t* y,
                 int64_t y_stride);

}  // namespace bitnet::backends::avx2
