// exp(x) in float as every kernel table computes it (see kernels.hpp, exp_f32). The steps are the
// classic Cody-Waite reduction and the Cephes polynomial for expf; each one is a single IEEE
// operation (fma where written), so an 8- or 16-lane version gives the same bits. The softmax
// built on it is here too: its max, exps and double sums in an order vector units can follow.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "core/kernels/kernels.hpp"
#include "core/kernels/reference.hpp"
#include "core/kernels/sum_double.hpp"

namespace bitnet::kernels {

float exp_f32(float x) {
  if (std::isnan(x)) return x;
  // Past these the result is 0 or inf anyway; clamping keeps 2^n in range of the two scalings.
  x = std::min(std::max(x, kExpMin), kExpMax);
  const float n = std::nearbyint(x * kExpLog2e);
  float r = std::fma(n, -kExpLn2Hi, x);  // x - n ln2, ln2 split so that n * hi is exact
  r = std::fma(n, -kExpLn2Lo, r);
  float p = kExpPoly[0];
  for (int i = 1; i < 6; ++i) p = std::fma(p, r, kExpPoly[i]);
  p = std::fma(p, r * r, r) + 1.0f;
  // 2^n as two powers of two of at most 75 in magnitude, so that neither overflows nor leaves
  // the normal range, and the one rounding of a tiny result happens in the last multiply.
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const auto pow2 = [](int32_t k) { return std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23); };
  return p * pow2(n1) * pow2(n2);
}

namespace ref {
void exp_f32(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = kernels::exp_f32(x[i]);
}

void softmax_f32(float* x, int64_t n, float scale, uint16_t* y16) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    m = std::max(m, x[i]);
  }
  for (int64_t i = 0; i < n; ++i) x[i] = kernels::exp_f32(x[i] - m);
  const auto inv = static_cast<float>(1.0 / sum_double(n, [x](int64_t i) { return x[i]; }));
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= inv;
    if (y16 != nullptr) y16[i] = f32_to_f16(x[i]);
  }
}
}  // namespace ref

}  // namespace bitnet::kernels
