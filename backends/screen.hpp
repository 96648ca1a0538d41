// The output screen's int8 x int16 row products (KernelTable::gemv_i8_i16) for the AVX2 table,
// which the AVX-512 and AMX tables inherit: the pass is memory-bound, and a VNNI version (three
// vpdpbusd per 64 weights) read no faster (docs/benchmarks.md). Integer sums: the reference's.
#pragma once

#include <cstdint>

namespace bitnet::backends {

namespace avx2 {
void gemv_i8_i16(const int8_t* w, int64_t n_rows, const int16_t* a, int64_t n, int32_t* y);
}  // namespace avx2

}  // namespace bitnet::backends
