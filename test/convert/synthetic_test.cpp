// synthetic:SHAPE models: the spec grammar, determinism (same spec -> same bytes, for any thread
// count), real shapes, ternary weights with F16-exact scales that are the same values in every
// TYPE, a valid tokenizer, and a model the engine loads and runs without NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "core/infer/sampler.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/convert.hpp"
#include "core/model/model.hpp"
#include "core/model/synthetic.hpp"
#include "core/model/ternary.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "gguf/gguf_bytes.hpp"

namespace bitnet::model {
namespace {

using gguf::GgmlType;
using gguf::GgufFile;

TEST(SyntheticSpec, ShapesAndDefaults) {
  SyntheticSpec t = parse_synthetic("synthetic:tiny");
  EXPECT_EQ(t.arch, "bitnet");
  EXPECT_EQ(t.type, GgmlType::TQ2_0);
  EXPECT_EQ(t.n_vocab, 512u);
  EXPECT_EQ(t.n_embd, 256u);
  EXPECT_EQ(t.n_layer, 4u);
  EXPECT_EQ(t.n_ff, 512u);
  EXPECT_EQ(t.n_head, 4u);
  EXPECT_EQ(t.n_head_kv, 2u);
  EXPECT_EQ(t.rope_freq_base, 500000.0f);
  EXPECT_EQ(t.tokenizer, SyntheticTokenizer::spm);

  SyntheticSpec m = parse_synthetic("synthetic:700m");
  EXPECT_EQ(m.arch, "bitnet");
  EXPECT_EQ(m.n_vocab, 32002u);
  EXPECT_EQ(m.n_embd, 1536u);
  EXPECT_EQ(m.n_layer, 24u);
  EXPECT_EQ(m.n_ff, 4096u);
  EXPECT_EQ(m.n_head, 16u);
  EXPECT_EQ(m.n_head_kv, 16u);

  SyntheticSpec b = parse_synthetic("synthetic:2b4t");
  EXPECT_EQ(b.arch, "bitnet-b1.58");
  EXPECT_EQ(b.type, GgmlType::I2_S);
  EXPECT_EQ(b.n_vocab, 128256u);
  EXPECT_EQ(b.n_embd, 2560u);
  EXPECT_EQ(b.n_layer, 30u);
  EXPECT_EQ(b.n_ff, 6912u);
  EXPECT_EQ(b.n_head, 20u);
  EXPECT_EQ(b.n_head_kv, 5u);
  EXPECT_EQ(b.tokenizer, SyntheticTokenizer::bpe);
  EXPECT_EQ(synthetic_file_name(b), "2b4t-i2_s-bitnet-b1.58-v128256-bpe-s1-f" + std::to_string(kSyntheticFormat) + ".gguf");
}

TEST(SyntheticSpec, Overrides) {
  // A 2B-4T shape in arch `bitnet` (what stock llama.cpp loads): TQ2_0 by default.
  SyntheticSpec s = parse_synthetic("synthetic:2b4t:arch=bitnet");
  EXPECT_EQ(s.arch, "bitnet");
  EXPECT_EQ(s.type, GgmlType::TQ2_0);
  s = parse_synthetic("synthetic:2b4t:tq1_0:arch=bitnet:vocab=32002:tok=spm:seed=7");
  EXPECT_EQ(s.type, GgmlType::TQ1_0);
  EXPECT_EQ(s.n_vocab, 32002u);
  EXPECT_EQ(s.tokenizer, SyntheticTokenizer::spm);
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.n_embd, 2560u);
  EXPECT_EQ(parse_synthetic("synthetic:tiny:arch=bitnet-b1.58").type, GgmlType::I2_S);
  EXPECT_EQ(parse_synthetic("synthetic:tiny:F16").type, GgmlType::F16);
  // Every option changes the file name.
  std::set<std::string> names;
  for (const char* spec : {"synthetic:tiny", "synthetic:tiny:i2_s", "synthetic:tiny:arch=bitnet-25", "synthetic:tiny:vocab=600",
                           "synthetic:tiny:tok=bpe", "synthetic:tiny:seed=2"})
    names.insert(synthetic_file_name(parse_synthetic(spec)));
  EXPECT_EQ(names.size(), 6u);
}

TEST(SyntheticSpec, BadSpecsAreUsageErrors) {
  for (const char* bad : {"synthetic:", "synthetic:huge", "synthetic:tiny:q4_0", "synthetic:tiny:i2_s:tq2_0",
                          "synthetic:tiny:arch=llama", "synthetic:tiny:vocab=12", "synthetic:tiny:vocab=x",
                          "synthetic:tiny:vocab=99999999", "synthetic:tiny:tok=wpm", "synthetic:tiny:colour=red",
                          "synthetic:tiny:seed=-1"}) {
    SCOPED_TRACE(bad);
    try {
      parse_synthetic(bad);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::usage);
      EXPECT_NE(std::string(e.what()).find("synthetic:SHAPE[:TYPE]"), std::string::npos) << e.what();
    }
  }
}

