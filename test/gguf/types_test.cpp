// The ggml type table: sizes for the types BitNet files use, the I2_S whole-tensor rule, hints.
#include <gtest/gtest.h>

#include <vector>

#include "core/gguf/types.hpp"

namespace bitnet::gguf {
namespace {

uint64_t nbytes(GgmlType t, std::vector<int64_t> ne) { return *tensor_nbytes(traits(t), ne); }

TEST(GgmlTypes, BlockGeometryOfEngineTypes) {
  // SPEC.md 1.2 / 1.5: bytes per block.
  EXPECT_EQ(nbytes(GgmlType::F32, {64, 3}), 64u * 3 * 4);
  EXPECT_EQ(nbytes(GgmlType::F16, {64, 3}), 64u * 3 * 2);
  EXPECT_EQ(nbytes(GgmlType::BF16, {64}), 128u);
  EXPECT_EQ(nbytes(GgmlType::Q4_0, {64, 2}), 2u * 2 * 18);
  EXPECT_EQ(nbytes(GgmlType::Q8_0, {64, 2}), 2u * 2 * 34);
  EXPECT_EQ(nbytes(GgmlType::Q6_K, {256, 2}), 2u * 210);
  EXPECT_EQ(nbytes(GgmlType::TQ1_0, {512, 3}), 2u * 3 * 54);
  EXPECT_EQ(nbytes(GgmlType::TQ2_0, {512, 3}), 2u * 3 * 66);
}

TEST(GgmlTypes, I2sIsQuarterOfElementsPlus32) {
  // The 2B-4T sizes quoted in SPEC.md 1.3.
  EXPECT_EQ(nbytes(GgmlType::I2_S, {2560, 2560}), 1638432u);
  EXPECT_EQ(nbytes(GgmlType::I2_S, {2560, 640}), 409632u);
  EXPECT_EQ(nbytes(GgmlType::I2_S, {2560, 6912}), 4423712u);
  EXPECT_TRUE(shape_problem(traits(GgmlType::I2_S), std::vector<int64_t>{8640, 3200}).empty())
      << "3B ffn_down rows are not multiples of 128 but the tensor is";
  EXPECT_FALSE(shape_problem(traits(GgmlType::I2_S), std::vector<int64_t>{100, 3}).empty());
}

TEST(GgmlTypes, RowsMustBeWholeBlocks) {
  EXPECT_NE(shape_problem(traits(GgmlType::TQ2_0), std::vector<int64_t>{100, 2}).find("256"), std::string::npos);
  EXPECT_TRUE(shape_problem(traits(GgmlType::F32), std::vector<int64_t>{7, 3}).empty());
}

TEST(GgmlTypes, OverflowIsReportedNotWrapped) {
  EXPECT_EQ(tensor_nbytes(traits(GgmlType::F32), std::vector<int64_t>{int64_t{1} << 62, 4}), std::nullopt);
}

TEST(GgmlTypes, NamesAndIds) {
  EXPECT_EQ(type_name(GgmlType::TQ2_0), "TQ2_0");
  EXPECT_EQ(type_from_name("tq1_0"), GgmlType::TQ1_0);
  EXPECT_EQ(type_from_name("i2_s"), GgmlType::I2_S);
  EXPECT_EQ(type_from_name("nope"), std::nullopt);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::I2_S), 36u);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::TQ1_0), 34u);
  EXPECT_EQ(find_type(38), nullptr);
  EXPECT_NE(unknown_type_hint(38).find("TL1"), std::string::npos);
  EXPECT_NE(unknown_type_hint(39).find("MXFP4"), std::string::npos);
  EXPECT_NE(unknown_type_hint(150).find("ik_llama"), std::string::npos);
}

}  // namespace
}  // namespace bitnet::gguf
