// Scalar dequantization of every weight type the engine runs, bit-exact with ggml's and
// bitnet.cpp's dequantize_row_* (same float operations in the same order).
#include <cstring>

#include "core/base/error.hpp"
#include "core/kernels/blocks.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {
namespace {

using namespace detail;

// Integer value times the f16 block scale (exact for Q4_0, Q8_0 and the ternary types).
template <size_t kD, size_t kN, void (*Unpack)(const uint8_t*, int8_t*)>
void dequant_scaled(const uint8_t* b, float* y) {
  int8_t v[kN];
  Unpack(b, v);
  const float d = f16_to_f32(load_u16(b + kD));
  for (size_t j = 0; j < kN; ++j) y[j] = static_cast<float>(v[j]) * d;
}

void unpack_q8_0(const uint8_t* b, int8_t* v) { std::memcpy(v, b + Q8_0Layout::qs, 32); }

void dequant_q6_k(const uint8_t* b, float* y) {
  int8_t v[kQK_K];
  unpack_q6_k(b, v);
  const float d = f16_to_f32(load_u16(b + Q6_KLayout::d));
  const auto* sc = reinterpret_cast<const int8_t*>(b + Q6_KLayout::scales);
  // (d * scale) * q in that order: the product can need 25 bits, and this is how ggml rounds it.
  for (int j = 0; j < kQK_K; ++j) y[j] = d * static_cast<float>(sc[j / 16]) * static_cast<float>(v[j]);
}

template <typename Fn>
void for_blocks(const std::byte* data, int64_t first, int64_t n, float* out, int64_t block, size_t bytes,
                Fn fn) {
  BITNET_CHECK(first % block == 0 && n % block == 0);
  const auto* p = reinterpret_cast<const uint8_t*>(data) + static_cast<size_t>(first / block) * bytes;
  for (int64_t i = 0; i < n / block; ++i) fn(p + static_cast<size_t>(i) * bytes, out + i * block);
}

}  // namespace

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
    case G::Q4_0:
      return for_blocks(data, first, n, out, 32, Q4_0Layout::bytes, dequant_scaled<Q4_0Layout::d, 32, unpack_q4_0>);
    case G::Q8_0:
      return for_blocks(data, first, n, out, 32, Q8_0Layout::bytes, dequant_scaled<Q8_0Layout::d, 32, unpack_q8_0>);
    case G::Q6_K: return for_blocks(data, first, n, out, kQK_K, Q6_KLayout::bytes, dequant_q6_k);
    case G::TQ1_0:
      return for_blocks(data, first, n, out, kQK_K, TQ1_0Layout::bytes,
                        dequant_scaled<TQ1_0Layout::d, 256, unpack_tq1_0>);
    case G::TQ2_0:
      return for_blocks(data, first, n, out, kQK_K, TQ2_0Layout::bytes,
                        dequant_scaled<TQ2_0Layout::d, 256, unpack_tq2_0>);
    case G::I2_S:
      for (int64_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(kI2sValue[i2s_code(u8, first + i)]) * i2s_scale;
      return;
    default:
      throw make_error(ErrorCode::invalid_input, "cannot dequantize tensor type {}", gguf::type_name(type));
  }
}

float i2s_tensor_scale(const std::byte* data, int64_t n_elements) {
  BITNET_CHECK(n_elements >= 0 && n_elements % 4 == 0);
  float s;
  std::memcpy(&s, data + n_elements / 4, sizeof s);
  return s;
}

}  // namespace bitnet::kernels
