// bitnet::Error: exit codes of CLI.md and the "error:"/"caused by:" format.
#include <gtest/gtest.h>

#include "core/base/checked.hpp"
#include "core/base/error.hpp"

namespace bitnet {
namespace {

TEST(Error, ExitCodesMatchTheCliContract) {
  EXPECT_EQ(Error(ErrorCode::failure, "x").exit_code(), 1);
  EXPECT_EQ(Error(ErrorCode::usage, "x").exit_code(), 2);
  EXPECT_EQ(Error(ErrorCode::invalid_input, "x").exit_code(), 3);
  EXPECT_EQ(Error(ErrorCode::fixture, "x").exit_code(), 4);
  EXPECT_EQ(Error(ErrorCode::crossval_mismatch, "x").exit_code(), 5);
  EXPECT_EQ(Error(ErrorCode::memcheck, "x").exit_code(), 6);
  EXPECT_EQ(Error(ErrorCode::timeout, "x").exit_code(), 124);
  EXPECT_EQ(Error(ErrorCode::interrupted, "x").exit_code(), 130);
  EXPECT_EQ(Error(ErrorCode::terminated, "x").exit_code(), 143);
}

TEST(Error, WrapPutsTheNewMessageFirstAndFormatsCauses) {
  Error e = make_error(ErrorCode::invalid_input, "tensor '{}' truncated", "a");
  e.wrap("cannot load model m.gguf");
  ASSERT_EQ(e.chain().size(), 2u);
  EXPECT_STREQ(e.what(), "cannot load model m.gguf");
  EXPECT_EQ(e.format(), "error: cannot load model m.gguf\n  caused by: tensor 'a' truncated\n");
  EXPECT_EQ(e.code(), ErrorCode::invalid_input);
}

TEST(Checked, DetectsOverflow) {
  EXPECT_EQ(checked_add(UINT64_MAX, uint64_t{1}), std::nullopt);
  EXPECT_EQ(checked_add(uint64_t{2}, uint64_t{3}), 5u);
  EXPECT_EQ(checked_mul(uint64_t{1} << 32, uint64_t{1} << 32), std::nullopt);
  EXPECT_EQ(checked_mul(int64_t{1} << 62, int64_t{2}), std::nullopt);
  EXPECT_EQ(checked_align_up(33, 32), 64u);
  EXPECT_EQ(checked_align_up(64, 32), 64u);
  EXPECT_EQ(checked_align_up(UINT64_MAX - 3, 32), std::nullopt);
  EXPECT_TRUE(is_power_of_two(32));
  EXPECT_FALSE(is_power_of_two(0));
  EXPECT_FALSE(is_power_of_two(48));
}

}  // namespace
}  // namespace bitnet
