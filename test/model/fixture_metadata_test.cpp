// Hyper-parameters and tokenizer facts of every shared fixture, compared with values read off
// the files by an independent parser (a throwaway Python GGUF dump) and fixtures/README.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/gguf/reader.hpp"
#include "core/base/error.hpp"
#include "core/gguf/writer.hpp"
#include "core/model/metadata.hpp"
#include "support/fixtures.hpp"

namespace bitnet::model {
namespace {

struct Expected {
  std::string file;
  std::string arch;
  uint32_t n_kv, n_tensors, n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv, n_rot;
  float rope_base;
  std::string tok_model;
  uint32_t n_tokens;
  uint64_t n_merges;
  uint32_t bos, eos;
  std::map<std::string, int> types;  // type name -> tensor count
  std::string embd_type;
};

const std::vector<Expected>& expected() {
  static const std::vector<Expected> e = {
      {"models/stories260K.gguf", "llama", 19, 48, 2048, 64, 5, 172, 8, 4, 8, 10000.0f, "llama", 512, 0, 1, 2,
       {{"F32", 48}}, "F32"},
      {"models/bitnet-tiny-f16.gguf", "bitnet", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama", 512, 0, 1, 2,
       {{"F32", 17}, {"F16", 29}}, "F16"},
      {"models/bitnet-tiny-i2_s.gguf", "bitnet", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama", 512, 0, 1,
       2, {{"F32", 17}, {"F16", 1}, {"I2_S", 28}}, "F16"},
      {"models/bitnet-tiny-tq2_0.gguf", "bitnet", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama", 512, 0, 1,
       2, {{"F32", 17}, {"Q6_K", 1}, {"TQ2_0", 28}}, "Q6_K"},
      {"models/bitnet-tiny-tq2_0-embf16.gguf", "bitnet", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama", 512,
       0, 1, 2, {{"F32", 17}, {"F16", 1}, {"TQ2_0", 28}}, "F16"},
      {"models/bitnet-tiny-tq1_0.gguf", "bitnet", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama", 512, 0, 1,
       2, {{"F32", 17}, {"Q6_K", 1}, {"TQ1_0", 28}}, "Q6_K"},
      {"models/bitnet-b158-tiny-f16.gguf", "bitnet-b1.58", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama",
       512, 0, 1, 2, {{"F32", 17}, {"F16", 29}}, "F16"},
      {"models/bitnet-b158-tiny-i2_s.gguf", "bitnet-b1.58", 24, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "llama",
       512, 0, 1, 2, {{"F32", 17}, {"F16", 1}, {"I2_S", 28}}, "F16"},
      {"models/bitnet-b158-tiny-bpe-f16.gguf", "bitnet-b1.58", 21, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "gpt2",
       512, 254, 510, 511, {{"F32", 17}, {"F16", 29}}, "F16"},
      {"models/bitnet-b158-tiny-bpe-i2_s.gguf", "bitnet-b1.58", 21, 46, 256, 256, 4, 512, 4, 2, 64, 500000.0f, "gpt2",
       512, 254, 510, 511, {{"F32", 17}, {"F16", 1}, {"I2_S", 28}}, "F16"},
      {"vocab/ggml-vocab-llama-spm.gguf", "llama", 22, 0, 4096, 4096, 32, 11008, 32, 32, 128, 10000.0f, "llama", 32000,
       0, 1, 2, {}, ""},
      {"vocab/ggml-vocab-llama-bpe.gguf", "llama", 20, 0, 8192, 4096, 32, 14336, 32, 8, 128, 500000.0f, "gpt2", 128256,
       280147, 128000, 128001, {}, ""},
  };
  return e;
}

class FixtureMetadata : public ::testing::TestWithParam<size_t> {};

TEST_P(FixtureMetadata, MatchesIndependentReading) {
  const Expected& e = expected()[GetParam()];
  auto f = gguf::GgufFile::open(test::fixture_file(e.file));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.kvs().size(), e.n_kv);
  EXPECT_EQ(f.tensors().size(), e.n_tensors);

