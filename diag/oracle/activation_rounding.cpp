// The oracle's activation rounding (activation_rounding.hpp): the Q8_K and I2_S int8 schemes
// restated from their definitions, in double, then dequantized straight back (q * d).
#include "diag/oracle/activation_rounding.hpp"

#include <algorithm>
#include <cmath>

#include "core/base/error.hpp"

namespace bitnet::diag {
namespace {

// Nearest integer, ties to even: std::nearbyint under the default rounding mode. The engine's
// nearest_int (core/kernels/blocks.hpp, as ggml's) adds 1.5 * 2^23 and lets the FPU round, which
// is also round-to-nearest-even, so a value exactly halfway rounds the same way in both.
double nearest(double v) { return std::nearbyint(v); }

// One block of Q8_K: the signed value of largest magnitude (the first on ties) maps to exactly
// -127, so the scale is negative and q and d flip sign together; an all-zero block stays zero.
// q is capped at 127 (not clamped below: nothing can fall under -127).
void round_q8_k_block(std::span<double> b) {
  double amax = 0, max = 0;
  for (double v : b)
    if (std::fabs(v) > amax) {
      amax = std::fabs(v);
      max = v;
    }
  if (amax == 0) return;
  const double iscale = -127.0 / max, d = 1.0 / iscale;
  for (double& v : b) v = std::min(127.0, nearest(iscale * v)) * d;
}

// The whole row to int8 with one scale s = 127 / max|x|; max|x| is floored at 1e-5 as bitnet.cpp
// does, which keeps the scale finite for a row of zeros (and leaves such a row zero).
void round_i8_row(std::span<double> row) {
  double amax = 1e-5;
  for (double v : row) amax = std::max(amax, std::fabs(v));
  const double s = 127.0 / amax;
  for (double& v : row) v = std::clamp(nearest(v * s), -128.0, 127.0) / s;
}

}  // namespace

void round_activation_row(OracleActivations scheme, std::span<double> row) {
  const auto n = static_cast<int64_t>(row.size());
  switch (scheme) {
    case OracleActivations::exact: return;
    case OracleActivations::q8_k:
      if (n % kOracleQ8KBlock != 0)
        throw make_error(ErrorCode::invalid_input,
                         "float oracle: a row of {} values cannot take activation scheme {} (blocks of {})", n,
                         oracle_activations_name(scheme), kOracleQ8KBlock);
      for (int64_t b = 0; b < n; b += kOracleQ8KBlock)
        round_q8_k_block(row.subspan(static_cast<size_t>(b), static_cast<size_t>(kOracleQ8KBlock)));
      return;
    case OracleActivations::i8: return round_i8_row(row);
  }
}

}  // namespace bitnet::diag
