// The output screen's int8 x int16 row products (KernelTable::gemv_i8_i16) for the AVX2 and
// AVX-512 tables, one translation unit per ISA. Integer sums: equal to the reference's.
#pragma once

#include <cstdint>

namespace bitnet::backends {

namespace avx2 {
void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y);
}  // namespace avx2

namespace avx512 {
void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y);
}  // namespace avx512

}  // namespace bitnet::backends
