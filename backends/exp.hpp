// The exp_f32 entries of the AVX2 and AVX-512 tables (exp_avx2.cpp, exp_avx512.cpp, each compiled
// with its table's flags): kernels::exp_f32's steps on 8 or 16 lanes, the same bits, and the
// softmax_f32 entries built on them.
#pragma once

#include <cstdint>

namespace bitnet::backends {

namespace avx2 {
void exp_f32(const float* x, int64_t n, float* y);
void softmax_f32(float* x, int64_t n, float scale, uint16_t* y16);
}  // namespace avx2

namespace avx512 {
void exp_f32(const float* x, int64_t n, float* y);
void softmax_f32(float* x, int64_t n, float scale, uint16_t* y16);
}  // namespace avx512

}  // namespace bitnet::backends
