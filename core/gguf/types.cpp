// The type table. Geometry per ggml's block definitions (SPEC.md 1.2) and bitnet.cpp's I2_S rule.
#include "types.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/base/checked.hpp"
#include "core/base/error.hpp"

namespace bitnet::gguf {
namespace {

using G = GgmlType;
constexpr std::array kTypes = {
    TypeTraits{G::F32, "F32", 1, 4, false},
    TypeTraits{G::F16, "F16", 1, 2, false},
    TypeTraits{G::Q4_0, "Q4_0", 32, 18, false},
    TypeTraits{G::Q4_1, "Q4_1", 32, 20, false},
    TypeTraits{G::Q5_0, "Q5_0", 32, 22, false},
    TypeTraits{G::Q5_1, "Q5_1", 32, 24, false},
    TypeTraits{G::Q8_0, "Q8_0", 32, 34, false},
    TypeTraits{G::Q8_1, "Q8_1", 32, 36, false},
    TypeTraits{G::Q2_K, "Q2_K", 256, 84, false},
    TypeTraits{G::Q3_K, "Q3_K", 256, 110, false},
    TypeTraits{G::Q4_K, "Q4_K", 256, 144, false},
    TypeTraits{G::Q5_K, "Q5_K", 256, 176, false},
    TypeTraits{G::Q6_K, "Q6_K", 256, 210, false},
    TypeTraits{G::Q8_K, "Q8_K", 256, 292, false},
    TypeTraits{G::IQ2_XXS, "IQ2_XXS", 256, 66, false},
    TypeTraits{G::IQ2_XS, "IQ2_XS", 256, 74, false},
    TypeTraits{G::IQ3_XXS, "IQ3_XXS", 256, 98, false},
    TypeTraits{G::IQ1_S, "IQ1_S", 256, 50, false},
    TypeTraits{G::IQ4_NL, "IQ4_NL", 32, 18, false},
    TypeTraits{G::IQ3_S, "IQ3_S", 256, 110, false},
    TypeTraits{G::IQ2_S, "IQ2_S", 256, 82, false},
    TypeTraits{G::IQ4_XS, "IQ4_XS", 256, 136, false},
    TypeTraits{G::I8, "I8", 1, 1, false},
    TypeTraits{G::I16, "I16", 1, 2, false},
    TypeTraits{G::I32, "I32", 1, 4, false},
    TypeTraits{G::I64, "I64", 1, 8, false},
    TypeTraits{G::F64, "F64", 1, 8, false},
    TypeTraits{G::IQ1_M, "IQ1_M", 256, 56, false},
    TypeTraits{G::BF16, "BF16", 1, 2, false},
    TypeTraits{G::TQ1_0, "TQ1_0", 256, 54, false},
    TypeTraits{G::TQ2_0, "TQ2_0", 256, 66, false},
    TypeTraits{G::I2_S, "I2_S", 128, 32, true},
};

// Bytes after the packed I2_S codes: one f32 scale padded to 32 bytes (SPEC.md 1.3).
constexpr uint64_t kI2sTail = 32;

}  // namespace

const TypeTraits* find_type(uint32_t id) {
  for (const auto& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& traits(GgmlType type) {
  const TypeTraits* t = find_type(static_cast<uint32_t>(type));
  BITNET_CHECK(t != nullptr);
  return *t;
}

std::string_view type_name(GgmlType type) { return traits(type).name; }

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    if (std::equal(name.begin(), name.end(), t.name.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        }))
      return t.type;
  }
  return std::nullopt;
}

std::string unknown_type_hint(uint32_t id) {
  switch (id) {
    case 4: case 5:
      return fmt::format("type {} is Q4_2/Q4_3, removed from ggml in 2023; re-quantize the model", id);
    case 31: case 32: case 33:
      return fmt::format("type {} is one of ggml's repacked Q4_0_x_y types, no longer valid in files; "
                         "re-quantize to Q4_0", id);
    case 37:
      return "type 37 is I8_S, bitnet.cpp's internal activation type, never valid in a file "
             "(upstream once used 37 for the removed IQ4_NL_4_8)";
    case 38:
      return "type 38 is TL1 from bitnet.cpp's fork (an ARM lookup-table layout tied to the kernel "
             "config it was generated with); re-quantize to I2_S or TQ2_0";
    case 39:
      return "type 39 is TL2 in bitnet.cpp's fork (x86 lookup-table layout) but MXFP4 in upstream "
             "ggml; neither is supported here; use an I2_S, TQ1_0 or TQ2_0 file";
    case 40: case 41: case 42:
      return fmt::format("type {} is not an upstream ggml file type known to this build; bitnet.cpp "
                         "fork builds use ids up to 42 for their TL lookup-table formats; use an "
                         "I2_S, TQ1_0 or TQ2_0 file", id);
    default:
      break;
  }
  if (id >= 133 && id <= 158)
    return fmt::format("type {} is an ik_llama.cpp-only type (ids 133-158, e.g. IQ1_BN/IQ2_BN); "
                       "re-quantize with mainline llama.cpp to TQ1_0/TQ2_0", id);
  return fmt::format("type {} is not a ggml type this build knows", id);
}

std::string shape_problem(const TypeTraits& t, std::span<const int64_t> ne) {
  if (t.whole_tensor) {
    int64_t n = 1;
    for (int64_t d : ne) {
      auto m = checked_mul(n, d);
      if (!m) return "element count overflows 64 bits";
      n = *m;
    }
    if (n % t.block_size != 0)
      return fmt::format("{} packs whole tensors in groups of {} elements; {} elements is not a multiple",
                         t.name, t.block_size, n);
    return {};
  }
  if (!ne.empty() && ne[0] % t.block_size != 0)
    return fmt::format("row length {} is not a multiple of the {} block size {}", ne[0], t.name,
                       t.block_size);
  return {};
}

std::optional<uint64_t> tensor_nbytes(const TypeTraits& t, std::span<const int64_t> ne) {
  uint64_t n = 1;
  for (int64_t d : ne) {
    auto m = checked_mul(n, static_cast<uint64_t>(d));
    if (!m) return std::nullopt;
    n = *m;
  }
  if (t.whole_tensor) {
    return checked_add(n / t.block_size * t.block_bytes, kI2sTail);
  }
  return checked_mul(n / static_cast<uint64_t>(t.block_size), t.block_bytes);
}

}  // namespace bitnet::gguf
