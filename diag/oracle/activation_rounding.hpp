// The float oracle's emulation of the engines' activation rounding (docs/float-oracle.md): one
// activation row replaced by the value its int8 form stands for, in double, written apart from
// core/kernels' quantizers so that a slip in those does not hide by being made twice.
#pragma once

#include <cstdint>
#include <span>

#include "diag/oracle/float_model.hpp"

namespace bitnet::diag {

// Values per Q8_K block: the q8_k scheme needs a row length that is a multiple of it.
inline constexpr int64_t kOracleQ8KBlock = 256;

// Replaces every value of `row` (one token's input to a matrix product) by its rounded value
// q * d under `scheme`; exact leaves it alone. q8_k: each block of 256 to int8 with the block's
// own scale, taken from the signed value of largest magnitude. i8: the whole row to int8 with one
// scale 127 / max|x|. Throws bitnet::Error(invalid_input) naming the width and the scheme when
// q8_k gets a row that is not whole blocks.
void round_activation_row(OracleActivations scheme, std::span<double> row);

}  // namespace bitnet::diag
