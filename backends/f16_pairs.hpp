// The F16 many-row entries' fallback for rows longer than their f32 token buffer: the table's own
// dot, pair by pair (each result is the dot's bits anyway). Internal linkage, as row_quads.hpp:
// each ISA's translation unit gets its own copy.
#pragma once

#include <cstdint>

namespace bitnet::backends {
namespace {

template <typename Dot>
void f16_pairs(Dot dot, const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a, int64_t a_stride,
               int64_t n_tokens, int64_t n, float* y, int64_t y_stride) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_rows; ++r) y[t * y_stride + r] = dot(w + r * w_stride, a + t * a_stride, n);
}

}  // namespace
}  // namespace bitnet::backends
