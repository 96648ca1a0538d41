// bitnet convert against its oracles: bitnet.cpp's I2_S files and llama.cpp's TQ1_0/TQ2_0 files
// of the same weights (fixtures/models), byte for byte; round trips through every format; the
// engine's logits on converted files; and every refusal (not ternary, not representable, block
// layout, architecture) with a message naming the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/base/error.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/convert.hpp"
#include "core/model/model.hpp"
#include "core/model/ternary.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/fixtures.hpp"
#include "support/golden.hpp"

namespace bitnet::model {
namespace {

using gguf::GgmlType;
using gguf::GgufFile;

std::filesystem::path fixture(const std::string& name) { return test::fixture_file("models/" + name + ".gguf"); }

ConvertStats convert(const std::filesystem::path& in, const std::filesystem::path& out, GgmlType type,
                     const std::string& arch = "", bool requantize = false) {
  ConvertOptions opt;
  opt.type = type;
  opt.arch = arch;
  opt.requantize = requantize;
  return convert_model(GgufFile::open(in), out, opt);
}

// A ternary tensor's meaningful bytes: all of them, except I2_S's 28 unspecified tail bytes.
std::vector<std::byte> meaningful(const GgufFile& f, const gguf::TensorInfo& t) {
  auto d = f.tensor_data(t);
  size_t n = d.size();
  if (t.type == GgmlType::I2_S) n = static_cast<size_t>(t.n_elements() / 4 + 4);
  return {d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n)};
}

// Every ternary weight of a equals b's (type and bytes); returns how many were compared.
int expect_same_ternary(const std::filesystem::path& a, const std::filesystem::path& b) {
  GgufFile fa = GgufFile::open(a), fb = GgufFile::open(b);
  int n = 0;
  for (const auto& ta : fa.tensors()) {
    if (!is_ternary_weight_name(ta.name)) continue;
    SCOPED_TRACE(ta.name);
    const gguf::TensorInfo* tb = fb.find_tensor(ta.name);
    if (!tb) {
      ADD_FAILURE() << "missing in " << b;
      continue;
    }
    EXPECT_EQ(gguf::type_name(ta.type), gguf::type_name(tb->type));
    EXPECT_TRUE(meaningful(fa, ta) == meaningful(fb, *tb)) << "bytes differ";
    ++n;
  }
  return n;
}

// Every other tensor of a equals b's byte for byte.
void expect_same_other_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  GgufFile fa = GgufFile::open(a), fb = GgufFile::open(b);
  for (const auto& ta : fa.tensors()) {
    if (is_ternary_weight_name(ta.name)) continue;
    SCOPED_TRACE(ta.name);
    const gguf::TensorInfo* tb = fb.find_tensor(ta.name);
    ASSERT_NE(tb, nullptr);
    EXPECT_EQ(ta.type, tb->type);
    auto da = fa.tensor_data(ta), db = fb.tensor_data(*tb);
    EXPECT_TRUE(std::equal(da.begin(), da.end(), db.begin(), db.end()));
  }
}

