// Element-wise and per-row operations of the forward pass, written to follow ggml's CPU
// numerics (which the reference engines use) so that outputs agree closely: sums of squares in
// double (in eight partial sums), 1/sqrtf scale, rope angles advanced by repeated multiplication.
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace bitnet::infer {

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null: no weight multiply). y may alias x.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y);

// Rotary position embedding in place on one head of `head_dim` values, rotating the first
// n_rot. NORM pairs (2i, 2i+1) (llama); NEOX pairs (i, i + n_rot/2) (bitnet archs). The angles
// depend only on the position, so rope_angles computes them once for every head and layer:
// cs[2i], cs[2i + 1] = cos, sin of pair i's angle (n_rot values).
void rope_angles(int64_t n_rot, int32_t pos, float freq_base, float* cs);
void rope_norm(float* x, int64_t n_rot, const float* cs);
void rope_neox(float* x, int64_t n_rot, const float* cs);

// Activations in place: silu(g) * u (exp through the table's exp_f32) and relu(g)^2 * u, result
// in g.
void silu_mul(const kernels::KernelTable& k, float* g, const float* u, int64_t n);
void relu2_mul(float* g, const float* u, int64_t n);

}  // namespace bitnet::infer
