// Scalar dequantization of every weight type the engine runs, bit-exact with ggml's and
// bitnet.cpp's dequantize_row_* (same float operations in the same order). Block types go through
// their WeightFormat row's block dequantizer.
#include <cstring>

#include "core/base/error.hpp"
#include "core/kernels/blocks.hpp"
#include "core/kernels/formats.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {

using namespace detail;

void dequantize(gguf::GgmlType type, const std::byte* data, int64_t first, int64_t n, float* out, float i2s_scale) {
  BITNET_CHECK(first >= 0 && n >= 0);
  using G = gguf::GgmlType;
  const auto* u8 = reinterpret_cast<const uint8_t*>(data);
  switch (type) {
    case G::F32:
      std::memcpy(out, data + first * 4, static_cast<size_t>(n) * 4);
      return;
    case G::F16:
    case G::BF16: {
      const bool half = type == G::F16;
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = load_u16(u8 + (first + i) * 2);
        out[i] = half ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    }
    case G::I2_S:
      for (int64_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(kI2sValue[i2s_code(u8, first + i)]) * i2s_scale;
      return;
    default: break;
  }
  const WeightFormat* f = find_format(type);
  if (f == nullptr || f->dequant_block == nullptr)
    throw make_error(ErrorCode::invalid_input, "cannot dequantize tensor type {}", gguf::type_name(type));
  const gguf::TypeTraits& t = gguf::traits(type);
  BITNET_CHECK(first % t.block_size == 0 && n % t.block_size == 0);
  const uint8_t* p = u8 + static_cast<size_t>(first / t.block_size) * t.block_bytes;
  for (int64_t i = 0; i < n / t.block_size; ++i) f->dequant_block(p + static_cast<size_t>(i) * t.block_bytes, out + i * t.block_size);
}

float i2s_tensor_scale(const std::byte* data, int64_t n_elements) {
  BITNET_CHECK(n_elements >= 0 && n_elements % 4 == 0);
  float s;
  std::memcpy(&s, data + n_elements / 4, sizeof s);
  return s;
}

}  // namespace bitnet::kernels
