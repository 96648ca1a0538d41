// One weight tensor as ternary values times scales, read from any weight type and written to
// I2_S, TQ1_0, TQ2_0, F16 or F32 without changing a single value when the target can hold them
// (SPEC.md 1.3, 1.5). What cannot be carried over exactly is reported, never rounded silently;
// requantize_absmean() is the explicit lossy way (BitNet's absmean weight quantizer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/gguf/types.hpp"

namespace bitnet::model {

// Value of element i = t[i] * scale[i / group].
struct TernaryWeights {
  std::vector<int8_t> t;      // [n] in {-1, 0, +1}
  std::vector<float> scale;   // [n / group]
  int64_t group = 0;          // n (one scale for the tensor, I2_S and float sources) or 256 (TQ blocks)
  int64_t size() const { return static_cast<int64_t>(t.size()); }
};

// Reads the tensor's values as ternary. I2_S gives its one scale, TQ1_0/TQ2_0 their block
// scales; float and other dequantizable types must hold only 0 and +-s for one s (the largest
// magnitude). Otherwise returns the reason, e.g. "element 17 is 0.0123, not 0 or +-0.05".
std::variant<TernaryWeights, std::string> read_ternary(gguf::GgmlType type, std::span<const std::byte> data,
                                                       int64_t n);

// The tensor's values as f32 (any dequantizable type; I2_S uses its tail scale).
std::vector<float> dequantize_tensor(gguf::GgmlType type, std::span<const std::byte> data, int64_t n);

// BitNet b1.58's weight quantizer: s = mean|W| (at least 1e-5), rounded to the nearest F16 so
// every ternary format can hold it; t = clamp(round-half-even(W / s), -1, 1). One scale.
TernaryWeights requantize_absmean(std::span<const float> w);

// Empty when `type` can hold w's values exactly, else why not (block scales that differ for a
// one-scale format, a scale F16 cannot represent). Shape rules are checked separately.
std::string representable(const TernaryWeights& w, gguf::GgmlType type);

// Rounds every scale to the nearest F16 (the lossy step --requantize allows for one-scale
// tensors whose scale F16 cannot hold exactly).
void round_scales_to_f16(TernaryWeights& w);

// Bytes of w in `type` (I2_S, TQ1_0, TQ2_0, F16, F32). Requires representable(w, type) == "".
// TQ blocks without a nonzero value get d = 0 when the source has one scale, as ggml's quantizer
// writes them; block scales are kept as they are otherwise.
std::vector<std::byte> encode_ternary(const TernaryWeights& w, gguf::GgmlType type);

// Empty when a tensor of shape ne can be stored as `type`, else the reason (I2_S: element count a
// multiple of 128; TQ1_0/TQ2_0: rows a multiple of 256).
std::string ternary_shape_problem(gguf::GgmlType type, std::span<const int64_t> ne);

// Whether `type` is a target ternary weights can be written to.
bool is_ternary_target(gguf::GgmlType type);

// general.file_type that llama.cpp and bitnet.cpp write for a model whose weights are `type`
// (a ternary target).
uint32_t file_type_of(gguf::GgmlType type);

}  // namespace bitnet::model
