// The float oracle's forward pass (float_model.hpp): one function per block (docs/float-oracle.md),
// in double on Eigen matrices. It shares nothing with core/infer and the kernel tables but the
// loader and the scalar dequantizer (format facts), so a slip in the engine's maths cannot hide
// by being made twice.
#include "diag/oracle/float_model.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/error.hpp"
#include "core/kernels/kernels.hpp"
#include "diag/oracle/activation_rounding.hpp"

namespace bitnet::diag {
namespace {

// Activations [tokens][width] and weights [rows][cols] (row r is output r, as GGUF stores it),
// both row-major. Double everywhere: every stored weight (F32, F16, ternary x scale, Q6_K, ...)
// is exact in double, and the oracle's own rounding stays far below the engine's.
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Index = Eigen::Index;
using FloatRows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows [r0, r0 + n) of a weight matrix at their stored values. The scalar dequantizer gives the
// exact value of every element as f32 (I2_S: code x tensor scale; block types: ggml's
// dequantize_row); widening to double keeps it exact.
Matrix dequantize_rows(const kernels::WeightView& w, int64_t r0, int64_t n) {
  Matrix m(n, w.cols);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < n; ++r) {
    kernels::dequantize(w.type, w.data, (r0 + r) * w.cols, w.cols, row.data(), w.i2s_scale);
    m.row(r) = Eigen::Map<const Eigen::RowVectorXf>(row.data(), w.cols).cast<double>();
  }
  return m;
}

// x with every token's row rounded as `act` says (a copy; x itself is still needed by the
// caller, e.g. h feeds q, k and v, and the residual stream must stay exact).
Matrix rounded(const Matrix& x, OracleActivations act) {
  Matrix r = x;
  for (Index t = 0; t < r.rows(); ++t)
    round_activation_row(act, std::span<double>(r.row(t).data(), static_cast<size_t>(r.cols())));
  return r;
}

// y = scale * x W^T for every token, x first rounded as the chosen engine scheme would round it
// (exact: not at all). The matrix is dequantized for this one product and freed after it, so at
// most one layer matrix is ever held as doubles. `scale` is arch bitnet's optional per-matrix
// multiplier (1 when the file has none), applied to the product as the engine does.
Matrix linear(const Matrix& x, const kernels::WeightView& w, float scale, OracleActivations act) {
  BITNET_CHECK(w.cols == x.cols());
  Matrix y = (act == OracleActivations::exact ? x : rounded(x, act)) * dequantize_rows(w, 0, w.rows).transpose();
  if (scale != 1.0f) y *= static_cast<double>(scale);
  return y;
}

// Each token's row divided by its root mean square (eps inside the root), then times the norm's
// weight vector.
Matrix rms_norm(const Matrix& x, const std::vector<float>& weight, double eps) {
  BITNET_CHECK(static_cast<Index>(weight.size()) == x.cols());
  const Eigen::RowVectorXd w = Eigen::Map<const Eigen::RowVectorXf>(weight.data(), x.cols()).cast<double>();
  Matrix y(x.rows(), x.cols());
  for (Index t = 0; t < x.rows(); ++t) {
    const double mean_square = x.row(t).squaredNorm() / static_cast<double>(x.cols());
    y.row(t) = x.row(t).cwiseProduct(w) / std::sqrt(mean_square + eps);
  }
  return y;
}

// Shows rows [n_tokens][width] f32 (row t is token t) to the observer as tap `name` of `layer`.
void show(const FloatOracleOptions& opt, std::string_view name, int32_t layer, const float* rows, Index n_tokens,
          Index width) {
  opt.taps(infer::Tap{.name = name, .layer = layer, .pos0 = 0, .n_tokens = n_tokens, .width = width, .data = rows,
                      .stride = width});
}

// Tap `name` of `layer` (-1 after the last) on x [T][width], right after x is computed: the fault
// first, in x itself, so that the rest of the pass goes on from the damaged values whether or not
// anyone watches; then the observer, on an f32 copy made only for it.
void emit(const FloatOracleOptions& opt, std::string_view name, int32_t layer, Matrix& x) {
  if (opt.fault.hits(name, layer)) x.col(0).array() += static_cast<double>(opt.fault.delta);
  if (!opt.taps) return;
  const FloatRows rows = x.cast<float>();
  show(opt, name, layer, rows.data(), rows.rows(), rows.cols());
}

// Rotary position embedding, in place, on each of the n_head heads of every token (token t sits
// at position t). Pair i of a head's first n_rot values turns by t * base^(-2i / n_rot); the rest
// of the head is left alone. NORM pairs (2i, 2i+1) (arch llama, whose converter permuted Q and K
// to suit); NEOX pairs (i, i + n_rot/2) (the bitnet archs, like HF's rotate_half).
void rope(Matrix& x, int64_t n_head, const model::ModelConfig& c) {
  const int64_t hd = c.head_dim(), half = c.n_rot / 2;
  const bool neox = c.rope == model::RopeType::neox;
  for (Index t = 0; t < x.rows(); ++t)
    for (int64_t h = 0; h < n_head; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const double theta = static_cast<double>(t) *
                             std::pow(static_cast<double>(c.rope_freq_base), -2.0 * static_cast<double>(i) / c.n_rot);
        const Index a = h * hd + (neox ? i : 2 * i), b = h * hd + (neox ? i + half : 2 * i + 1);
        const double x0 = x(t, a), x1 = x(t, b);
        x(t, a) = x0 * std::cos(theta) - x1 * std::sin(theta);
        x(t, b) = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
}

// Causal softmax attention, scores scaled by 1/sqrt(head_dim); with GQA query head h reads KV
// head h / (n_head / n_head_kv). q [T][n_head * hd], k and v [T][n_head_kv * hd].
Matrix attention(const Matrix& q, const Matrix& k, const Matrix& v, const model::ModelConfig& c) {
  const Index T = q.rows(), hd = c.head_dim(), group = c.n_head / c.n_head_kv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  Matrix out(T, c.n_head * hd);
  for (Index h = 0; h < c.n_head; ++h) {
    const Index g = h / group;
    Matrix p = (q.middleCols(h * hd, hd) * k.middleCols(g * hd, hd).transpose()) * scale;  // [T][T]
    for (Index t = 0; t < T; ++t) {  // token t sees keys 0..t
      auto seen = p.row(t).head(t + 1);
      seen = (seen.array() - seen.maxCoeff()).exp().matrix();
      seen /= seen.sum();
      p.row(t).tail(T - t - 1).setZero();
    }
    out.middleCols(h * hd, hd) = p * v.middleCols(g * hd, hd);
  }
  return out;
}

// Gated FFN: act(gate h) * (up h), arch bitnet's ffn_sub_norm, then down. act is SiLU (llama,
// bitnet) or ReLU^2 (bitnet-b1.58, or bitnet with hidden_activation relu2).
Matrix ffn(const Matrix& h, int32_t il, const model::LayerWeights& L, const model::ModelConfig& c,
           const FloatOracleOptions& opt) {
  Matrix g = linear(h, L.gate, L.gate_scale, opt.activations);
  emit(opt, "ffn_gate", il, g);
  Matrix u = linear(h, L.up, L.up_scale, opt.activations);
  emit(opt, "ffn_up", il, u);
  if (c.ffn_act == model::FfnAct::relu2) g.array() = g.array().max(0.0).square() * u.array();
  else g.array() = g.array() / (1.0 + (-g.array()).exp()) * u.array();
  if (c.sub_norms) {
    g = rms_norm(g, L.ffn_sub_norm, c.rms_eps);
    emit(opt, "ffn_sub_norm", il, g);
  }
  Matrix out = linear(g, L.down, L.down_scale, opt.activations);
  emit(opt, "ffn_out", il, out);
  return out;
}

// One block on the residual stream x [T][n_embd]: pre-norm attention (the bitnet archs norm the
// heads' concatenated output again before the output projection), then the pre-norm FFN. Each
// tap is emitted where it is computed, in kLayerTaps order (Q, K and V are independent, so each
// is finished, RoPE included, before the next).
void layer(Matrix& x, int32_t il, const model::LayerWeights& L, const model::ModelConfig& c,
           const FloatOracleOptions& opt) {
  const OracleActivations act = opt.activations;
  Matrix h = rms_norm(x, L.attn_norm, c.rms_eps);
  emit(opt, "attn_norm", il, h);
  Matrix q = linear(h, L.wq, L.wq_scale, act);
  rope(q, c.n_head, c);
  emit(opt, "Qcur", il, q);
  Matrix k = linear(h, L.wk, L.wk_scale, act);
  rope(k, c.n_head_kv, c);
  emit(opt, "Kcur", il, k);
  Matrix v = linear(h, L.wv, L.wv_scale, act);
  emit(opt, "Vcur", il, v);
  Matrix a = attention(q, k, v, c);
  emit(opt, "kqv_out", il, a);
  if (c.sub_norms) {
    a = rms_norm(a, L.attn_sub_norm, c.rms_eps);
    emit(opt, "attn_sub_norm", il, a);
  }
  Matrix o = linear(a, L.wo, L.wo_scale, act);
  emit(opt, "attn_out", il, o);
  x += o;
  emit(opt, "ffn_inp", il, x);
  Matrix f = rms_norm(x, L.ffn_norm, c.rms_eps);
  emit(opt, "ffn_norm", il, f);
  x += ffn(f, il, L, c, opt);
  emit(opt, "l_out", il, x);
}

// Q8_K rounds whole blocks of 256, so every layer matrix's input width must be a multiple of it.
// Checked before any work, naming the first matrix that does not fit (every layer has the same
// shapes, but the check does not rely on it).
void check_block_widths(const model::Model& model, OracleActivations act) {
  if (act != OracleActivations::q8_k) return;
  for (uint32_t l = 0; l < model.config().n_layer; ++l) {
    const model::LayerWeights& L = model.layer(l);
    const std::pair<const char*, const kernels::WeightView*> mats[] = {
        {"attn_q", &L.wq},     {"attn_k", &L.wk}, {"attn_v", &L.wv},       {"attn_output", &L.wo},
        {"ffn_gate", &L.gate}, {"ffn_up", &L.up}, {"ffn_down", &L.down}};
    for (const auto& [name, w] : mats)
      if (w->cols % kOracleQ8KBlock != 0)
        throw make_error(ErrorCode::invalid_input,
                         "float oracle: blk.{}.{} takes rows of {} values, not a multiple of {}, which activation "
                         "scheme {} needs",
                         l, name, w->cols, kOracleQ8KBlock, oracle_activations_name(act));
  }
}

void check_input(const model::ModelConfig& c, std::span<const TokenId> tokens, const FloatOracleOptions& opt) {
  if (tokens.empty()) throw make_error(ErrorCode::invalid_input, "float oracle: no tokens to evaluate (give at least 1)");
  if (tokens.size() > c.n_ctx_train)
    throw make_error(ErrorCode::invalid_input, "float oracle: {} tokens exceed the model's context of {}", tokens.size(),
                     c.n_ctx_train);
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || static_cast<uint32_t>(tokens[i]) >= c.n_vocab)
      throw make_error(ErrorCode::invalid_input,
                       "float oracle: token id {} at position {} is outside the vocabulary (0..{})", tokens[i], i,
                       c.n_vocab - 1);
  if (opt.output_rows_per_slice < 1)
    throw make_error(ErrorCode::invalid_input, "float oracle: output_rows_per_slice is {}; it must be at least 1",
                     opt.output_rows_per_slice);
}

}  // namespace

