// The float oracle: an independent forward pass computing the exact maths (docs/float-oracle.md:
// weights at their stored values, activations never quantized, double throughout), to measure what
// the engine's activation rounding costs and to catch bugs its kernel tables would share.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/base/token_id.hpp"
#include "core/infer/taps.hpp"
#include "core/model/model.hpp"

namespace bitnet::diag {

// What the oracle does to the activations entering each layer matrix (q, k, v, o, gate, up, down;
// never the output matrix): nothing (the exact maths), or one engine scheme's rounding emulated in
// double, to measure what that scheme costs and which scheme an engine really uses.
enum class OracleActivations {
  exact,  // never rounded
  q8_k,   // llama.cpp's TQ1_0/TQ2_0 scheme: blocks of 256, scale from the signed absmax, int8
  i8,     // bitnet.cpp's I2_S scheme: the whole row to int8 with one scale 127 / max|x|
};
std::string_view oracle_activations_name(OracleActivations a);  // "exact", "q8_k", "i8"

struct FloatOracleOptions {
  OracleActivations activations = OracleActivations::exact;
  // Output-matrix rows dequantized at a time for the logits: the 2B model's tied output matrix
  // (128256 rows) is the largest weight by far, and this bounds its share of the memory at
  // rows x n_embd doubles.
  int64_t output_rows_per_slice = 4096;
  // Called at the engine's tap names with the engine's meaning (core/infer/taps.hpp), so that a
  // difference between the two can be placed in a layer and an operation: every layer's taps in
  // kLayerTaps order (the sub-norms only for the bitnet archs), then result_norm and
  // result_output. One row per token, pos0 = 0, the doubles rounded to f32 for the call only
  // (unset: no copy is made).
  infer::TapObserver taps = {};
  // Test-only damage at one tap (taps.hpp), applied to the doubles whether or not `taps` is set,
  // so that a test can check that a difference shows where it was made and spreads from there.
  infer::TapFault fault = {};
};

// Logits of every position for `tokens` fed from position 0: [tokens.size()][n_vocab] row-major.
// Each weight matrix is dequantized right before its product and freed after it (the output
// matrix a slice of rows at a time), so memory stays at about one matrix in double. Throws
// bitnet::Error(invalid_input) for an empty token list, an id outside the vocabulary, more tokens
// than the model's context or a slice size below 1.
std::vector<float> float_oracle_logits(const model::Model& model, std::span<const TokenId> tokens,
                                       const FloatOracleOptions& opt = {});

}  // namespace bitnet::diag
