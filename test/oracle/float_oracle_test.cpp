// The float oracle (diag/oracle/float_model.hpp) against the engine where both compute the same
// maths, against itself across weight formats holding the same values, its emulation of the
// engines' activation schemes (alone, and against the engine on the ternary fixtures), its taps
// and their fault switch, its errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <iomanip>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/register.hpp"
#include "core/base/error.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "core/infer/taps.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/convert.hpp"
#include "core/model/model.hpp"
#include "diag/oracle/activation_rounding.hpp"
#include "diag/oracle/float_model.hpp"
#include "support/fixtures.hpp"
#include "support/scoped.hpp"

namespace bitnet::diag {
namespace {

std::unique_ptr<model::Model> load(const std::string& name) {
  return model::Model::load(test::fixture_file("models/" + name));
}

// A fixed prompt of n ids spread over the vocabulary (the same recipe as the session tests).
std::vector<TokenId> prompt(const model::Model& m, size_t n) {
  std::vector<TokenId> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<TokenId>((i * 37 + 3) % m.config().n_vocab);
  return p;
}

// The engine's logits of every position, [T][n_vocab]. An f32 KV cache: the default F16 cache
// rounds keys, values, queries and attention weights to F16 (ggml's numerics), which is not the
// maths the oracle computes.
std::vector<float> engine_logits(const model::Model& m, const kernels::KernelTable& k, const std::vector<TokenId>& toks) {
  infer::SessionOptions so;
  so.kv_type = infer::KvType::f32;
  infer::Session s(m, k, so);
  s.eval(toks, /*all_logits=*/true);
  std::vector<float> out;
  for (size_t i = 0; i < toks.size(); ++i) out.insert(out.end(), s.logits_at(i).begin(), s.logits_at(i).end());
  return out;
}

// The largest |engine - oracle| of any logit, over max(1, the largest |oracle logit| at that
// position): an error relative to the size of the position's logits, absolute when they are small.
double worst_relative_diff(const std::vector<float>& oracle, const std::vector<float>& engine, size_t n_vocab) {
  EXPECT_EQ(oracle.size(), engine.size());
  double worst = 0;
  for (size_t p = 0; p * n_vocab < std::min(oracle.size(), engine.size()); ++p) {
    double size = 1;
    for (size_t v = 0; v < n_vocab; ++v) size = std::max(size, std::fabs(static_cast<double>(oracle[p * n_vocab + v])));
    for (size_t v = 0; v < n_vocab; ++v) {
      const size_t i = p * n_vocab + v;
      worst = std::max(worst, std::fabs(static_cast<double>(engine[i]) - oracle[i]) / size);
    }
  }
  return worst;
}

// The engine on the reference table and on this CPU's best one, both within `bound` of the oracle.
void expect_engine_agrees(const model::Model& m, const std::string& what, double bound) {
  backends::register_all();
  const std::vector<TokenId> toks = prompt(m, 40);
  const std::vector<float> oracle = float_oracle_logits(m, toks);
  for (const kernels::KernelTable* k : {&kernels::reference_table(), kernels::select_backend("").table}) {
    const double worst = worst_relative_diff(oracle, engine_logits(m, *k, toks), m.config().n_vocab);
    std::cout << "[ oracle   ] " << what << " vs engine (" << k->name << "): worst relative logit difference " << worst
              << "\n";
    ::testing::Test::RecordProperty(what + "_" + std::string(k->name), std::to_string(worst));
    EXPECT_LE(worst, bound) << what << " on " << k->name;
  }
}

// A copy of a fixture with every F16 tensor widened to F32 (exact), written to `dir`: the same
// model, which the engine multiplies without rounding its activations. With `scales`, each
// ternary matrix also gets arch bitnet's optional `.scale` multiplier (a different power-of-two
// fraction each, so that one applied in the wrong place shows).
std::unique_ptr<model::Model> f32_copy(const std::string& name, const test::TempDir& dir, bool scales = false) {
  const gguf::GgufFile src = gguf::GgufFile::open(test::fixture_file("models/" + name));
  gguf::GgufWriter w;
  for (const auto& kv : src.kvs()) w.set_value(kv.key, kv.value);
  std::vector<std::vector<float>> data;  // the new tensors' bytes, kept until the write
  data.reserve(2 * src.tensors().size());
  static constexpr float kScales[] = {1.5f, 0.75f, 1.25f, 0.625f, 2.0f, 0.875f, 1.125f};
  for (const auto& t : src.tensors()) {
    const std::vector<int64_t> ne(t.dims().begin(), t.dims().end());
    if (t.type != gguf::GgmlType::F16) {
      w.add_tensor(t.name, t.type, ne, src.tensor_data(t));
    } else {
      auto& v = data.emplace_back(static_cast<size_t>(t.n_elements()));
      kernels::dequantize(t.type, src.tensor_data(t).data(), 0, t.n_elements(), v.data());
      w.add_tensor(t.name, gguf::GgmlType::F32, ne, std::as_bytes(std::span<const float>(v)));
    }
    if (scales && model::is_ternary_weight_name(t.name)) {
      auto& v = data.emplace_back(1, kScales[data.size() % std::size(kScales)]);
      const std::string base = t.name.substr(0, t.name.size() - std::string_view(".weight").size());
      w.add_tensor(base + ".scale", gguf::GgmlType::F32, {1}, std::as_bytes(std::span<const float>(v)));
    }
  }
  w.write(dir / name);
  return model::Model::load(dir / name);
}

// F32 weights: the engine multiplies its f32 activations as they are (no quantization), so the
// two differ only by float rounding: the engine's f32 sums and its RoPE angles advanced by float
// multiplication, against the oracle's doubles. The bitnet archs' F16 fixtures widened to F32
// put their sub-norms, NEOX RoPE, both FFN activations and arch bitnet's per-matrix scales under
// the same tight bound.
TEST(FloatOracle, MatchesTheEngineOnF32Weights) {
  expect_engine_agrees(*load("stories260K.gguf"), "stories260K.gguf", 5e-6);
  const test::TempDir dir;
  for (const char* name : {"bitnet-tiny-f16.gguf", "bitnet-b158-tiny-f16.gguf"})
    expect_engine_agrees(*f32_copy(name, dir), std::string(name) + " widened to F32", 5e-6);
  const test::TempDir scaled_dir;
  auto scaled = f32_copy("bitnet-tiny-f16.gguf", scaled_dir, /*scales=*/true);
  const model::LayerWeights& L = scaled->layer(0);
  for (float f : {L.wq_scale, L.wk_scale, L.wv_scale, L.wo_scale, L.gate_scale, L.up_scale, L.down_scale})
    ASSERT_NE(f, 1.0f) << "the loader did not read the .scale tensors";
  expect_engine_agrees(*scaled, "bitnet-tiny-f16.gguf widened to F32 with .scale tensors", 5e-6);
}

// F16 weights: the engine rounds each matmul's activations to F16 first (formats.cpp, ActFormat::
// f16: ggml converts the f32 operand of an F16 matmul the same way), a relative error of up to
// 2^-11 in every input of every product, which the oracle does not make. Through the layers and
// the tied F16 output matrix that moves the logits far more than the F32 bound allows and far
// less than a wrong sub-norm, RoPE or activation does (docs/float-oracle.md has the numbers).
TEST(FloatOracle, MatchesTheEngineOnF16WeightsUpToF16Activations) {
  for (const char* name : {"bitnet-tiny-f16.gguf", "bitnet-b158-tiny-f16.gguf"})
    expect_engine_agrees(*load(name), name, 3e-3);
}

// Files holding the same weights in different formats (the synthetic generator's scales are exact
// in F16, so ternary x scale is the same number in each) must give the oracle the same doubles,
// and the same doubles give the same logits bit for bit: any difference is a dequantization slip
// in one format's path.
TEST(FloatOracle, SameWeightsInEveryFormatGiveTheSameLogits) {
  struct Pair {
    const char* base;
    const char* other;
  };
  // F16 embeddings against F16; the TQ files without "embf16" share a Q6_K embedding instead.
  const Pair pairs[] = {{"bitnet-tiny-f16.gguf", "bitnet-tiny-tq2_0-embf16.gguf"},
                        {"bitnet-tiny-f16.gguf", "bitnet-tiny-i2_s.gguf"},
                        {"bitnet-tiny-tq2_0.gguf", "bitnet-tiny-tq1_0.gguf"},
                        {"bitnet-b158-tiny-f16.gguf", "bitnet-b158-tiny-i2_s.gguf"}};
  for (const Pair& p : pairs) {
    auto a = load(p.base), b = load(p.other);
    const std::vector<TokenId> toks = prompt(*a, 40);
    const std::vector<float> la = float_oracle_logits(*a, toks), lb = float_oracle_logits(*b, toks);
    const double worst = worst_relative_diff(la, lb, a->config().n_vocab);
    std::cout << "[ oracle   ] " << p.other << " vs " << p.base << ": worst relative logit difference " << worst << "\n";
    EXPECT_EQ(la, lb) << p.other << " vs " << p.base;
  }
}

// The logits do not depend on how the output matrix is sliced (one row at a time, or all).
TEST(FloatOracle, OutputSlicesDoNotChangeTheLogits) {
  auto m = load("bitnet-tiny-i2_s.gguf");
  const std::vector<TokenId> toks = prompt(*m, 7);
  const std::vector<float> whole = float_oracle_logits(*m, toks, {.output_rows_per_slice = 1 << 20});
  EXPECT_EQ(float_oracle_logits(*m, toks, {.output_rows_per_slice = 1}), whole);
  EXPECT_EQ(float_oracle_logits(*m, toks, {.output_rows_per_slice = 100}), whole);
}

// Position t's logits depend only on tokens 0..t (causal attention): a prefix gives the same rows.
TEST(FloatOracle, APrefixGivesTheSameLeadingRows) {
  auto m = load("stories260K.gguf");
  const std::vector<TokenId> toks = prompt(*m, 12);
  const std::vector<float> all = float_oracle_logits(*m, toks);
  const std::vector<float> head = float_oracle_logits(*m, std::span(toks).first(5));
  const size_t n = 5 * m->config().n_vocab;
  ASSERT_EQ(head.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(head[i], all[i], 1e-5 * std::max(1.0f, std::fabs(all[i]))) << i;
}

// The rounding alone, on rows worked out by hand. Exact multiples of the scales keep the expected
// values exact in double (d = 2/127 and the like are compared to 1e-15 relative).
std::vector<double> rounded_row(OracleActivations scheme, std::vector<double> row) {
  round_activation_row(scheme, row);
  return row;
}

void expect_row_near(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-15 * std::max(1.0, std::fabs(want[i]))) << what << " element " << i;
}

// A Q8_K row (one block) whose value of largest magnitude is negative: it maps to -127, so
// iscale = -127 / -2 = 63.5 and d = 2/127; 1 * 63.5 is a tie and goes to the even 64.
TEST(OracleActivationRounding, Q8KBlockWithANegativeMaximum) {
  std::vector<double> row(256, 0.0), want(256, 0.0);
  row[0] = -2.0, row[1] = 1.0, row[2] = 0.5, row[3] = 0.3, row[255] = -0.01;
  want[0] = -2.0, want[1] = 128.0 / 127, want[2] = 64.0 / 127, want[3] = 38.0 / 127, want[255] = -2.0 / 127;
  expect_row_near(rounded_row(OracleActivations::q8_k, row), want, "q8_k, negative max");
}

// I8 on the same kind of row: s = 127 / 4 = 31.75, the whole row at that one scale.
TEST(OracleActivationRounding, I8RowWithANegativeMaximum) {
  expect_row_near(rounded_row(OracleActivations::i8, {-4.0, 1.0, 3.0, 0.01, 0.1}),
                  {-4.0, 128.0 / 127, 380.0 / 127, 0.0, 12.0 / 127}, "i8, negative max");
  // s = 1: 2.5 and -3.5 are ties, to even (the engine's nearest_int does the same).
  expect_row_near(rounded_row(OracleActivations::i8, {127.0, 2.5, -3.5, 0.4}), {127.0, 2.0, -4.0, 0.0}, "i8, ties");
}

// Zeros stay zeros under both (Q8_K skips an all-zero block; I8's 1e-5 floor keeps s finite).
TEST(OracleActivationRounding, ARowOfZerosStaysZero) {
  for (OracleActivations a : {OracleActivations::q8_k, OracleActivations::i8, OracleActivations::exact})
    expect_row_near(rounded_row(a, std::vector<double>(512, 0.0)), std::vector<double>(512, 0.0),
                    std::string(oracle_activations_name(a)));
}

// A 512-wide row is two Q8_K blocks with scales of their own: block 1's 0.25 survives at block 1's
// scale (254: 63.5, a tie, to 64), where I8's one scale for the whole row (1, from the 127 in
// block 0) rounds it and the -0.5 away.
TEST(OracleActivationRounding, Q8KRoundsEachBlockOfTheRowOnItsOwn) {
  std::vector<double> row(512, 0.0);
  row[0] = 127.0, row[5] = 0.6, row[256] = -0.5, row[300] = 0.25;
  std::vector<double> q8k(512, 0.0), i8(512, 0.0);
  q8k[0] = 127.0, q8k[5] = 1.0, q8k[256] = -0.5, q8k[300] = 32.0 / 127;
  i8[0] = 127.0, i8[5] = 1.0;
  expect_row_near(rounded_row(OracleActivations::q8_k, row), q8k, "q8_k, two blocks");
  expect_row_near(rounded_row(OracleActivations::i8, row), i8, "i8, one scale");
  expect_row_near(rounded_row(OracleActivations::exact, row), row, "exact");
  EXPECT_THROW(rounded_row(OracleActivations::q8_k, std::vector<double>(300, 1.0)), Error);
}

// KL(oracle || engine) = sum_i p_o(i) (ln p_o(i) - ln p_e(i)) of every position, both softmaxes
// taken in double from the f32 logits ([T][n_vocab]).
std::vector<double> kld_per_position(const std::vector<float>& oracle, const std::vector<float>& engine,
                                     size_t n_vocab) {
  EXPECT_EQ(oracle.size(), engine.size());
  const size_t T = std::min(oracle.size(), engine.size()) / n_vocab;
  auto log_softmax = [n_vocab](const float* z) {
    const double m = *std::max_element(z, z + n_vocab);
    double sum = 0;
    for (size_t i = 0; i < n_vocab; ++i) sum += std::exp(z[i] - m);
    std::vector<double> l(n_vocab);
    for (size_t i = 0; i < n_vocab; ++i) l[i] = z[i] - m - std::log(sum);
    return l;
  };
  std::vector<double> kld(T, 0.0);
  for (size_t p = 0; p < T; ++p) {
    const std::vector<double> lo = log_softmax(&oracle[p * n_vocab]), le = log_softmax(&engine[p * n_vocab]);
    for (size_t i = 0; i < n_vocab; ++i) kld[p] += std::exp(lo[i]) * (lo[i] - le[i]);
  }
  return kld;
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

// Leading positions whose KLD stays below 1e-6: where the engine and the emulation round every
// activation the same way. The engine's f32 sums put a value on the other side of a rounding
// boundary now and then; from there on that position, and through its keys and values every later
// one, carries a different rounding and sits at the level of an unemulated scheme's noise.
size_t matched_prefix(const std::vector<double>& kld) {
  size_t n = 0;
  while (n < kld.size() && kld[n] < 1e-6) ++n;
  return n;
}

// The engine rounds every layer matrix's input by its weight format's scheme (formats.cpp: Q8_K
// for TQ1_0/TQ2_0, I8 for I2_S). The oracle emulating that same scheme must then be closer to it
// than the oracle emulating the other scheme or none: a mismatch would mean the engine (or the
// emulation) rounds different matrices, rows or blocks than the scheme says. On these shapes the
// two schemes differ only at ffn_down (the one 512-wide input: two Q8_K blocks, one I8 row; on a
// 256-wide row both give the same values), and once a rounding parts (matched_prefix) the rest
// of the prompt sits at a noise level not far below the other scheme's: hence the mean KLD
// margin is a few times, not orders of magnitude (docs/float-oracle.md).
TEST(FloatOracle, EachFormatsOwnActivationSchemeIsClosestToTheEngine) {
  struct Case {
    const char* file;
    OracleActivations own, other;
  };
  using A = OracleActivations;
  const Case cases[] = {{"bitnet-tiny-tq2_0-embf16.gguf", A::q8_k, A::i8},
                        {"bitnet-tiny-i2_s.gguf", A::i8, A::q8_k},
                        {"bitnet-b158-tiny-i2_s.gguf", A::i8, A::q8_k},
                        {"bitnet-tiny-tq1_0.gguf", A::q8_k, A::i8}};
  backends::register_all();
  const kernels::KernelTable& k = *kernels::select_backend("").table;
  std::cout << "[ oracle   ] mean KL(oracle || engine) per position, 64 tokens, engine table " << k.name << "\n"
            << "[ oracle   ] " << std::left << std::setw(32) << "model" << std::setw(14) << "exact" << std::setw(14)
            << "q8_k" << std::setw(14) << "i8" << std::setw(6) << "own" << "matched positions\n";
  for (const Case& c : cases) {
    auto m = load(c.file);
    const size_t V = m->config().n_vocab;
    const std::vector<TokenId> toks = prompt(*m, 64);
    const std::vector<float> engine = engine_logits(*m, k, toks);
    auto kld = [&](A a) { return kld_per_position(float_oracle_logits(*m, toks, {.activations = a}), engine, V); };
    const std::vector<double> own_kld = kld(c.own);
    const double exact = mean(kld(A::exact)), own = mean(own_kld), other = mean(kld(c.other));
    const double q8_k = c.own == A::q8_k ? own : other, i8 = c.own == A::i8 ? own : other;
    std::cout << "[ oracle   ] " << std::left << std::setw(32) << c.file << std::setw(14) << exact << std::setw(14)
              << q8_k << std::setw(14) << i8 << std::setw(6) << oracle_activations_name(c.own)
              << matched_prefix(own_kld) << " / " << toks.size() << "\n";
    for (A a : {A::exact, A::q8_k, A::i8})
      ::testing::Test::RecordProperty(std::string(c.file) + "_kld_" + std::string(oracle_activations_name(a)),
                                      std::to_string(a == A::exact ? exact : a == A::q8_k ? q8_k : i8));
    EXPECT_LT(own, other) << c.file << ": own scheme " << oracle_activations_name(c.own);
    EXPECT_LT(own, exact) << c.file << ": own scheme " << oracle_activations_name(c.own);
  }
}

// One tap as the observer saw it, its rows copied out (they are valid only during the call).
struct SeenTap {
  std::string name;
  int32_t layer;
  uint32_t pos0;
  int64_t n_tokens, width, stride;
  std::vector<float> values;  // [n_tokens][width]
  float at(int64_t t, int64_t i) const { return values[static_cast<size_t>(t * width + i)]; }
};

// The oracle's logits with every tap it emitted on the way, in order.
struct TappedRun {
  std::vector<float> logits;
  std::vector<SeenTap> taps;
  const SeenTap& find(std::string_view name, int32_t layer) const {
    for (const SeenTap& t : taps)
      if (t.name == name && t.layer == layer) return t;
    ADD_FAILURE() << "no tap " << name << " of layer " << layer;
    return taps.front();
  }
};

TappedRun tapped_run(const model::Model& m, std::span<const TokenId> toks, FloatOracleOptions opt = {}) {
  TappedRun run;
  opt.taps = [&run](const infer::Tap& t) {
    std::vector<float> v;
    for (int64_t i = 0; i < t.n_tokens; ++i) v.insert(v.end(), t.row(i).begin(), t.row(i).end());
    run.taps.push_back({std::string(t.name), t.layer, t.pos0, t.n_tokens, t.width, t.stride, std::move(v)});
  };
  run.logits = float_oracle_logits(m, toks, opt);
  return run;
}

// Each tap's width, from the model's shape (taps.hpp's meanings, worked out here on their own).
int64_t expected_width(std::string_view name, const model::ModelConfig& c) {
  if (name == "Qcur" || name == "kqv_out" || name == "attn_sub_norm") return int64_t{c.n_head} * c.head_dim();
  if (name == "Kcur" || name == "Vcur") return c.n_embd_kv();
  if (name == "ffn_gate" || name == "ffn_up" || name == "ffn_sub_norm") return c.n_ff;
  if (name == "result_output") return c.n_vocab;
  return c.n_embd;
}

// The oracle emits the engine's taps in the engine's order: per layer the kLayerTaps names (the
// sub-norms only on the bitnet archs), then the final two, one row of the right width per token.
TEST(FloatOracleTaps, ComeInTheEnginesOrderWithTheirShapes) {
  for (const char* name : {"stories260K.gguf", "bitnet-tiny-f16.gguf"}) {
    auto m = load(name);
    const model::ModelConfig& c = m->config();
    ASSERT_EQ(c.sub_norms, std::string(name) != "stories260K.gguf") << name;
    std::vector<std::pair<std::string, int32_t>> want;
    for (int32_t l = 0; l < static_cast<int32_t>(c.n_layer); ++l)
      for (std::string_view t : infer::kLayerTaps)
        if (c.sub_norms || (t != "attn_sub_norm" && t != "ffn_sub_norm")) want.emplace_back(t, l);
    for (std::string_view t : infer::kFinalTaps) want.emplace_back(t, -1);

    const std::vector<TokenId> toks = prompt(*m, 6);
    const TappedRun run = tapped_run(*m, toks);
    std::vector<std::pair<std::string, int32_t>> got;
    for (const SeenTap& t : run.taps) {
      got.emplace_back(t.name, t.layer);
      EXPECT_EQ(t.pos0, 0u) << name << " " << t.name;
      EXPECT_EQ(t.n_tokens, static_cast<int64_t>(toks.size())) << name << " " << t.name;
      EXPECT_EQ(t.width, expected_width(t.name, c)) << name << " " << t.name << " of layer " << t.layer;
      EXPECT_EQ(t.stride, t.width) << name << " " << t.name;
    }
    EXPECT_EQ(got, want) << name;
  }
}

// result_output is the logits returned, bit for bit (sliced output matrix or not); layer 0's
// attn_norm is the embedding's RMS norm, worked out here in double for every token.
TEST(FloatOracleTaps, HoldTheValuesTheyName) {
  auto m = load("bitnet-tiny-f16.gguf");
  const model::ModelConfig& c = m->config();
  const std::vector<TokenId> toks = prompt(*m, 5);
  for (int64_t slice : {int64_t{100}, int64_t{1} << 20}) {
    const TappedRun run = tapped_run(*m, toks, {.output_rows_per_slice = slice});
    EXPECT_EQ(run.find("result_output", -1).values, run.logits) << "slice " << slice;
  }
  const TappedRun run = tapped_run(*m, toks);
  const SeenTap& norm = run.find("attn_norm", 0);
  const std::vector<float>& w = m->layer(0).attn_norm;
  std::vector<float> e(c.n_embd);
  for (size_t t = 0; t < toks.size(); ++t) {
    m->embedding(toks[t], e.data());
    double sum = 0;
    for (float v : e) sum += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(sum / c.n_embd + c.rms_eps);
    for (uint32_t i = 0; i < c.n_embd; ++i)
      EXPECT_FLOAT_EQ(norm.at(static_cast<int64_t>(t), i), static_cast<float>(e[i] * inv * w[i]))
          << "token " << t << " element " << i;
  }
}

// The residual stream adds up: ffn_inp(l) = l_out(l-1) + attn_out(l) (the embedding before layer 0)
// and l_out(l) = ffn_inp(l) + ffn_out(l), up to the taps' rounding to f32.
TEST(FloatOracleTaps, TheResidualStreamAddsUp) {
  for (const char* name : {"stories260K.gguf", "bitnet-tiny-f16.gguf"}) {
    auto m = load(name);
    const model::ModelConfig& c = m->config();
    const std::vector<TokenId> toks = prompt(*m, 6);
    const TappedRun run = tapped_run(*m, toks);
    const auto T = static_cast<int64_t>(toks.size());
    std::vector<float> prev(static_cast<size_t>(T) * c.n_embd);  // l_out of the layer before
    for (int64_t t = 0; t < T; ++t) m->embedding(toks[static_cast<size_t>(t)], prev.data() + t * c.n_embd);
    auto expect_sum = [&](const SeenTap& sum, auto&& a, const SeenTap& b) {
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < c.n_embd; ++i) {
          const double x = a(t, i), y = b.at(t, i);
          ASSERT_NEAR(sum.at(t, i), x + y, 1e-6 * std::max(1.0, std::fabs(x) + std::fabs(y)))
              << name << " " << sum.name << " of layer " << sum.layer << " token " << t << " element " << i;
        }
    };
    for (int32_t l = 0; l < static_cast<int32_t>(c.n_layer); ++l) {
      const SeenTap& inp = run.find("ffn_inp", l);
      const SeenTap& out = run.find("l_out", l);
      expect_sum(inp, [&](int64_t t, int64_t i) { return prev[static_cast<size_t>(t * c.n_embd + i)]; },
                 run.find("attn_out", l));
      expect_sum(out, [&](int64_t t, int64_t i) { return inp.at(t, i); }, run.find("ffn_out", l));
      prev = out.values;
    }
  }
}

// A fault at layer 1's ffn_up shows there and not before: every earlier tap is bit-identical to a
// clean run, ffn_up is off by the delta in each row's first value only, and every later tap and
// the logits differ. Without an observer the damage is the same.
TEST(FloatOracleTaps, AFaultShowsWhereItIsMadeAndSpreads) {
  auto m = load("bitnet-tiny-f16.gguf");
  ASSERT_GE(m->config().n_layer, 2u);
  const std::vector<TokenId> toks = prompt(*m, 6);
  const infer::TapFault fault{.name = "ffn_up", .layer = 1, .delta = 0.5f};
  const TappedRun clean = tapped_run(*m, toks), hurt = tapped_run(*m, toks, {.fault = fault});
  ASSERT_EQ(clean.taps.size(), hurt.taps.size());
  size_t k = 0;
  while (k < clean.taps.size() && !(clean.taps[k].name == "ffn_up" && clean.taps[k].layer == 1)) ++k;
  ASSERT_LT(k, clean.taps.size());
  for (size_t i = 0; i < k; ++i)
    EXPECT_EQ(hurt.taps[i].values, clean.taps[i].values) << clean.taps[i].name << " of layer " << clean.taps[i].layer;
  const SeenTap &a = clean.taps[k], &b = hurt.taps[k];
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    EXPECT_NEAR(static_cast<double>(b.at(t, 0)) - a.at(t, 0), 0.5, 1e-6) << "token " << t;
    for (int64_t i = 1; i < a.width; ++i) ASSERT_EQ(b.at(t, i), a.at(t, i)) << "token " << t << " element " << i;
  }
  for (size_t i = k + 1; i < clean.taps.size(); ++i)
    EXPECT_NE(hurt.taps[i].values, clean.taps[i].values) << clean.taps[i].name << " of layer " << clean.taps[i].layer;
  EXPECT_NE(hurt.logits, clean.logits);
  EXPECT_EQ(float_oracle_logits(*m, toks, {.fault = fault}), hurt.logits);
}

// Watching changes nothing: the logits with an observer that ignores every tap are the logits
// without one, bit for bit.
TEST(FloatOracleTaps, AnObserverDoesNotChangeTheLogits) {
  for (const char* name : {"stories260K.gguf", "bitnet-tiny-f16.gguf"}) {
    auto m = load(name);
    const std::vector<TokenId> toks = prompt(*m, 6);
    size_t calls = 0;
    const std::vector<float> watched =
        float_oracle_logits(*m, toks, {.taps = [&calls](const infer::Tap&) { ++calls; }});
    EXPECT_GT(calls, 0u) << name;
    EXPECT_EQ(float_oracle_logits(*m, toks), watched) << name;
  }
}

// Bad input is a bitnet::Error(invalid_input) whose message names the value and the limit.
void expect_invalid(const model::Model& m, std::span<const TokenId> toks, const std::vector<std::string>& words,
                    const FloatOracleOptions& opt = {}) {
  try {
    (void)float_oracle_logits(m, toks, opt);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    for (const std::string& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

TEST(FloatOracle, RejectsBadInput) {
  auto m = load("stories260K.gguf");
  const model::ModelConfig& c = m->config();  // vocab 512, context 2048
  expect_invalid(*m, {}, {"no tokens", "at least 1"});
  expect_invalid(*m, std::vector<TokenId>{1, static_cast<TokenId>(c.n_vocab)}, {"512", "position 1", "0..511"});
  expect_invalid(*m, std::vector<TokenId>{-1}, {"-1", "0..511"});
  expect_invalid(*m, std::vector<TokenId>(c.n_ctx_train + 1, 1), {"2049", "2048"});
  expect_invalid(*m, std::vector<TokenId>{1}, {"output_rows_per_slice", "0", "at least 1"}, {.output_rows_per_slice = 0});
  // Q8_K needs whole blocks of 256; stories260K's matrices take rows of 64.
  expect_invalid(*m, std::vector<TokenId>{1}, {"blk.0.attn_q", "64", "256", "q8_k"},
                 {.activations = OracleActivations::q8_k});
}

}  // namespace
}  // namespace bitnet::diag