  ModelConfig c = read_config(f);
  EXPECT_EQ(c.arch_name, e.arch);
  EXPECT_EQ(c.n_ctx_train, e.n_ctx);
  EXPECT_EQ(c.n_embd, e.n_embd);
  EXPECT_EQ(c.n_layer, e.n_layer);
  EXPECT_EQ(c.n_ff, e.n_ff);
  EXPECT_EQ(c.n_head, e.n_head);
  EXPECT_EQ(c.n_head_kv, e.n_head_kv);
  EXPECT_EQ(c.n_rot, e.n_rot);
  EXPECT_EQ(c.rope_freq_base, e.rope_base);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.n_vocab, e.n_tokens);
  EXPECT_EQ(c.rope, e.arch == "llama" ? RopeType::norm : RopeType::neox);
  EXPECT_EQ(c.ffn_act, e.arch == "bitnet-b1.58" ? FfnAct::relu2 : FfnAct::silu);

  TokenizerInfo t = read_tokenizer_info(f);
  EXPECT_EQ(t.model, e.tok_model);
  EXPECT_EQ(t.n_tokens, e.n_tokens);
  EXPECT_EQ(t.n_merges, e.n_merges);
  EXPECT_EQ(t.bos, e.bos);
  EXPECT_EQ(t.eos, e.eos);

  std::map<std::string, int> types;
  for (const auto& ti : f.tensors()) ++types[std::string(gguf::type_name(ti.type))];
  EXPECT_EQ(types, e.types);
  if (e.n_tensors > 0) {
    TensorCheck tc = check_tensors(f, c);
    EXPECT_TRUE(tc.unused.empty());
    EXPECT_TRUE(tc.not_runnable.empty());
    EXPECT_EQ(tc.tied_output, e.arch != "llama");  // stories260K has its own output.weight
    const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(gguf::type_name(embd->type), e.embd_type);
    EXPECT_EQ(embd->ne[0], e.n_embd);
    EXPECT_EQ(embd->ne[1], e.n_tokens);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, FixtureMetadata, ::testing::Range<size_t>(0, 12),
                         [](const auto& param_info) {
                           std::string n = expected()[param_info.param].file;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(FixtureMetadata, TensorShapesOfTheTinyBitnetModel) {
  auto f = gguf::GgufFile::open(test::fixture_file("models/bitnet-tiny-i2_s.gguf"));
  // Shapes read off the file by the independent dump ([in, out] order).
  const std::map<std::string, std::vector<int64_t>> want = {
      {"blk.0.attn_q.weight", {256, 256}},  {"blk.0.attn_k.weight", {256, 128}},
      {"blk.0.attn_v.weight", {256, 128}},  {"blk.0.attn_output.weight", {256, 256}},
      {"blk.0.ffn_gate.weight", {256, 512}}, {"blk.0.ffn_up.weight", {256, 512}},
      {"blk.0.ffn_down.weight", {512, 256}}, {"blk.0.ffn_sub_norm.weight", {512}},
      {"blk.0.attn_sub_norm.weight", {256}}};
  for (const auto& [name, ne] : want) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(std::vector<int64_t>(t->dims().begin(), t->dims().end()), ne) << name;
  }
  // I2_S data offsets in the file (independent dump): q at 263168, k at 279584 -> q is 256*256/4+32
  // bytes padded to 32.
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->offset, 263168u);
  EXPECT_EQ(f.find_tensor("blk.0.attn_k.weight")->offset, 279584u);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->nbytes, 256u * 256 / 4 + 32);
}

}  // namespace
}  // namespace bitnet::model

namespace bitnet::model {
namespace {

// bitnet.hidden_activation (upstream llama.cpp's switch for 2B-4T weights in arch `bitnet`).
TEST(HiddenActivation, Relu2KeySwitchesTheFfnAndBadValuesAreRejected) {
  auto src = gguf::GgufFile::open(test::fixture_file("models/bitnet-tiny-f16.gguf"));
  for (const char* act : {"relu2", "silu", "gelu"}) {
    gguf::GgufWriter w;
    for (const auto& kv : src.kvs()) w.set_value(kv.key, kv.value);
    w.set_string("bitnet.hidden_activation", act);
    auto path = std::filesystem::temp_directory_path() / ("bitnet-act-" + std::to_string(::getpid()) + ".gguf");
    w.write(path);
    auto f = gguf::GgufFile::open(path);
    if (std::string(act) == "gelu") {
      EXPECT_THROW(read_config(f), Error);
    } else {
      EXPECT_EQ(read_config(f).ffn_act, std::string(act) == "relu2" ? FfnAct::relu2 : FfnAct::silu);
    }
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace bitnet::model
