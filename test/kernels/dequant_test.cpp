// dequantize() against real files (every ternary tensor must equal its twin in the F16 file
// bit for bit; the Q6_K embedding within 6-bit quantization error) and against the test-side
// packers of pack.hpp on constructed blocks.
#include <bit>
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/error.hpp"
#include "core/gguf/reader.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"
#include "support/fixtures.hpp"

namespace bitnet::kernels {
namespace {

using gguf::GgmlType;

std::vector<float> decode(const gguf::GgufFile& f, const gguf::TensorInfo& t) {
  const std::byte* data = f.tensor_data(t).data();
  const int64_t n = t.n_elements();
  std::vector<float> out(static_cast<size_t>(n));
  const float scale = t.type == GgmlType::I2_S ? i2s_tensor_scale(data, n) : 1.0f;
  dequantize(t.type, data, 0, n, out.data(), scale);
  return out;
}

// Decodes every tensor of `type` in `quant` and compares with the same tensor of `ref`; returns the
// number of tensors compared.
int compare_exact(const std::string& quant, const std::string& ref, GgmlType type) {
  const auto q = gguf::GgufFile::open(test::fixture_file("models/" + quant));
  const auto r = gguf::GgufFile::open(test::fixture_file("models/" + ref));
  int compared = 0;
  for (const auto& t : q.tensors()) {
    if (t.type != type) continue;
    const gguf::TensorInfo* rt = r.find_tensor(t.name);
    EXPECT_NE(rt, nullptr) << t.name;
    if (rt == nullptr) continue;
    EXPECT_EQ(rt->type, GgmlType::F16) << t.name;
    EXPECT_EQ(rt->ne, t.ne) << t.name;
    const auto got = decode(q, t);
    const auto want = decode(r, *rt);
    size_t mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i]) && mismatches++ < 5)
        ADD_FAILURE() << quant << " " << t.name << "[" << i << "]: " << got[i] << " != " << want[i];
    }
    EXPECT_EQ(mismatches, 0u) << t.name;
    // Decoding a slice from the middle agrees with the whole-tensor decode (row offsets).
    const int64_t block = gguf::traits(t.type).block_size;
    const int64_t first = t.ne[0] * (t.ne[1] / 2), n = t.ne[0];
    if (first % block == 0) {
      std::vector<float> row(static_cast<size_t>(n));
      const std::byte* data = q.tensor_data(t).data();
      const float scale = type == GgmlType::I2_S ? i2s_tensor_scale(data, t.n_elements()) : 1.0f;
      dequantize(t.type, data, first, n, row.data(), scale);
      int64_t slice_mismatches = 0;
      for (int64_t i = 0; i < n; ++i) slice_mismatches += row[i] != got[first + i];
      EXPECT_EQ(slice_mismatches, 0) << t.name;
    }
    ++compared;
  }
  return compared;
}

TEST(DequantFixtures, I2sBitnetTinyMatchesF16) {
  EXPECT_EQ(compare_exact("bitnet-tiny-i2_s.gguf", "bitnet-tiny-f16.gguf", GgmlType::I2_S), 28);
}

TEST(DequantFixtures, I2sBitnetB158TinyMatchesF16) {
  EXPECT_EQ(compare_exact("bitnet-b158-tiny-i2_s.gguf", "bitnet-b158-tiny-f16.gguf", GgmlType::I2_S), 28);
}

TEST(DequantFixtures, I2sBitnetB158TinyBpeMatchesF16) {
  EXPECT_EQ(compare_exact("bitnet-b158-tiny-bpe-i2_s.gguf", "bitnet-b158-tiny-bpe-f16.gguf", GgmlType::I2_S), 28);
}

TEST(DequantFixtures, Tq2_0MatchesF16) {
  EXPECT_EQ(compare_exact("bitnet-tiny-tq2_0.gguf", "bitnet-tiny-f16.gguf", GgmlType::TQ2_0), 28);
}

TEST(DequantFixtures, Tq1_0MatchesF16) {
  EXPECT_EQ(compare_exact("bitnet-tiny-tq1_0.gguf", "bitnet-tiny-f16.gguf", GgmlType::TQ1_0), 28);
}

TEST(DequantFixtures, Q6KEmbeddingWithinSixBitError) {
  for (const char* file : {"bitnet-tiny-tq2_0.gguf", "bitnet-tiny-tq1_0.gguf"}) {
    const auto q = gguf::GgufFile::open(test::fixture_file(std::string("models/") + file));
    const auto r = gguf::GgufFile::open(test::fixture_file("models/bitnet-tiny-f16.gguf"));
    const auto* qt = q.find_tensor("token_embd.weight");
    const auto* rt = r.find_tensor("token_embd.weight");
    ASSERT_TRUE(qt && rt);
    ASSERT_EQ(qt->type, GgmlType::Q6_K);
    const auto got = decode(q, *qt), want = decode(r, *rt);
    ASSERT_EQ(got.size(), want.size());
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(want[i])));
      max_err = std::max(max_err, std::fabs(static_cast<double>(got[i]) - want[i]));
    }
    // SPEC 1.5 reports ~1.4% of the largest value; a layout error would be tens of percent.
    EXPECT_LE(max_err, 0.015 * max_ref) << file;
    EXPECT_GT(max_err, 0.0) << file;  // it is lossy: equality would mean we read the wrong tensor
  }
}

