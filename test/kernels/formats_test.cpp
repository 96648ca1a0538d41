// The weight-format rows: every row is runnable by the reference table (the oracle of every
// other table), names the entries matmul really uses, and sizes activations as the quantizers
// write them.
#include <gtest/gtest.h>

#include <vector>

#include "core/kernels/formats.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {
namespace {

TEST(WeightFormats, EveryRowRunsOnTheReferenceTable) {
  for (const WeightFormat& f : weight_formats()) {
    const int64_t cols = 512;  // a multiple of every block size
    const FormatEntries e = format_entries(reference_table(), f, cols);
    EXPECT_NE(e.dot, nullptr) << gguf::type_name(f.type);
    EXPECT_EQ(e.gemm, nullptr) << "the reference's many-row product is its dot, pair by pair";
    EXPECT_EQ(matmul_entry(reference_table(), WeightView{f.type, cols, 1, nullptr, 1.0f}), f.dot_name);
    EXPECT_EQ(find_format(f.type), &f);
    if (f.repack != nullptr) {
      EXPECT_NE(find_format(f.repack_to), nullptr) << gguf::type_name(f.type) << ": a repack needs a runnable target";
      EXPECT_NE(f.repack_to, f.type);
    }
    const bool element_type = gguf::traits(f.type).block_size == 1 || f.type == gguf::GgmlType::I2_S;
    EXPECT_EQ(f.dequant_block == nullptr, element_type) << gguf::type_name(f.type);
  }
}

TEST(WeightFormats, TypesWithoutARowAreNotRunnable) {
  EXPECT_EQ(find_format(gguf::GgmlType::Q4_K), nullptr);
  EXPECT_EQ(matmul_entry(reference_table(), WeightView{gguf::GgmlType::Q4_K, 256, 1, nullptr, 1.0f}), "");
  EXPECT_EQ(supported_type_names(), "F32, F16, BF16, Q4_0, Q8_0, Q6_K, TQ1_0, TQ2_0, I2_S");
}

// act_bytes is the block layouts' size, and the reference quantizers write nothing past it (matmul
// packs the tokens act_bytes apart).
TEST(WeightFormats, ActivationBytesMatchTheBlockLayouts) {
  EXPECT_EQ(act_bytes(ActFormat::q8_k, 512), 2 * sizeof(BlockQ8K));
  EXPECT_EQ(act_bytes(ActFormat::q8_0, 512), 16 * sizeof(BlockQ8_0));
  EXPECT_EQ(act_bytes(ActFormat::i8, 384), 384u);
  EXPECT_EQ(act_bytes(ActFormat::f16, 100), 200u);
  EXPECT_EQ(act_bytes(ActFormat::f32, 100), 0u);
  std::vector<float> x(512, 0.25f);
  for (const WeightFormat& f : weight_formats()) {
    const size_t n = act_bytes(f.act, 512);
    std::vector<unsigned char> out(n + 64, 0xA5);
    quantize_activations(reference_table(), f.act, x.data(), 512, out.data());
    for (size_t i = n; i < out.size(); ++i) ASSERT_EQ(out[i], 0xA5) << gguf::type_name(f.type) << " wrote byte " << i;
  }
}

}  // namespace
}  // namespace bitnet::kernels
