// --check-tensors (inspect, generate): every weight dequantized and tested for NaN and Inf, which
// a broken quantizer or a bit flip leaves and which otherwise show up only as garbage output.
#pragma once

#include <optional>
#include <string>

#include "core/gguf/reader.hpp"

namespace bitnet::diag {

struct TensorCheckResult {
  size_t checked = 0;                  // tensors read
  size_t skipped = 0;                  // of types this engine cannot dequantize
  std::optional<std::string> problem;  // the first "tensor 'NAME': element I is nan", if any
};

TensorCheckResult check_tensor_values(const gguf::GgufFile& f);

}  // namespace bitnet::diag
