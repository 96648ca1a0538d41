// Q8_0 and Q4_0 x Q8_0 entries of the AVX2 and AVX-512 tables, their activation quantizer and
// attention's weighted sum over a Q8_0 V cache,
// one translation unit per ISA (q8_0_avx2.cpp, q8_0_avx512.cpp, each compiled with its table's
// flags). Same contract as the KernelTable entries; every result equals the reference's bits.
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace bitnet::backends {

namespace avx2 {
void quantize_q8_0(const float* x, int64_t n, kernels::BlockQ8_0* y);
float dot_q8_0_q8_0(const void* w, const kernels::BlockQ8_0* a, int64_t n);
float dot_q4_0_q8_0(const void* w, const kernels::BlockQ8_0* a, int64_t n);
void gemm_q8_0_q8_0(const void* w, int64_t n_rows, const kernels::BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride);
void weighted_sum_q8_0(const kernels::BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                       int64_t n_heads, int64_t n, float* y, int64_t y_stride);
}  // namespace avx2

namespace avx512 {
void quantize_q8_0(const float* x, int64_t n, kernels::BlockQ8_0* y);
float dot_q8_0_q8_0(const void* w, const kernels::BlockQ8_0* a, int64_t n);
float dot_q4_0_q8_0(const void* w, const kernels::BlockQ8_0* a, int64_t n);
void gemm_q8_0_q8_0(const void* w, int64_t n_rows, const kernels::BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride);
void gemm_q4_0_q8_0(const void* w, int64_t n_rows, const kernels::BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride);
void weighted_sum_q8_0(const kernels::BlockQ8_0* v, int64_t v_stride, int64_t n_keys, const float* p, int64_t p_stride,
                       int64_t n_heads, int64_t n, float* y, int64_t y_stride);
}  // namespace avx512

}  // namespace bitnet::backends
