// Scalar forward-pass operations (see ops.hpp for the numerics they follow).
#include "ops.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/kernels/sum_double.hpp"

namespace bitnet::infer {

using kernels::sum_double;

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const double sum = sum_double(n, [x](int64_t i) { return x[i] * x[i]; });
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * scale;
    y[i] = w ? v * w[i] : v;
  }
}

// theta_i = pos * base^(-2i/n_rot), the angle advanced by multiplying with base^(-2/n_rot) in
// float, as ggml does, rather than recomputed with pow.
void rope_angles(int64_t n_rot, int32_t pos, float freq_base, float* cs) {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    cs[2 * i] = std::cos(theta);
    cs[2 * i + 1] = std::sin(theta);
    theta *= theta_scale;
  }
}

namespace {

// Rotates pairs (x[a(i)], x[b(i)]) by the angles of rope_angles.
template <typename Pair>
void rope(float* x, int64_t n_rot, const float* cs, Pair pair) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    auto [a, b] = pair(i);
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
  }
}

}  // namespace

void rope_norm(float* x, int64_t n_rot, const float* cs) {
  rope(x, n_rot, cs, [](int64_t i) { return std::pair<int64_t, int64_t>{2 * i, 2 * i + 1}; });
}

void rope_neox(float* x, int64_t n_rot, const float* cs) {
  const int64_t half = n_rot / 2;
  rope(x, n_rot, cs, [half](int64_t i) { return std::pair<int64_t, int64_t>{i, i + half}; });
}

void silu_mul(const kernels::KernelTable& k, float* g, const float* u, int64_t n) {
  constexpr int64_t kChunk = 256;
  float e[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min(kChunk, n - i0);
    for (int64_t i = 0; i < m; ++i) e[i] = -g[i0 + i];
    k.exp_f32(e, m, e);
    for (int64_t i = 0; i < m; ++i) g[i0 + i] = g[i0 + i] / (1.0f + e[i]) * u[i0 + i];
  }
}

void relu2_mul(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float r = g[i] > 0 ? g[i] : 0.0f;
    g[i] = r * r * u[i];
  }
}

}  // namespace bitnet::infer
