// Reads each tensor in chunks of whole blocks through the kernels' dequantizer.
#include "check_tensors.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "core/base/error.hpp"
#include "core/gguf/types.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::diag {

TensorCheckResult check_tensor_values(const gguf::GgufFile& f) {
  TensorCheckResult res;
  std::vector<float> buf;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const gguf::TypeTraits* traits = gguf::find_type(static_cast<uint32_t>(t.type));
    const int64_t n = t.n_elements();
    if (traits == nullptr || n == 0) {
      ++res.skipped;
      continue;
    }
    const std::span<const std::byte> data = f.tensor_data(t);
    const float i2s_scale = t.type == gguf::GgmlType::I2_S ? kernels::i2s_tensor_scale(data.data(), n) : 1.0f;
    if (!std::isfinite(i2s_scale)) {
      res.problem = fmt::format("tensor '{}': its I2_S scale is {}", t.name, i2s_scale);
      return res;
    }
    // About 1 MiB of floats at a time, a whole number of blocks.
    const int64_t chunk = std::max<int64_t>(traits->block_size, (int64_t{1} << 18) / traits->block_size * traits->block_size);
    buf.resize(static_cast<size_t>(std::min(chunk, n)));
    try {
      for (int64_t first = 0; first < n; first += chunk) {
        const int64_t m = std::min(chunk, n - first);
        kernels::dequantize(t.type, data.data(), first, m, buf.data(), i2s_scale);
        for (int64_t i = 0; i < m; ++i)
          if (!std::isfinite(buf[static_cast<size_t>(i)])) {
            res.problem = fmt::format("tensor '{}': element {} is {}", t.name, first + i, buf[static_cast<size_t>(i)]);
            return res;
          }
      }
    } catch (const Error&) {
      ++res.skipped;  // a type the dequantizer does not know
      continue;
    }
    f.release(data);
    ++res.checked;
  }
  return res;
}

}  // namespace bitnet::diag