std::string_view oracle_activations_name(OracleActivations a) {
  switch (a) {
    case OracleActivations::exact: return "exact";
    case OracleActivations::q8_k: return "q8_k";
    case OracleActivations::i8: return "i8";
  }
  return "?";
}

std::vector<float> float_oracle_logits(const model::Model& model, std::span<const TokenId> tokens,
                                       const FloatOracleOptions& opt) {
  const model::ModelConfig& c = model.config();
  check_input(c, tokens, opt);
  check_block_widths(model, opt.activations);
  const auto T = static_cast<Index>(tokens.size());
  const Index E = c.n_embd, V = c.n_vocab;

  // Embeddings: the token's row of token_embd at its stored values.
  Matrix x(T, E);
  std::vector<float> row(static_cast<size_t>(E));
  for (Index t = 0; t < T; ++t) {
    model.embedding(tokens[static_cast<size_t>(t)], row.data());
    x.row(t) = Eigen::Map<const Eigen::RowVectorXf>(row.data(), E).cast<double>();
  }

  for (uint32_t l = 0; l < c.n_layer; ++l) layer(x, static_cast<int32_t>(l), model.layer(l), c, opt);

  // Logits: the final norm, then the output matrix (token_embd when tied) a slice of rows at a
  // time, its input never rounded (the activation schemes are the layer matrices' only); the
  // only rounding to f32 in the whole pass is this last store.
  Matrix y = rms_norm(x, model.output_norm(), c.rms_eps);
  emit(opt, "result_norm", -1, y);
  const kernels::WeightView& w = model.output();
  BITNET_CHECK(w.rows == V && w.cols == E);
  std::vector<float> logits(static_cast<size_t>(T * V));
  Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> out(logits.data(), T, V);
  for (Index r0 = 0; r0 < V; r0 += opt.output_rows_per_slice) {
    const Index n = std::min<Index>(opt.output_rows_per_slice, V - r0);
    out.middleCols(r0, n) = (y * dequantize_rows(w, r0, n).transpose()).cast<float>();
  }
  // The logits are already f32 for the whole vocabulary: the tap shows them as they are returned.
  if (opt.fault.hits("result_output", -1)) out.col(0).array() += opt.fault.delta;
  if (opt.taps) show(opt, "result_output", -1, logits.data(), T, V);
  return logits;
}

}  // namespace bitnet::diag