// --- constructed blocks: the test-side packers (written from SPEC) and dequantize agree ---

TEST(DequantPacked, TernaryTypes) {
  std::mt19937 rng(21);
  const auto t = test::random_ints(rng, 256 * 3, -1, 1);
  auto d = test::random_f16(rng, 3, 0.01f, 2.0f);
  d[1] = 0;  // an all-zero-scale block
  const auto tq2 = test::pack_tq2_0(t, d);
  const auto tq1 = test::pack_tq1_0(t, d);
  std::vector<float> a(t.size()), b(t.size());
  dequantize(GgmlType::TQ2_0, tq2.data(), 0, 768, a.data());
  dequantize(GgmlType::TQ1_0, tq1.data(), 0, 768, b.data());
  for (size_t i = 0; i < t.size(); ++i) {
    const float want = static_cast<float>(t[i]) * f16_to_f32(d[i / 256]);
    ASSERT_EQ(a[i], want) << i;
    ASSERT_EQ(b[i], want) << i;
  }
  // A block in the middle alone.
  dequantize(GgmlType::TQ1_0, tq1.data(), 512, 256, b.data());
  for (size_t i = 0; i < 256; ++i) ASSERT_EQ(b[i], a[512 + i]);
}

TEST(DequantPacked, I2sAnyStart) {
  std::mt19937 rng(22);
  const auto t = test::random_ints(rng, 128 * 5, -1, 1);
  const auto packed = test::pack_i2s(t, 0.37f);
  EXPECT_EQ(i2s_tensor_scale(packed.data(), 640), 0.37f);
  for (int64_t first : {0, 1, 31, 32, 100, 127, 128, 333}) {
    const int64_t n = 640 - first - 3;
    std::vector<float> out(static_cast<size_t>(n));
    dequantize(GgmlType::I2_S, packed.data(), first, n, out.data(), 0.37f);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], static_cast<float>(t[first + i]) * 0.37f) << first << " " << i;
  }
}

TEST(DequantPacked, Q4_0Q8_0Q6K) {
  std::mt19937 rng(23);
  const auto d = test::random_f16(rng, 16, 0.001f, 0.5f);
  const auto v4 = test::random_ints(rng, 64, -8, 7);
  const auto v8 = test::random_ints(rng, 64, -128, 127);
  const auto v6 = test::random_ints(rng, 512, -32, 31);
  const auto sc = test::random_ints(rng, 32, -128, 127);
  std::vector<float> out(512);
  dequantize(GgmlType::Q4_0, test::pack_q4_0(v4, d).data(), 0, 64, out.data());
  for (size_t i = 0; i < 64; ++i) ASSERT_EQ(out[i], static_cast<float>(v4[i]) * f16_to_f32(d[i / 32])) << i;
  dequantize(GgmlType::Q8_0, test::pack_q8_0(v8, d).data(), 0, 64, out.data());
  for (size_t i = 0; i < 64; ++i) ASSERT_EQ(out[i], static_cast<float>(v8[i]) * f16_to_f32(d[i / 32])) << i;
  dequantize(GgmlType::Q6_K, test::pack_q6_k(v6, sc, d).data(), 0, 512, out.data());
  for (size_t i = 0; i < 512; ++i) {
    const float want = f16_to_f32(d[i / 256]) * static_cast<float>(sc[i / 16]) * static_cast<float>(v6[i]);
    ASSERT_EQ(out[i], want) << i;
  }
}

TEST(DequantPacked, FloatTypes) {
  const std::vector<float> f = {1.5f, -2.25f, 3e-8f, 65504.0f};
  std::vector<uint16_t> h(4), b(4);
  for (size_t i = 0; i < 4; ++i) {
    h[i] = f32_to_f16(f[i]);
    b[i] = f32_to_bf16(f[i]);
  }
  std::vector<float> out(3);
  dequantize(GgmlType::F32, reinterpret_cast<const std::byte*>(f.data()), 1, 3, out.data());
  EXPECT_EQ(out, std::vector<float>(f.begin() + 1, f.end()));
  dequantize(GgmlType::F16, reinterpret_cast<const std::byte*>(h.data()), 1, 3, out.data());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], f16_to_f32(h[i + 1]));
  dequantize(GgmlType::BF16, reinterpret_cast<const std::byte*>(b.data()), 1, 3, out.data());
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], bf16_to_f32(b[i + 1]));
}

TEST(DequantPacked, UnsupportedTypeIsAnError) {
  std::vector<std::byte> data(64);
  std::vector<float> out(32);
  try {
    dequantize(GgmlType::Q4_1, data.data(), 0, 32, out.data());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("Q4_1"), std::string::npos);
  }
}

}  // namespace
}  // namespace bitnet::kernels