class Synthetic : public ::testing::Test {
 protected:
  test::TempDir dir_;
  std::filesystem::path make(const std::string& spec, const std::string& sub = "a", ThreadPool* pool = nullptr) {
    return synthetic_model_path(parse_synthetic(spec), dir_ / sub, pool);
  }
};

TEST_F(Synthetic, SameSpecSameBytesForAnyThreadCount) {
  ThreadPool pool(3);
  for (const char* spec : {"synthetic:tiny", "synthetic:tiny:i2_s", "synthetic:tiny:tq1_0:tok=bpe"}) {
    SCOPED_TRACE(spec);
    const auto a = make(spec, "a"), b = make(spec, "b", &pool);
    EXPECT_EQ(a.parent_path(), dir_ / "a");
    EXPECT_EQ(test::read_file(a), test::read_file(b));
    // In memory too.
    gguf::GgufWriter w;
    add_synthetic_model(parse_synthetic(spec), w, &pool);
    EXPECT_EQ(w.to_bytes(), test::read_file(a));
  }
  EXPECT_NE(test::read_file(make("synthetic:tiny:seed=2")), test::read_file(make("synthetic:tiny")));
}

TEST_F(Synthetic, ExistingFileIsReused) {
  const auto p = make("synthetic:tiny");
  const auto t = std::filesystem::last_write_time(p);
  EXPECT_EQ(make("synthetic:tiny"), p);
  EXPECT_EQ(std::filesystem::last_write_time(p), t);
}

// Real shapes, ternary weights with one F16-exact scale each (about a third zeros), and the same
// values whatever the TYPE.
TEST_F(Synthetic, TernaryWeightsSameValuesInEveryType) {
  const auto ref = make("synthetic:tiny:f32");
  GgufFile fr = GgufFile::open(ref);
  for (const char* type : {"i2_s", "tq2_0", "tq1_0", "f16"}) {
    SCOPED_TRACE(type);
    const auto p = make(std::string("synthetic:tiny:") + type);
    auto m = Model::load(p);
    EXPECT_EQ(m->config().n_embd, 256u);
    EXPECT_EQ(m->config().n_vocab, 512u);
    GgufFile f = GgufFile::open(p);
    int n = 0;
    for (const auto& t : f.tensors()) {
      if (!is_ternary_weight_name(t.name)) continue;
      ++n;
      SCOPED_TRACE(t.name);
      EXPECT_EQ(gguf::type_name(t.type), gguf::type_name(*gguf::type_from_name(type)));
      const gguf::TensorInfo* tr = fr.find_tensor(t.name);
      EXPECT_EQ(dequantize_tensor(t.type, f.tensor_data(t), t.n_elements()),
                dequantize_tensor(tr->type, fr.tensor_data(*tr), tr->n_elements()));
      auto read = read_ternary(t.type, f.tensor_data(t), t.n_elements());
      ASSERT_TRUE(std::holds_alternative<TernaryWeights>(read));
      EXPECT_EQ(representable(std::get<TernaryWeights>(read), GgmlType::I2_S), "");
      EXPECT_EQ(representable(std::get<TernaryWeights>(read), GgmlType::TQ1_0), "");
    }
    EXPECT_EQ(n, 28);
  }
  // One scale per tensor, near 1/sqrt(2/3 n_in); about a third zeros.
  for (const auto& t : fr.tensors()) {
    if (!is_ternary_weight_name(t.name)) continue;
    const auto w = std::get<TernaryWeights>(read_ternary(t.type, fr.tensor_data(t), t.n_elements()));
    ASSERT_EQ(w.scale.size(), 1u);
    const double expect = 1.0 / std::sqrt(2.0 / 3.0 * static_cast<double>(t.ne[0]));
    EXPECT_GT(w.scale[0], 0.74 * expect) << t.name;
    EXPECT_LT(w.scale[0], 1.26 * expect) << t.name;
    double zeros = 0;
    for (int8_t v : w.t) zeros += v == 0;
    zeros /= static_cast<double>(w.t.size());
    EXPECT_GT(zeros, 0.31) << t.name;
    EXPECT_LT(zeros, 0.36) << t.name;
  }
}

