// One row per weight type the engine multiplies (the role of ggml's type_traits_cpu): which
// activation format its products take, which kernel-table entries compute them, how one block
// dequantizes, and whether a table's copy holds it as another type. matmul, the model's type
// check, dequantize, the load-time copy and bench all read these rows, so a new weight type is
// its row here, its entries in kernels.hpp, its block layout in blocks.hpp and its reference dot
// in reference.cpp (docs/architecture.md, "Adding a weight type").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/gguf/types.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {

// The form a matmul's activations take, made once per token before any dot product.
enum class ActFormat {
  i8,    // I2_S's: one int8 row with a scale and a sum (KernelTable::quantize_i8)
  q8_k,  // Q8_K blocks of 256 (quantize_q8_k)
  q8_0,  // Q8_0 blocks of 32 (quantize_q8_0)
  f16,   // rounded to F16 (to_f16)
  bf16,  // rounded to BF16 (to_bf16)
  f32,   // as they are
};

using DotQ8K = float (*)(const void* w, const BlockQ8K* a, int64_t n);
using GemmQ8K = void (*)(const void* w, int64_t n_rows, const BlockQ8K* a, int64_t n_tokens, int64_t n, float* y,
                         int64_t y_stride);
using DotQ8_0 = float (*)(const void* w, const BlockQ8_0* a, int64_t n);
using GemmQ8_0 = void (*)(const void* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens, int64_t n, float* y,
                          int64_t y_stride);

struct WeightFormat {
  gguf::GgmlType type;
  ActFormat act;
  std::string_view dot_name;        // the table entry taking one row and one token
  std::string_view gemm_name = {};  // the many-row, many-token entry, when the contract has one
  // Block types against Q8_K / Q8_0 activations: the table's entries. The other activation
  // formats have one weight type each and their own entries (dot_i2s_i8, dot_f16_f16, ...).
  DotQ8K KernelTable::*dot_q8_k = nullptr;
  GemmQ8K KernelTable::*gemm_q8_k = nullptr;
  DotQ8_0 KernelTable::*dot_q8_0 = nullptr;
  GemmQ8_0 KernelTable::*gemm_q8_0 = nullptr;
  // One block (gguf::traits(type).block_size elements) to floats, with ggml's rounding. nullptr
  // for the element types (F32, F16, BF16) and I2_S, which dequantize() reads element by element.
  void (*dequant_block)(const uint8_t* block, float* out) = nullptr;
  // Held in a table's weight copy as repack_to when the table has that type's GEMM: `repack`
  // rewrites n_blocks blocks exactly (same values and scales, one dot definition).
  gguf::GgmlType repack_to = gguf::GgmlType::F32;
  void (*repack)(const uint8_t* src, int64_t n_blocks, uint8_t* dst) = nullptr;
};

// Every type the engine multiplies, and one type's row (nullptr: the engine cannot multiply it).
std::span<const WeightFormat> weight_formats();
const WeightFormat* find_format(gguf::GgmlType type);
// "F32, F16, BF16, ..." for error messages.
std::string supported_type_names();

// A table's entries for a weight type: the gemm matmul prefers (nullptr when the table has none
// or it cannot take rows `cols` wide) and the dot it falls back to (nullptr: the table cannot run
// the type). As untyped pointers, for presence checks and reports.
struct FormatEntries {
  const void* gemm = nullptr;
  const void* dot = nullptr;
};
FormatEntries format_entries(const KernelTable& k, const WeightFormat& f, int64_t cols);

// Bytes one token's activations take in format `act` for rows `cols` wide (0 for f32).
size_t act_bytes(ActFormat act, int64_t cols);
// The table entry that prepares activations in format `act` ("quantize_q8_k"), "" for f32.
std::string_view quantizer_name(ActFormat act);
// One token's activations through the table's quantizer for `act` into `out` (act_bytes long;
// I2_S's scale and sum are dropped). For benchmarks: matmul keeps the scale and sum.
void quantize_activations(const KernelTable& k, ActFormat act, const float* x, int64_t cols, void* out);

}  // namespace bitnet::kernels
