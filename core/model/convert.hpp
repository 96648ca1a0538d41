// `bitnet convert`: rewrites a model's ternary weights in another format (I2_S for bitnet.cpp,
// TQ2_0/TQ1_0 for llama.cpp, F16/F32) without changing a value, keeping every other tensor and
// metadata key; optionally renames the architecture between the BitNet variants.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"

namespace bitnet::model {

struct ConvertOptions {
  gguf::GgmlType type = gguf::GgmlType::I2_S;  // I2_S, TQ1_0, TQ2_0, F16 or F32
  std::string arch;                             // "" keeps the source's general.architecture
  bool requantize = false;                      // absmean-requantize weights that are not exactly ternary
  gguf::WriteOptions write;                     // cancellation and progress, tensor by tensor
};

struct ConvertStats {
  int converted = 0;    // ternary weight tensors written in the target type
  int requantized = 0;  // of those, tensors that could not be carried over exactly
  int copied = 0;       // other tensors, byte for byte
};

// The seven BitNet weight matrices of a layer (blk.N.attn_q.weight ... blk.N.ffn_down.weight).
bool is_ternary_weight_name(std::string_view name);

// Reads `in`, writes `out` atomically (nothing is left at `out` on failure). Throws
// Error(usage) for a target type or architecture that is not one of the choices, and
// Error(invalid_input) naming the tensor and its shape when a weight is not ternary (unless
// requantize), cannot be held exactly by the target, or does not fit its block layout, and
// Error(interrupted) when opt.write.cancel is set (out is then left as it was, no temporary file).
// A rename that changes which FFN activation readers assume is logged as a warning.
ConvertStats convert_model(const gguf::GgufFile& in, const std::filesystem::path& out, const ConvertOptions& opt);

}  // namespace bitnet::model
