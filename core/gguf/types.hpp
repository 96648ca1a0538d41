// ggml tensor types as they appear in GGUF files: ids, names, block geometry, and what this
// build can compute with. Ids the table does not know get a hint naming the fork they come from.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bitnet::gguf {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35,
  I2_S = 36,  // bitnet.cpp fork id; upstream never wrote 36 into files
};

struct TypeTraits {
  GgmlType type;
  std::string_view name;
  int64_t block_size;    // elements per block (I2_S: 128-element packing groups)
  uint64_t block_bytes;  // bytes per block (I2_S: 32 per 128 elements)
  bool whole_tensor;     // I2_S: size is n/4 + 32 for the whole tensor (one trailing scale)
};

// nullptr when this build does not know the id.
const TypeTraits* find_type(uint32_t id);
const TypeTraits& traits(GgmlType type);
std::string_view type_name(GgmlType type);
// Case-insensitive lookup by name ("tq2_0" -> TQ2_0).
std::optional<GgmlType> type_from_name(std::string_view name);

// A sentence explaining an id this build does not know ("type 38 is TL1 from bitnet.cpp's fork ...").
std::string unknown_type_hint(uint32_t id);

// Empty when ne fits the type's block layout, else the reason (for the error message).
std::string shape_problem(const TypeTraits& t, std::span<const int64_t> ne);
// Bytes the tensor occupies; nullopt on 64-bit overflow. Requires shape_problem(...) == "".
std::optional<uint64_t> tensor_nbytes(const TypeTraits& t, std::span<const int64_t> ne);

}  // namespace bitnet::gguf
