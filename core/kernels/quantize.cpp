// Reference activation quantizers: one token row of f32 in, the integer form the matching weight
// kernel consumes out. Each mirrors its home engine's reference (bitnet.cpp quantize_row_i8_s,
// ggml quantize_row_q8_K_ref / quantize_row_q8_0_ref) operation for operation.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/base/error.hpp"
#include "core/kernels/blocks.hpp"
#include "core/kernels/kernels.hpp"
#include "core/kernels/reference.hpp"

namespace bitnet::kernels::ref {

using detail::nearest_int;

void quantize_i8(const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum) {
  // amax in double with the 1e-5 floor (an all-zero row still gets a finite scale), then the
  // division in double and one rounding to float, as bitnet.cpp does.
  double amax = 1e-5;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
  const auto s = static_cast<float>(127.0 / amax);
  int32_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int v = std::clamp(nearest_int(x[i] * s), -128, 127);
    q[i] = static_cast<int8_t>(v);
    total += v;
  }
  *scale = s;
  *sum = total;
}

void quantize_q8_k(const float* x, int64_t n, BlockQ8K* y) {
  BITNET_CHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, ++y) {
    // The signed value of largest magnitude (first one on ties) maps to exactly -127, so the
    // scale comes out negative; q and d flip sign together.
    float amax = 0.0f;
    float max = 0.0f;
    for (int64_t j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(y, 0, sizeof *y);  // ggml leaves bsums unset here; zero them so they match qs
      continue;
    }
    const float iscale = -127.0f / max;
    for (int64_t j = 0; j < kQK_K; ++j) y->qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int64_t g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int64_t k = 0; k < 16; ++k) sum += y->qs[g * 16 + k];
      y->bsums[g] = static_cast<int16_t>(sum);
    }
    y->d = 1.0f / iscale;
  }
}

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y) {
  BITNET_CHECK(n % kQK8_0 == 0);
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0, ++y) {
    float amax = 0.0f;
    for (int64_t j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    // q uses the f32 d (through its reciprocal), the stored d is its f16 rounding; roundf rounds
    // ties away from zero. Both exactly as ggml's reference quantizer.
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = f32_to_f16(d);
    for (int64_t j = 0; j < kQK8_0; ++j) y->qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void to_f16(const float* x, int64_t n, uint16_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void to_bf16(const float* x, int64_t n, uint16_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

}  // namespace bitnet::kernels::ref