TEST_F(Synthetic, EmbeddingsAreSmall) {
  auto m = Model::load(make("synthetic:tiny"));
  EXPECT_EQ(m->token_embd().type, GgmlType::F16);
  std::vector<float> row(256);
  double sum = 0, sq = 0;
  for (int32_t tok = 0; tok < 512; ++tok) {
    m->embedding(tok, row.data());
    for (float x : row) {
      sum += x;
      sq += static_cast<double>(x) * x;
      ASSERT_LT(std::fabs(x), 0.36f);
    }
  }
  const double n = 512.0 * 256.0, mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_LT(std::fabs(mean), 0.002);
  EXPECT_NEAR(sd, 0.1, 0.005);
}

// The model loads, computes finite logits, and does not just predict its input token back.
TEST_F(Synthetic, RunsWithoutNanAndDoesNotEcho) {
  for (const char* spec : {"synthetic:tiny", "synthetic:tiny:i2_s:arch=bitnet-b1.58:tok=bpe"}) {
    SCOPED_TRACE(spec);
    auto m = Model::load(make(spec));
    int echoes = 0;
    for (int32_t tok = 10; tok < 26; ++tok) {
      infer::Session s(*m, kernels::reference_table());
      const int32_t ids[2] = {1, tok};
      s.eval(ids);
      for (float l : s.logits()) ASSERT_TRUE(std::isfinite(l));
      echoes += infer::argmax(s.logits()) == tok;
    }
    EXPECT_LE(echoes, 3);
    infer::Session s(*m, kernels::reference_table());
    int32_t next = 1;
    for (int step = 0; step < 24; ++step) {
      s.eval(std::span<const TokenId>(&next, 1));
      for (float l : s.logits()) ASSERT_TRUE(std::isfinite(l));
      next = infer::argmax(s.logits());
    }
  }
}

void expect_round_trip(const tokenizer::Tokenizer& tok, const std::string& text) {
  auto ids = tok.encode_ids(text, false, false);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(tok.decode(ids), text);
}

TEST_F(Synthetic, TokenizersAreValid) {
  const std::string text = "the quick brown fox, 42 times\nand \xc3\xa9t\xc3\xa9!";
  {
    tokenizer::Tokenizer spm(tokenizer::read_vocab(GgufFile::open(make("synthetic:tiny:vocab=2000"))));
    EXPECT_EQ(spm.n_tokens(), 2000u);
    expect_round_trip(spm, text);
    auto ids = spm.encode_ids("the quick", true, false);
    EXPECT_EQ(ids.front(), 1u);
    EXPECT_LT(ids.size(), 1u + 9u) << "pieces should merge into multi-letter tokens";
  }
  {
    tokenizer::Tokenizer bpe(tokenizer::read_vocab(GgufFile::open(make("synthetic:tiny:tok=bpe"))));
    EXPECT_EQ(bpe.n_tokens(), 512u);
    expect_round_trip(bpe, text);
    EXPECT_EQ(bpe.encode_ids("", true, false), std::vector<TokenId>{510});
  }
}

// The full-size byte-level BPE vocabulary of the 2b4t shape, LLaMA-3's layout: 128000 ordinary
// tokens, then 256 specials with BOS 128000, EOS 128001 and <|eot_id|> 128009.
TEST(SyntheticVocab, FullSizeBpe) {
  gguf::GgufWriter w;
  w.set_string("general.architecture", "bitnet-b1.58");
  add_synthetic_vocab(SyntheticTokenizer::bpe, 128256, w);
  test::TempDir dir;
  w.write(dir / "v.gguf");
  tokenizer::Tokenizer tok(tokenizer::read_vocab(GgufFile::open(dir / "v.gguf")));
  EXPECT_EQ(tok.n_tokens(), 128256u);
  EXPECT_EQ(tok.vocab().bos, 128000u);
  EXPECT_EQ(tok.vocab().eos, 128001u);
  EXPECT_EQ(tok.vocab().eot, 128009u);
  EXPECT_EQ(tok.vocab().merges.size(), 128000u - 256u);
  auto ids = tok.encode_ids("User: hello<|eot_id|>", true, true);
  EXPECT_EQ(ids.front(), 128000u);
  EXPECT_EQ(ids.back(), 128009u);
  expect_round_trip(tok, "the quick brown fox jumps over the lazy dog");
  std::set<std::string> unique(tok.vocab().text.begin(), tok.vocab().text.end());
  EXPECT_EQ(unique.size(), 128256u);
}

}  // namespace
}  // namespace bitnet::model
