// Q6_K x Q8_K entries of the AVX2 and AVX-512 tables, one translation unit per ISA
// (q6k_avx2.cpp, q6k_avx512.cpp, each compiled with its table's flags). Same contract as the
// KernelTable entries; every result equals ref::dot_q6_k_q8_k bit for bit.
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace bitnet::backends {

namespace avx2 {
float dot_q6_k_q8_k(const void* w, const kernels::BlockQ8K* a, int64_t n);
void gemm_q6_k_q8_k(const void* w, int64_t n_rows, const kernels::BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride);
}  // namespace avx2

namespace avx512 {
float dot_q6_k_q8_k(const void* w, const kernels::BlockQ8K* a, int64_t n);
void gemm_q6_k_q8_k(const void* w, int64_t n_rows, const kernels::BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                    int64_t y_stride);
}  // namespace avx512

}  // namespace bitnet::backends
