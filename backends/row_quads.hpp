// Which four rows a four-row kernel takes together, shared by the AVX2 and AVX-512 tables.
// Internal linkage: each ISA's translation unit gets its own copy (an inline function shared
// across units compiled with different -m flags could be linked to the wider one).
#pragma once

#include <array>
#include <cstdint>

namespace bitnet::backends {
namespace {

// For fewer than 4 tokens (decode), rows i, q+i, 2q+i and 3q+i of the range's four quarters of q
// rows, so that each of the four streams is read front to back in pages of its own, which the
// hardware prefetcher follows (four adjacent rows share a 4 KiB page, and it did not: 2 threads
// on the 2B model's gate/up shape read 37.5 against 32 GB/s, a plain read loop 39-40). For more
// tokens (a prefill tile, which stays in cache) four adjacent rows. Calls fn(rows) for every
// quad; returns the first row left over (n_rows % 4 of them).
template <typename F>
int64_t for_row_quads(int64_t n_rows, int64_t n_tokens, F&& fn) {
  const int64_t quads = n_rows / 4;
  for (int64_t i = 0; i < quads; ++i) {
    if (n_tokens < 4) fn(std::array<int64_t, 4>{i, quads + i, 2 * quads + i, 3 * quads + i});
    else fn(std::array<int64_t, 4>{4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3});
  }
  return 4 * quads;
}

}  // namespace
}  // namespace bitnet::backends