// Logits of every position of the golden prompt.
std::vector<float> logits(const std::filesystem::path& path) {
  static const std::vector<int32_t> ids = test::read_golden(test::fixture_file("golden/bitnet-tiny-i2_s.bitnet.cpp.json")).prompt_ids;
  auto m = Model::load(path);
  infer::Session s(*m, kernels::reference_table());
  s.eval(ids, /*all_logits=*/true);
  std::vector<float> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto l = s.logits_at(i);
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

// Copies a GGUF file, letting `edit` change one tensor's bytes.
void rewrite(const std::filesystem::path& in, const std::filesystem::path& out, const std::string& name,
             const std::function<void(std::vector<std::byte>&)>& edit) {
  GgufFile f = GgufFile::open(in);
  gguf::GgufWriter w(f.alignment());
  for (const auto& kv : f.kvs())
    if (kv.key != "general.alignment") w.set_value(kv.key, kv.value);
  std::vector<std::byte> changed;
  for (const auto& t : f.tensors()) {
    std::vector<int64_t> ne(t.dims().begin(), t.dims().end());
    if (t.name == name) {
      auto d = f.tensor_data(t);
      changed.assign(d.begin(), d.end());
      edit(changed);
      w.add_tensor(t.name, t.type, ne, changed);
    } else {
      w.add_tensor(t.name, t.type, ne, f.tensor_data(t));
    }
  }
  w.write(out);
}

template <typename Fn>
Error expect_error(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(ErrorCode::failure, "");
}

std::string full_message(const Error& e) { return e.format(); }

class FixturePair : public ::testing::TestWithParam<std::string> {
 protected:
  test::TempDir dir_;
};

// bitnet.cpp's I2_S file -> TQ2_0 -> I2_S: codes and scales back exactly, everything else
// untouched, the 28 tail bytes zero, and the engine computes exactly the same logits.
TEST_P(FixturePair, I2sToTq2ToI2sIsBitExact) {
  const auto src = fixture(GetParam() + "-i2_s");
  const auto tq2 = dir_ / "tq2.gguf", back = dir_ / "back.gguf";
  ConvertStats st = convert(src, tq2, GgmlType::TQ2_0);
  EXPECT_EQ(st.converted, 28);
  EXPECT_EQ(st.requantized, 0);
  EXPECT_EQ(st.copied, 18);
  convert(tq2, back, GgmlType::I2_S);
  EXPECT_EQ(expect_same_ternary(back, src), 28);
  expect_same_other_tensors(back, src);
  GgufFile f = GgufFile::open(back);
  for (const auto& t : f.tensors()) {
    if (t.type != GgmlType::I2_S) continue;
    auto d = f.tensor_data(t);
    for (size_t i = static_cast<size_t>(t.n_elements() / 4 + 4); i < d.size(); ++i)
      ASSERT_EQ(d[i], std::byte{0}) << t.name << " tail byte " << i;
  }
  EXPECT_EQ(logits(back), logits(src));
  EXPECT_EQ(f.get_string("general.architecture"), GgufFile::open(src).get_string("general.architecture"));
  EXPECT_EQ(f.get_uint("general.file_type"), 40u);
  EXPECT_EQ(GgufFile::open(tq2).get_uint("general.file_type"), 37u);
}

// The F16 model -> I2_S equals what bitnet.cpp's quantizer made of it.
TEST_P(FixturePair, F16ToI2sEqualsBitnetCppQuantizer) {
  const auto out = dir_ / "i2s.gguf";
  convert(fixture(GetParam() + "-f16"), out, GgmlType::I2_S);
  EXPECT_EQ(expect_same_ternary(out, fixture(GetParam() + "-i2_s")), 28);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixturePair, ::testing::Values("bitnet-tiny", "bitnet-b158-tiny"),
                         [](const auto& i) { return i.param == "bitnet-tiny" ? std::string("bitnet") : std::string("bitnet_b158"); });

class Convert : public ::testing::Test {
 protected:
  test::TempDir dir_;
};

// llama.cpp quantized the same F16 weights to TQ2_0 and TQ1_0: our bytes must be its bytes.
TEST_F(Convert, F16ToTqEqualsLlamaCppQuantizer) {
  convert(fixture("bitnet-tiny-f16"), dir_ / "tq2.gguf", GgmlType::TQ2_0);
  EXPECT_EQ(expect_same_ternary(dir_ / "tq2.gguf", fixture("bitnet-tiny-tq2_0-embf16")), 28);
  EXPECT_EQ(expect_same_ternary(dir_ / "tq2.gguf", fixture("bitnet-tiny-tq2_0")), 28);
  convert(fixture("bitnet-tiny-f16"), dir_ / "tq1.gguf", GgmlType::TQ1_0);
  EXPECT_EQ(expect_same_ternary(dir_ / "tq1.gguf", fixture("bitnet-tiny-tq1_0")), 28);
}

// The I2_S file as TQ2_0 is, tensor for tensor, llama.cpp's F16-embedding TQ2_0 file, so the
// engine computes the same logits from both.
TEST_F(Convert, I2sToTq2GivesLlamaCppsFileAndItsLogits) {
  convert(fixture("bitnet-tiny-i2_s"), dir_ / "tq2.gguf", GgmlType::TQ2_0);
  expect_same_other_tensors(dir_ / "tq2.gguf", fixture("bitnet-tiny-tq2_0-embf16"));
  EXPECT_EQ(logits(dir_ / "tq2.gguf"), logits(fixture("bitnet-tiny-tq2_0-embf16")));
}

// llama.cpp's TQ files -> I2_S equal bitnet.cpp's I2_S file; the Q6_K embedding is kept as is.
TEST_F(Convert, TqToI2sEqualsBitnetCppFileAndKeepsQ6kEmbedding) {
  for (const char* name : {"bitnet-tiny-tq2_0", "bitnet-tiny-tq1_0"}) {
    SCOPED_TRACE(name);
    convert(fixture(name), dir_ / "i2s.gguf", GgmlType::I2_S);
    EXPECT_EQ(expect_same_ternary(dir_ / "i2s.gguf", fixture("bitnet-tiny-i2_s")), 28);
    expect_same_other_tensors(dir_ / "i2s.gguf", fixture(name));
    GgufFile f = GgufFile::open(dir_ / "i2s.gguf");
    EXPECT_EQ(f.find_tensor("token_embd.weight")->type, GgmlType::Q6_K);
  }
}

// Through the float formats and back, and between the TQ formats: nothing changes.
TEST_F(Convert, RoundTripsThroughEveryFormat) {
  const auto src = fixture("bitnet-tiny-tq2_0");
  for (GgmlType via : {GgmlType::F16, GgmlType::F32, GgmlType::TQ1_0, GgmlType::I2_S}) {
    SCOPED_TRACE(gguf::type_name(via));
    convert(src, dir_ / "via.gguf", via);
    convert(dir_ / "via.gguf", dir_ / "back.gguf", GgmlType::TQ2_0);
    EXPECT_EQ(expect_same_ternary(dir_ / "back.gguf", src), 28);
  }
  convert(fixture("bitnet-tiny-i2_s"), dir_ / "f32.gguf", GgmlType::F32);
  convert(dir_ / "f32.gguf", dir_ / "back.gguf", GgmlType::I2_S);
  EXPECT_EQ(expect_same_ternary(dir_ / "back.gguf", fixture("bitnet-tiny-i2_s")), 28);
  // --type f16 widens only the ternary weights.
  convert(fixture("bitnet-tiny-tq2_0"), dir_ / "f16.gguf", GgmlType::F16);
  expect_same_other_tensors(dir_ / "f16.gguf", src);
  EXPECT_EQ(GgufFile::open(dir_ / "f16.gguf").find_tensor("token_embd.weight")->type, GgmlType::Q6_K);
}

// bitnet-b1.58 -> bitnet: the `{arch}.` keys renamed, bitnet.hidden_activation = "relu2" added
// so llama.cpp's bitnet graph (and ours) keeps the ReLU^2 FFN: logits equal the unrenamed file's.
// And back: the key is dropped again.
TEST_F(Convert, ArchRenameKeepsTheFunction) {
  convert(fixture("bitnet-b158-tiny-i2_s"), dir_ / "same.gguf", GgmlType::TQ2_0);
  convert(fixture("bitnet-b158-tiny-i2_s"), dir_ / "renamed.gguf", GgmlType::TQ2_0, "bitnet");
  GgufFile f = GgufFile::open(dir_ / "renamed.gguf");
  EXPECT_EQ(f.get_string("general.architecture"), "bitnet");
  EXPECT_EQ(f.get_string("bitnet.hidden_activation"), "relu2");
  EXPECT_EQ(f.get_uint("bitnet.embedding_length"), 256u);
  for (const auto& kv : f.kvs()) EXPECT_FALSE(kv.key.starts_with("bitnet-b1.58.")) << kv.key;
  EXPECT_EQ(f.kvs().size(), GgufFile::open(dir_ / "same.gguf").kvs().size() + 1);
  EXPECT_EQ(Model::load(dir_ / "renamed.gguf")->config().ffn_act, FfnAct::relu2);
  EXPECT_EQ(logits(dir_ / "renamed.gguf"), logits(dir_ / "same.gguf"));

  convert(dir_ / "renamed.gguf", dir_ / "back.gguf", GgmlType::TQ2_0, "bitnet-b1.58");
  GgufFile b = GgufFile::open(dir_ / "back.gguf");
  EXPECT_EQ(b.find("bitnet-b1.58.hidden_activation"), nullptr);
  EXPECT_EQ(b.kvs().size(), GgufFile::open(dir_ / "same.gguf").kvs().size());
  EXPECT_EQ(logits(dir_ / "back.gguf"), logits(dir_ / "same.gguf"));
}

TEST_F(Convert, ArchRenameRefusals) {
  // A SiLU model cannot become bitnet-b1.58, which always runs ReLU^2.
  Error e = expect_error([&] { convert(fixture("bitnet-tiny-i2_s"), dir_ / "x.gguf", GgmlType::I2_S, "bitnet-b1.58"); });
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_NE(full_message(e).find("SiLU"), std::string::npos) << full_message(e);
  e = expect_error([&] { convert(fixture("bitnet-tiny-i2_s"), dir_ / "x.gguf", GgmlType::I2_S, "llama"); });
  EXPECT_EQ(e.code(), ErrorCode::usage);
  e = expect_error([&] { convert(fixture("stories260K"), dir_ / "x.gguf", GgmlType::F32, "bitnet"); });
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_NE(full_message(e).find("'llama' cannot be renamed"), std::string::npos) << full_message(e);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

// A float model that is not ternary is refused (naming tensor, shape and a bad element), and
// nothing is written; --requantize applies BitNet's absmean quantizer.
TEST_F(Convert, NonTernaryIsRefusedUnlessRequantized) {
  const auto src = fixture("stories260K");
  Error e = expect_error([&] { convert(src, dir_ / "x.gguf", GgmlType::I2_S); });
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  const std::string msg = full_message(e);
  EXPECT_NE(msg.find("tensor 'blk.0.attn_q.weight' (F32 [64, 64]) is not ternary: element 0 is"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--requantize"), std::string::npos) << msg;
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));

  ConvertStats st = convert(src, dir_ / "q.gguf", GgmlType::I2_S, "", true);
  EXPECT_EQ(st.converted, 35);
  EXPECT_EQ(st.requantized, 35);
  auto m = Model::load(dir_ / "q.gguf");
  // Independent absmean of one tensor: s = mean|W| (as F16), t = clamp(round(W / s)).
  GgufFile f = GgufFile::open(src);
  const gguf::TensorInfo* t = f.find_tensor("blk.2.ffn_down.weight");
  std::vector<float> w(static_cast<size_t>(t->n_elements()));
  std::memcpy(w.data(), f.tensor_data(*t).data(), w.size() * 4);
  double sum = 0;
  for (float x : w) sum += std::fabs(x);
  const float s = kernels::f16_to_f32(kernels::f32_to_f16(static_cast<float>(sum / static_cast<double>(w.size()))));
  const kernels::WeightView& q = m->layer(2).down;
  EXPECT_EQ(q.type, GgmlType::I2_S);
  EXPECT_EQ(q.i2s_scale, s);
  std::vector<float> got(w.size());
  kernels::dequantize(GgmlType::I2_S, q.data, 0, static_cast<int64_t>(w.size()), got.data(), q.i2s_scale);
  for (size_t i = 0; i < w.size(); ++i) {
    const float want = std::fmax(-1.0f, std::fmin(1.0f, std::nearbyint(w[i] / s))) * s;
    ASSERT_EQ(got[i], want) << "element " << i;
  }
  // Generation runs on the requantized model.
  infer::Session session(*m, kernels::reference_table());
  const int32_t bos = 1;
  session.eval(std::span<const TokenId>(&bos, 1));
  for (float l : session.logits()) ASSERT_TRUE(std::isfinite(l));
}

TEST_F(Convert, OneBadValueInAFloatModelIsNamed) {
  rewrite(fixture("bitnet-tiny-f16"), dir_ / "bad.gguf", "blk.3.ffn_up.weight", [](std::vector<std::byte>& d) {
    const uint16_t h = kernels::f32_to_f16(0.001f);
    std::memcpy(d.data() + 2 * 1234, &h, 2);
  });
  Error e = expect_error([&] { convert(dir_ / "bad.gguf", dir_ / "x.gguf", GgmlType::TQ2_0); });
  EXPECT_NE(full_message(e).find("tensor 'blk.3.ffn_up.weight' (F16 [256, 512]) is not ternary: element 1234 is"),
            std::string::npos) << full_message(e);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.gguf"));
}

TEST_F(Convert, BlockLayoutRefusalNamesTensorAndShape) {
  Error e = expect_error([&] { convert(fixture("stories260K"), dir_ / "x.gguf", GgmlType::TQ2_0, "", true); });
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_NE(full_message(e).find("tensor 'blk.0.attn_q.weight' cannot be TQ2_0"), std::string::npos) << full_message(e);
  EXPECT_NE(full_message(e).find("shape [64, 64] has rows of 64"), std::string::npos) << full_message(e);
}

// TQ blocks whose scales differ cannot share I2_S's one scale: refused, or requantized on
// request. TQ1_0 keeps each block's scale exactly.
TEST_F(Convert, DifferentTqBlockScalesDoNotFitI2s) {
  rewrite(fixture("bitnet-tiny-tq2_0"), dir_ / "mixed.gguf", "blk.1.attn_v.weight", [](std::vector<std::byte>& d) {
    const uint16_t h = kernels::f32_to_f16(0.5f);
    std::memcpy(d.data() + 66 * 3 + 64, &h, 2);  // block 3's d
  });
  Error e = expect_error([&] { convert(dir_ / "mixed.gguf", dir_ / "x.gguf", GgmlType::I2_S); });
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
  EXPECT_NE(full_message(e).find("tensor 'blk.1.attn_v.weight' (TQ2_0 [256, 128]) cannot be written as I2_S exactly"),
            std::string::npos) << full_message(e);
  EXPECT_NE(full_message(e).find("different scales"), std::string::npos) << full_message(e);
  EXPECT_EQ(convert(dir_ / "mixed.gguf", dir_ / "q.gguf", GgmlType::I2_S, "", true).requantized, 1);

  convert(dir_ / "mixed.gguf", dir_ / "tq1.gguf", GgmlType::TQ1_0);
  GgufFile a = GgufFile::open(dir_ / "mixed.gguf"), b = GgufFile::open(dir_ / "tq1.gguf");
  const gguf::TensorInfo* ta = a.find_tensor("blk.1.attn_v.weight");
  const gguf::TensorInfo* tb = b.find_tensor("blk.1.attn_v.weight");
  EXPECT_EQ(dequantize_tensor(ta->type, a.tensor_data(*ta), ta->n_elements()),
            dequantize_tensor(tb->type, b.tensor_data(*tb), tb->n_elements()));
}

// An I2_S scale F16 cannot hold: exact as F32, refused as TQ2_0 or F16, rounded with --requantize.
TEST_F(Convert, I2sScaleOutsideF16) {
  rewrite(fixture("bitnet-tiny-i2_s"), dir_ / "odd.gguf", "blk.0.attn_k.weight", [](std::vector<std::byte>& d) {
    const float s = 0.1f;  // not an F16 value
    std::memcpy(d.data() + 256 * 128 / 4, &s, 4);
  });
  convert(dir_ / "odd.gguf", dir_ / "f32.gguf", GgmlType::F32);
  convert(dir_ / "f32.gguf", dir_ / "back.gguf", GgmlType::I2_S);
  EXPECT_EQ(expect_same_ternary(dir_ / "back.gguf", dir_ / "odd.gguf"), 28);
  for (GgmlType type : {GgmlType::TQ2_0, GgmlType::F16}) {
    Error e = expect_error([&] { convert(dir_ / "odd.gguf", dir_ / "x.gguf", type); });
    EXPECT_NE(full_message(e).find("tensor 'blk.0.attn_k.weight' (I2_S [256, 128]) cannot be written as"), std::string::npos)
        << full_message(e);
    EXPECT_NE(full_message(e).find("not representable in F16"), std::string::npos) << full_message(e);
  }
  EXPECT_EQ(convert(dir_ / "odd.gguf", dir_ / "q.gguf", GgmlType::TQ2_0, "", true).requantized, 1);
  GgufFile q = GgufFile::open(dir_ / "q.gguf");
  const gguf::TensorInfo* t = q.find_tensor("blk.0.attn_k.weight");
  const std::vector<float> v = dequantize_tensor(t->type, q.tensor_data(*t), t->n_elements());
  const float s16 = kernels::f16_to_f32(kernels::f32_to_f16(0.1f));
  for (float x : v) ASSERT_TRUE(x == 0 || std::fabs(x) == s16) << x;
}

TEST(TernaryNames, TheSevenWeightMatricesOnly) {
  EXPECT_TRUE(is_ternary_weight_name("blk.0.attn_q.weight"));
  EXPECT_TRUE(is_ternary_weight_name("blk.29.ffn_down.weight"));
  EXPECT_FALSE(is_ternary_weight_name("blk.0.attn_norm.weight"));
  EXPECT_FALSE(is_ternary_weight_name("blk.0.attn_q.scale"));
  EXPECT_FALSE(is_ternary_weight_name("blk.x.attn_q.weight"));
  EXPECT_FALSE(is_ternary_weight_name("blk..attn_q.weight"));
  EXPECT_FALSE(is_ternary_weight_name("token_embd.weight"));
  EXPECT_FALSE(is_ternary_weight_name("output.weight"));
}

}  // namespace
}  // namespace bitnet::model
