// Malformed GGUF input: one test per case of the rejection checklist (PEERS.md 4.3). Container
// cases (items 1-17, 20) go through GgufFile::open on files written byte by byte; model-level
// cases (items 9, 18, 19) through read_config / read_tokenizer_info / check_tensors on files
// made with GgufWriter. Every rejection must be a bitnet::Error with code invalid_input whose
// message names the file, the field, the bad value and the limit, and for container errors
// "at byte N" with the offset of the record or field at fault.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/base/error.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "core/model/metadata.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/fixtures.hpp"

namespace bitnet {
namespace {

using gguf::GgmlType;
using gguf::GgufFile;
using gguf::ValueType;
using test::GgufBytes;

constexpr auto kF32 = GgmlType::F32;
constexpr uint32_t kU32 = static_cast<uint32_t>(ValueType::u32);

std::string at(uint64_t n) { return fmt::format("at byte {}: ", n); }

// Runs `f`, which must throw bitnet::Error(invalid_input) whose message starts with
// "FILE: " and contains every part. Returns the message ("" when it did not throw).
template <typename F>
std::string expect_invalid(const std::filesystem::path& file, std::initializer_list<std::string_view> parts, F&& f) {
  std::string msg;
  try {
    f();
    ADD_FAILURE() << file << " was accepted; expected an error containing '" << *parts.begin() << "'";
    return msg;
  } catch (const Error& e) {
    msg = e.what();
    EXPECT_EQ(e.code(), ErrorCode::invalid_input) << msg;
    EXPECT_EQ(e.exit_code(), 3);
    EXPECT_EQ(e.chain().size(), 1u) << e.format();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected bitnet::Error, got another exception: " << e.what();
    return msg;
  }
  EXPECT_TRUE(msg.starts_with(file.string() + ": ")) << "message does not start with the file name: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message spans lines: " << msg;
  for (std::string_view p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "'\n  message: " << msg;
  return msg;
}

class Malformed : public ::testing::Test {
 protected:
  test::TempDir dir_;

  std::filesystem::path write(const GgufBytes& b, const std::string& name = "bad.gguf") {
    return dir_.write(name, b);
  }
  // GgufFile::open on these bytes must fail with a message containing every part.
  std::string rejects(const GgufBytes& b, std::initializer_list<std::string_view> parts) {
    std::filesystem::path p = write(b);
    return expect_invalid(p, parts, [&] { (void)GgufFile::open(p); });
  }
  GgufFile accepts(const GgufBytes& b) { return GgufFile::open(write(b, "good.gguf")); }
};

// The baseline every container test breaks one thing of: one string KV, one F32 tensor of 8
// elements (32 bytes) at data offset 0, default alignment 32.
//   0 header | 24 KV general.architecture | 69 tensor info 'w' | 102 padding | 128 data | 160 end
GgufBytes minimal() {
  GgufBytes b;
  b.header(1, 1).kv_str("general.architecture", "llama").tensor("w", {8}, kF32, 0).pad(32).fill(32, 0x3f);
  return b;
}

TEST_F(Malformed, BaselineMinimalFileIsValid) {
  GgufBytes b = minimal();
  ASSERT_EQ(b.size(), 160u);
  GgufFile f = accepts(b);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.data_offset(), 128u);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].nbytes, 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
}

// ---- 1. too short / empty / directory / missing ----

TEST_F(Malformed, EmptyFile) { rejects(GgufBytes{}, {at(0), "empty", "0 bytes"}); }

TEST_F(Malformed, ShorterThanTheHeader) {
  GgufBytes b = minimal();
  b.truncate(23);
  rejects(b, {at(0), "23 bytes", "24-byte GGUF header"});
}

TEST_F(Malformed, HeaderOnlyFileWithNoKeysAndNoTensorsIsAccepted) {
  GgufBytes b;
  b.header(0, 0);
  GgufFile f = accepts(b);
  EXPECT_TRUE(f.kvs().empty());
  EXPECT_TRUE(f.tensors().empty());
}

TEST_F(Malformed, Directory) {
  std::filesystem::path d = dir_ / "model.gguf";
  std::filesystem::create_directory(d);
  expect_invalid(d, {"is a directory"}, [&] { (void)GgufFile::open(d); });
}

TEST_F(Malformed, NonexistentPath) {
  std::filesystem::path p = dir_ / "no-such-model.gguf";
  expect_invalid(p, {"no such file"}, [&] { (void)GgufFile::open(p); });
}

// ---- 2. magic ----

TEST_F(Malformed, BadMagic) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(0, 0x464c457f);  // "\x7fELF": an executable
  rejects(b, {at(0), "bad magic '\\x7fELF'", "expected 'GGUF'"});
}

TEST_F(Malformed, ByteSwappedMagicIsABigEndianFile) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(0, 0x47475546);  // bytes "FUGG"
  rejects(b, {at(0), "'FUGG'", "big-endian"});
}

TEST_F(Malformed, LegacyMagicsInBothByteOrders) {
  // ggml wrote the magic as a u32 (0x67676d6c == "ggml"), so a file holds "lmgg"; accept neither.
  for (std::string_view magic : {"ggml", "lmgg", "ggjt", "tjgg", "ggmf", "fmgg"}) {
    SCOPED_TRACE(magic);
    GgufBytes b;
    b.chars(magic).zeros(60);
    std::string m = rejects(b, {at(0), "legacy GGML format", "convert it first"});
    std::string legacy(magic);
    if (legacy.starts_with("gg")) {
      EXPECT_NE(m.find("'" + legacy + "'"), std::string::npos) << m;
    } else {
      std::reverse(legacy.begin(), legacy.end());
      EXPECT_NE(m.find("'" + legacy + "'"), std::string::npos) << m;
    }
  }
}

// ---- 3. version ----

TEST_F(Malformed, Version0) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(4, 0);
  rejects(b, {at(4), "version 0", "supported: 2 and 3"});
}

TEST_F(Malformed, Version1UsedThirtyTwoBitCounts) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(4, 1);
  rejects(b, {at(4), "version 1", "32-bit counts"});
}

TEST_F(Malformed, Version4IsNewerThanSupported) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(4, 4);
  rejects(b, {at(4), "version 4", "(2 and 3)"});
}

TEST_F(Malformed, ByteSwappedVersion3IsABigEndianFile) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(4, 0x03000000);
  rejects(b, {at(4), "0x03000000", "byte-swapped", "big-endian"});
}

TEST_F(Malformed, Version2HasTheSameLayoutAndIsAccepted) {
  GgufBytes b = minimal();
  b.patch<uint32_t>(4, 2);
  EXPECT_EQ(accepts(b).version(), 2u);
}

// ---- 4. counts ----
// A count is checked against the bytes left before anything is reserved for it: under ASan a
// 2^62-entry reservation would abort the test instead of failing it.

TEST_F(Malformed, MetadataCountTooLargeForTheFile) {
  GgufBytes b = minimal();
  b.patch<uint64_t>(16, uint64_t{1} << 62);
  rejects(b, {at(16), "metadata count 4611686018427387904", "cannot fit in the 136 bytes left",
              "at least 14 bytes"});
}

TEST_F(Malformed, MetadataCountNegativeAsInt64) {
  GgufBytes b = minimal();
  b.patch<uint64_t>(16, (uint64_t{1} << 63) + 1);
  rejects(b, {at(16), "metadata count 9223372036854775809", "negative"});
}

TEST_F(Malformed, TensorCountTooLargeForTheFile) {
  GgufBytes b = minimal();
  b.patch<uint64_t>(8, uint64_t{1} << 62);
  rejects(b, {at(8), "tensor count 4611686018427387904", "cannot fit", "at least 33 bytes"});
}

TEST_F(Malformed, TensorCountNegativeAsInt64) {
  GgufBytes b = minimal();
  b.patch<uint64_t>(8, (uint64_t{1} << 63) + 1);
  rejects(b, {at(8), "tensor count 9223372036854775809", "negative"});
}

// A count that does fit a (sparse) 256 GiB file must still not turn into a reservation
// proportional to it before a single record has been read.
class MalformedSparse : public Malformed {
 protected:
  static constexpr uint64_t kSize = uint64_t{1} << 38;
  std::string rejects_sparse(const GgufBytes& head, std::initializer_list<std::string_view> parts) {
    std::filesystem::path p = write(head);
    std::filesystem::resize_file(p, kSize);  // a hole: no disk space used
    return expect_invalid(p, parts, [&] { (void)GgufFile::open(p); });
  }
};

TEST_F(MalformedSparse, PlausibleMetadataCountDoesNotDriveAHugeAllocation) {
  GgufBytes b;
  b.header(0, (kSize - 24) / 14);
  rejects_sparse(b, {at(24), "metadata key #0 is empty"});
}

TEST_F(MalformedSparse, PlausibleTensorCountDoesNotDriveAHugeAllocation) {
  GgufBytes b;
  b.header((kSize - 24) / 33, 0);
  rejects_sparse(b, {at(24), "tensor #0 has an empty name"});
}

TEST_F(MalformedSparse, PlausibleStringArrayCountDoesNotDriveAHugeAllocation) {
  GgufBytes b;
  b.header(0, 1).kv_array("tokenizer.ggml.tokens", ValueType::string, (kSize >> 3) - 16);
  const uint64_t s0 = b.size();
  b.u64(uint64_t{1} << 50);
  rejects_sparse(b, {at(s0), "string #0 of array 'tokenizer.ggml.tokens'", "length 1125899906842624",
                     "bytes left"});
}

// ---- 5. string lengths ----

TEST_F(Malformed, KeyLongerThanTheBytesLeft) {
  GgufBytes b;
  b.header(0, 1).u64(100).chars("general.");
  rejects(b, {at(24), "metadata key #0 length 100", "exceeds the 8 bytes left"});
}

TEST_F(Malformed, KeyOverThe1024ByteLimit) {
  GgufBytes b;
  b.header(0, 1).kv_u32(std::string(1025, 'k'), 1);
  rejects(b, {at(24), "metadata key #0 length 1025", "limit of 1024 bytes"});
}

TEST_F(Malformed, KeyOfExactly1024BytesIsAccepted) {
  GgufBytes b;
  b.header(0, 1).kv_u32(std::string(1024, 'k'), 7);
  EXPECT_EQ(accepts(b).get_uint(std::string(1024, 'k')), 7u);
}

TEST_F(Malformed, KeyLengthOfTwoToThe64MinusOne) {
  GgufBytes b;
  b.header(0, 1).u64(UINT64_MAX).zeros(32);
  rejects(b, {at(24), "length 18446744073709551615", "limit of 1024 bytes"});
}

TEST_F(Malformed, StringValueLongerThanTheBytesLeft) {
  GgufBytes b;
  b.header(0, 1).kv("general.name", ValueType::string);
  const uint64_t len_at = b.size();
  b.u64(1000).chars("abc");
  rejects(b, {at(len_at), "value of key 'general.name' length 1000", "exceeds the 3 bytes left"});
}

TEST_F(Malformed, ArrayStringLongerThanTheBytesLeft) {
  GgufBytes b;
  b.header(0, 1).kv_array("tokenizer.ggml.tokens", ValueType::string, 2).str("a");
  const uint64_t s1 = b.size();
  b.u64(50).chars("bcd");
  rejects(b, {at(s1), "string #1 of array 'tokenizer.ggml.tokens' length 50", "exceeds the 3 bytes left"});
}

TEST_F(Malformed, TensorNameLongerThanTheBytesLeft) {
  GgufBytes b;
  b.header(1, 0);
  b.u64(5000).chars("blk.0.attn_q.weight").zeros(40);
  rejects(b, {at(24), "name of tensor #0 length 5000", "exceeds the 59 bytes left"});
}

TEST_F(Malformed, FileEndsInsideAKeyValue) {
  GgufBytes b;
  b.header(0, 1).str("general.alignment").u32(kU32);
  const uint64_t v = b.size();
  b.u8(32);
  rejects(b, {at(v), "value of key 'general.alignment' needs 4 bytes but only 1 remain"});
}

TEST_F(Malformed, FileEndsInsideATensorInfo) {
  GgufBytes b = minimal();
  b.truncate(69 + 8 + 1 + 4 + 3);  // inside ne[0] of tensor 'w'
  rejects(b, {at(69 + 8 + 1 + 4), "dimension 0 of tensor 'w' needs 8 bytes but only 3 remain"});
}

// ---- 6. keys ----

TEST_F(Malformed, EmptyKey) {
  GgufBytes b;
  b.header(0, 1).kv_u32("", 1);
  rejects(b, {at(24), "metadata key #0 is empty"});
}

TEST_F(Malformed, DuplicateKey) {
  GgufBytes b;
  b.header(0, 2).kv_str("general.name", "a");
  const uint64_t second = b.size();
  b.kv_str("general.name", "b");
  rejects(b, {at(second), "duplicate metadata key 'general.name'"});
}

// Policy: keys are printable ASCII without spaces (every key llama.cpp or bitnet.cpp writes is).
TEST_F(Malformed, NonAsciiKeyIsRejected) {
  GgufBytes b;
  b.header(0, 2).kv_u32("general.ok", 1);
  const uint64_t second = b.size();
  b.kv_u32("g\xc3\xa9n\xc3\xa9ral.name", 1);
  rejects(b, {at(second), "metadata key #1", "not printable ASCII"});
}

TEST_F(Malformed, KeyWithAControlCharacterIsRejected) {
  GgufBytes b;
  b.header(0, 1).kv_u32("general\n.name", 1);
  rejects(b, {at(24), "metadata key #0", "not printable ASCII"});
}

// ---- 7. value types ----

TEST_F(Malformed, ValueType13) {
  GgufBytes b;
  b.header(0, 1).str("general.x");
  const uint64_t type_at = b.size();
  b.u32(13).u32(0);
  rejects(b, {at(type_at), "key 'general.x' has value type 13", "last valid type (12)"});
}

TEST_F(Malformed, ValueTypeHuge) {
  GgufBytes b;
  b.header(0, 1).str("general.x");
  const uint64_t type_at = b.size();
  b.u32(0xffffffff).u32(0);
  rejects(b, {at(type_at), "value type 4294967295"});
}

TEST_F(Malformed, ArrayOfArrays) {
  GgufBytes b;
  b.header(0, 1).kv("general.nested", ValueType::array);
  const uint64_t elem_at = b.size();
  b.u32(static_cast<uint32_t>(ValueType::array)).u64(1).u32(kU32).u64(1).u32(5);
  rejects(b, {at(elem_at), "array 'general.nested' holds arrays", "not supported"});
}

TEST_F(Malformed, ArrayElementType13) {
  GgufBytes b;
  b.header(0, 1).kv("general.a", ValueType::array);
  const uint64_t elem_at = b.size();
  b.u32(13).u64(1).u32(0);
  rejects(b, {at(elem_at), "array 'general.a' has element type 13", "(12)"});
}

TEST_F(Malformed, ArrayCountTimesElementSizeOverflows) {
  GgufBytes b;
  b.header(0, 1).kv("general.a", ValueType::array).u32(static_cast<uint32_t>(ValueType::u64));
  const uint64_t count_at = b.size();
  b.u64(uint64_t{1} << 61).u64(0);  // 2^61 x 8 bytes == 2^64
  rejects(b, {at(count_at), "array 'general.a' of 2305843009213693952 u64 elements", "more than 2^64"});
}

TEST_F(Malformed, ArrayLongerThanTheBytesLeft) {
  GgufBytes b;
  b.header(0, 1).kv("general.a", ValueType::array).u32(kU32);
  const uint64_t count_at = b.size();
  b.u64(1000).u32(1).u32(2);
  rejects(b, {at(count_at), "1000 u32 elements needs 4000 bytes but only 8 remain"});
}

TEST_F(Malformed, StringArrayCountBeyondTheBytesLeft) {
  GgufBytes b;
  b.header(0, 1).kv("tokenizer.ggml.tokens", ValueType::array).u32(static_cast<uint32_t>(ValueType::string));
  const uint64_t count_at = b.size();
  b.u64(uint64_t{1} << 40).str("a");
  rejects(b, {at(count_at), "claims 1099511627776 strings but only 9 bytes remain"});
}

// Policy: a bool byte other than 0/1 is corruption, rejected rather than normalized.
TEST_F(Malformed, BoolByte2) {
  GgufBytes b;
  b.header(0, 1).kv("tokenizer.ggml.add_bos_token", ValueType::boolean);
  const uint64_t v = b.size();
  b.u8(2);
  rejects(b, {at(v), "bool key 'tokenizer.ggml.add_bos_token' holds 2", "expected 0 or 1"});
}

TEST_F(Malformed, BoolByte2InAnArray) {
  GgufBytes b;
  b.header(0, 1).kv_array("general.flags", ValueType::boolean, 3);
  const uint64_t first = b.size();
  b.u8(1).u8(2).u8(0);
  rejects(b, {at(first + 1), "element 1 of bool array 'general.flags' holds 2", "expected 0 or 1"});
}

// ---- 8. general.alignment ----

TEST_F(Malformed, AlignmentAsString) {
  GgufBytes b;
  b.header(0, 2).kv_str("general.name", "x");
  const uint64_t kv_at = b.size();
  b.kv_str("general.alignment", "32");
  rejects(b, {at(kv_at), "'general.alignment' has type string, expected u32"});
}

TEST_F(Malformed, AlignmentZero) {
  GgufBytes b;
  b.header(0, 1).kv_u32("general.alignment", 0);
  rejects(b, {at(24), "'general.alignment' is 0", "non-zero power of two"});
}

TEST_F(Malformed, AlignmentThree) {
  GgufBytes b;
  b.header(0, 1).kv_u32("general.alignment", 3);
  rejects(b, {at(24), "'general.alignment' is 3", "non-zero power of two"});
}

TEST_F(Malformed, Alignment64IsHonoured) {
  GgufBytes b;
  b.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {16}, kF32, 0).pad(64).zeros(64);
  GgufFile f = accepts(b);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
}

// ---- 10. tensor names ----

TEST_F(Malformed, TensorNameEmpty) {
  GgufBytes b;
  b.header(1, 0).tensor("", {8}, kF32, 0).pad(32).zeros(32);
  rejects(b, {at(24), "tensor #0 has an empty name"});
}

TEST_F(Malformed, TensorName64Bytes) {
  GgufBytes b;
  b.header(1, 0).tensor(std::string(64, 'n'), {8}, kF32, 0).pad(32).zeros(32);
  rejects(b, {at(24), "tensor #0 name", "is 64 bytes; the limit is 63"});
}

TEST_F(Malformed, TensorName63BytesIsAccepted) {
  GgufBytes b;
  b.header(1, 0).tensor(std::string(63, 'n'), {8}, kF32, 0).pad(32).zeros(32);
  EXPECT_NE(accepts(b).find_tensor(std::string(63, 'n')), nullptr);
}

TEST_F(Malformed, DuplicateTensorName) {
  GgufBytes b;
  b.header(2, 0).tensor("w", {8}, kF32, 0);
  const uint64_t second = b.size();
  b.tensor("w", {8}, kF32, 32).pad(32).zeros(64);
  rejects(b, {at(second), "duplicate tensor name 'w'"});
}

// ---- 11. dimensions ----

TEST_F(Malformed, ZeroDimensions) {
  GgufBytes b;
  b.header(1, 0).str("w");
  const uint64_t dims_at = b.size();
  b.u32(0).u32(0).u64(0).pad(32);
  rejects(b, {at(dims_at), "tensor 'w' has 0 dimensions", "supported is 1 to 4"});
}

TEST_F(Malformed, FiveDimensions) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {1, 1, 1, 1, 8}, kF32, 0).pad(32).zeros(32);
  rejects(b, {at(24 + 8 + 1), "tensor 'w' has 5 dimensions", "supported is 1 to 4"});
}

TEST_F(Malformed, DimensionWithTheTopBitSet) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {8, uint64_t{1} << 63}, kF32, 0).pad(32).zeros(32);
  rejects(b, {at(24 + 8 + 1 + 4 + 8), "tensor 'w' dimension 1 is -9223372036854775808", "negative as int64"});
}

TEST_F(Malformed, ElementCountOverflowsInt64) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {uint64_t{1} << 31, uint64_t{1} << 32}, kF32, 0).pad(32).zeros(32);
  rejects(b, {at(24 + 8 + 1 + 4 + 8), "tensor 'w' element count overflows 64 bits at dimension 1 (4294967296)"});
}

TEST_F(Malformed, ByteSizeOverflows) {
  GgufBytes b;  // 2^62 F32 elements fit int64, their 2^64 bytes do not
  b.header(1, 0).tensor("w", {uint64_t{1} << 62}, kF32, 0).pad(32).zeros(32);
  rejects(b, {at(24), "tensor 'w'", "4611686018427387904 elements", "byte size overflows 64 bits"});
}

TEST_F(Malformed, ByteSizeWrappingToZero) {
  GgufBytes b;  // 2^61 F64 elements: exactly 2^64 bytes, which is 0 in 64-bit arithmetic
  b.header(1, 0).tensor("w", {uint64_t{1} << 61}, GgmlType::F64, 0).pad(32);
  rejects(b, {at(24), "tensor 'w'", "byte size overflows 64 bits"});
}

// ---- 12. tensor type ids this build does not know ----

struct UnknownType {
  uint32_t id;
  std::vector<std::string_view> hint;
};

TEST_F(Malformed, UnknownTypeIdsNameTheirFork) {
  const UnknownType cases[] = {
      {37, {"I8_S", "bitnet.cpp", "never valid in a file"}},
      {38, {"TL1", "bitnet.cpp", "re-quantize to I2_S or TQ2_0"}},
      {39, {"TL2", "bitnet.cpp", "MXFP4"}},
      {42, {"bitnet.cpp", "TL"}},
      {140, {"ik_llama.cpp", "133-158", "IQ1_BN"}},
      {99, {"type 99 is not a ggml type this build knows"}},
  };
  for (const UnknownType& c : cases) {
    SCOPED_TRACE(c.id);
    GgufBytes b;
    b.header(1, 0).tensor("blk.0.attn_q.weight", {256, 4}, c.id, 0).pad(32).zeros(1024);
    const uint64_t type_at = 24 + 8 + 19 + 4 + 16;
    std::string m = rejects(b, {at(type_at), fmt::format("tensor 'blk.0.attn_q.weight' has ggml type {}: ", c.id)});
    for (std::string_view h : c.hint) EXPECT_NE(m.find(h), std::string::npos) << "hint lacks '" << h << "': " << m;
  }
}

// ---- 13. block geometry ----

TEST_F(Malformed, Tq2_0RowOf100Elements) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {100, 4}, GgmlType::TQ2_0, 0).pad(32).zeros(512);
  rejects(b, {at(24), "tensor 'w' (TQ2_0, shape 100x4)", "row length 100 is not a multiple of the TQ2_0 block size 256"});
}

TEST_F(Malformed, I2sElementCountNotAMultipleOf128) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {100, 3}, GgmlType::I2_S, 0).pad(32).zeros(512);
  rejects(b, {at(24), "tensor 'w' (I2_S, shape 100x3)", "groups of 128 elements; 300 elements is not a multiple"});
}

TEST_F(Malformed, I2sSizeRuleIsQuarterBytePerElementPlus32) {
  // 512 elements: 128 bytes of 2-bit codes + 32 bytes holding the f32 scale. The generic
  // block rule would ask for 4x that; a file sized by it must not be required.
  GgufBytes b;
  b.header(1, 0).tensor("w", {256, 2}, GgmlType::I2_S, 0).pad(32);
  const uint64_t data = b.size();
  b.fill(160, 0xaa);
  GgufFile f = accepts(b);
  const gguf::TensorInfo* t = f.find_tensor("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->nbytes, 512u / 4 + 32);
  EXPECT_EQ(f.data_offset(), data);
  EXPECT_EQ(f.tensor_data(*t).size(), 160u);

  b.truncate(b.size() - 1);  // one byte short of n/4 + 32
  rejects(b, {at(24), "tensor 'w'", "size 160", fmt::format("expected at least {} bytes, file has {}", data + 160, data + 159)});
}

// ---- 14-15. data offsets ----

TEST_F(Malformed, OffsetNotAligned) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {8}, kF32, 16).pad(32).zeros(64);
  rejects(b, {at(24 + 8 + 1 + 4 + 8 + 4), "tensor 'w' data offset 16 is not a multiple of the alignment 32"});
}

TEST_F(Malformed, OverlappingOffsets) {
  GgufBytes b;
  b.header(2, 0).tensor("a", {16}, kF32, 0);
  const uint64_t second = b.size();
  b.tensor("b", {8}, kF32, 32).pad(32).zeros(96);
  rejects(b, {at(second), "tensor 'b' at data offset 32 overlaps or precedes tensor 'a', which ends at 64"});
}

TEST_F(Malformed, OutOfOrderOffsets) {
  GgufBytes b;  // the right bytes, but 'a' claims the second slot and 'b' the first
  b.header(2, 0).tensor("a", {8}, kF32, 32).tensor("b", {8}, kF32, 0).pad(32).zeros(64);
  rejects(b, {at(24), "first tensor 'a' starts at data offset 32, expected 0", "in order"});
}

TEST_F(Malformed, GapBetweenTensors) {
  GgufBytes b;
  b.header(2, 0).tensor("a", {8}, kF32, 0);
  const uint64_t second = b.size();
  b.tensor("b", {8}, kF32, 64).pad(32).zeros(96);
  rejects(b, {at(second), "tensor 'b' at data offset 64 leaves a gap after tensor 'a', which ends at 32"});
}

TEST_F(Malformed, OffsetPlusSizePastTheEndOfTheFile) {
  GgufBytes b = minimal();  // data at 128, 32 bytes: the file must be 160 bytes
  b.truncate(150);
  rejects(b, {at(69), "tensor 'w': data offset 0 + size 32", "truncated", "expected at least 160 bytes, file has 150"});
}

TEST_F(Malformed, SecondTensorPastTheEndNamesItAndTheFullSize) {
  GgufBytes b;
  b.header(3, 0).tensor("a", {8}, kF32, 0);
  const uint64_t second = b.size();
  b.tensor("b", {16}, kF32, 32).tensor("c", {8}, kF32, 96).pad(32);
  const uint64_t data = b.size();
  b.zeros(40);  // 'a' and 8 bytes of 'b'
  rejects(b, {at(second), "tensor 'b'", fmt::format("expected at least {} bytes, file has {}", data + 128, data + 40)});
}

TEST_F(Malformed, OffsetPlusSizeOverflows64Bits) {
  // (2^61 - 4) F64 elements: 2^64 - 32 bytes, representable, but not once added to the
  // data section's start.
  GgufBytes b;
  b.header(1, 0).tensor("w", {(uint64_t{1} << 61) - 4}, GgmlType::F64, 0).pad(32).zeros(32);
  rejects(b, {at(24), "tensor 'w': data offset 0 + size 18446744073709551584 overflows 64 bits"});
}

TEST_F(Malformed, OffsetNearTwoToThe64) {
  GgufBytes b;
  b.header(2, 0).tensor("a", {8}, kF32, 0);
  const uint64_t second = b.size();
  b.tensor("b", {8}, kF32, UINT64_MAX - 31).pad(32).zeros(64);
  rejects(b, {at(second), "tensor 'b' at data offset 18446744073709551584", "gap"});
}

// ---- 16. truncated download ----

TEST_F(Malformed, TruncatedDataSectionOfARealModel) {
  const std::filesystem::path src = test::fixture_file("models/bitnet-tiny-i2_s.gguf");
  uint64_t full_end = 0;
  std::vector<std::pair<std::string, uint64_t>> ends;  // tensor, absolute end offset
  {
    GgufFile f = GgufFile::open(src);
    for (const auto& t : f.tensors()) {
      ends.emplace_back(t.name, f.data_offset() + t.offset + t.nbytes);
      full_end = std::max(full_end, ends.back().second);
    }
  }
  const uint64_t size = std::filesystem::file_size(src);
  ASSERT_LE(full_end, size);
  const uint64_t half = size / 2;
  std::filesystem::path p = dir_ / "bitnet-tiny-i2_s.gguf";
  std::filesystem::copy_file(src, p);
  std::filesystem::permissions(p, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  std::filesystem::resize_file(p, half);

  std::string first_cut;  // the first tensor (in file order) that no longer fits
  for (const auto& [name, end] : ends)
    if (end > half) {
      first_cut = name;
      break;
    }
  ASSERT_FALSE(first_cut.empty());
  expect_invalid(p,
                 {fmt::format("tensor '{}'", first_cut),
                  fmt::format("expected at least {} bytes, file has {}", full_end, half), "truncated",
                  "the download is probably incomplete"},
                 [&] { (void)GgufFile::open(p); });
}

// ---- 17. zero-element tensors ----
// Policy: accepted, as llama.cpp does. They occupy no bytes (the next tensor starts at the same
// offset) and their data view is empty.

TEST_F(Malformed, ZeroElementTensorsAreAcceptedAndTakeNoSpace) {
  GgufBytes b;
  b.header(3, 0)
      .tensor("empty", {0}, kF32, 0)
      .tensor("w", {8}, kF32, 0)
      .tensor("empty2", {8, 0}, kF32, 32)
      .pad(32)
      .zeros(32);
  GgufFile f = accepts(b);
  ASSERT_EQ(f.tensors().size(), 3u);
  for (const char* name : {"empty", "empty2"}) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->n_elements(), 0);
    EXPECT_EQ(t->nbytes, 0u);
    EXPECT_TRUE(f.tensor_data(*t).empty());
  }
  EXPECT_EQ(f.find_tensor("w")->nbytes, 32u);
}

// ---- 20. never crash: every prefix and every single-byte corruption of a valid file ----

TEST_F(Malformed, EveryTruncationAndByteFlipIsAnErrorOrAValidFile) {
  GgufBytes good;
  good.header(2, 4)
      .kv_str("general.architecture", "llama")
      .kv_u32("general.alignment", 32)
      .kv_array("tokenizer.ggml.tokens", ValueType::string, 2)
      .str("a")
      .str("bc")
      .kv_array("tokenizer.ggml.scores", ValueType::f32, 2)
      .f32(0)
      .f32(1)
      .tensor("a", {8}, kF32, 0)
      .tensor("b", {32, 2}, GgmlType::Q8_0, 32)
      .pad(32)
      .fill(32 + 68, 0x11);
  accepts(good);
  const std::filesystem::path p = dir_ / "mutant.gguf";
  auto check = [&](const std::vector<std::byte>& bytes, const std::string& what) {
    test::write_file(p, bytes);
    try {
      (void)GgufFile::open(p);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_input) << what << ": " << e.what();
      EXPECT_NE(std::string_view(e.what()).find(": at byte "), std::string_view::npos) << what << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": non-bitnet exception " << e.what();
    }
  };
  const std::vector<std::byte>& all = good.bytes();
  for (size_t n = 0; n < all.size(); ++n) check({all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n)}, fmt::format("prefix {}", n));
  for (size_t i = 0; i < all.size(); ++i) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::vector<std::byte> m = all;
      m[i] = std::byte{v};
      check(m, fmt::format("byte {} = {:#04x}", i, v));
    }
  }
}

// ============================ model-level checks (9, 18, 19) ============================

// A tiny but complete model written with GgufWriter. Tests break one key (replace it, or drop
// it by replacing it with nothing) or one tensor.
struct TinyModel {
  std::string arch = "bitnet-b1.58";
  uint32_t n_embd = 32, n_ff = 64, n_head = 4, n_head_kv = 2, n_layer = 1, n_ctx = 128;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"};
  // key -> what to write instead (may write nothing, or a different type)
  std::map<std::string, std::function<void(gguf::GgufWriter&, const std::string&)>> replace;
  std::set<std::string> drop_tensors;
  std::map<std::string, std::vector<int64_t>> reshape;

  std::string key(std::string_view suffix) const { return arch + "." + std::string(suffix); }
  void drop(const std::string& k) { replace[k] = [](gguf::GgufWriter&, const std::string&) {}; }

  std::filesystem::path write(const std::filesystem::path& p) const {
    static const std::vector<std::byte> zeros(1 << 16);
    gguf::GgufWriter w;
    auto put = [&](const std::string& k, const std::function<void()>& normal) {
      if (auto it = replace.find(k); it != replace.end()) it->second(w, k);
      else normal();
    };
    put("general.architecture", [&] { w.set_string("general.architecture", arch); });
    put("general.name", [&] { w.set_string("general.name", "tiny"); });
    put(key("context_length"), [&] { w.set_u32(key("context_length"), n_ctx); });
    put(key("embedding_length"), [&] { w.set_u32(key("embedding_length"), n_embd); });
    put(key("block_count"), [&] { w.set_u32(key("block_count"), n_layer); });
    put(key("feed_forward_length"), [&] { w.set_u32(key("feed_forward_length"), n_ff); });
    put(key("attention.head_count"), [&] { w.set_u32(key("attention.head_count"), n_head); });
    put(key("attention.head_count_kv"), [&] { w.set_u32(key("attention.head_count_kv"), n_head_kv); });
    put(key("attention.layer_norm_rms_epsilon"), [&] { w.set_f32(key("attention.layer_norm_rms_epsilon"), 1e-5f); });
    put(key("rope.freq_base"), [&] { w.set_f32(key("rope.freq_base"), 10000.0f); });
    put(key("vocab_size"), [] {});
    put("tokenizer.ggml.model", [&] { w.set_string("tokenizer.ggml.model", "llama"); });
    put("tokenizer.ggml.tokens", [&] { w.set_strings("tokenizer.ggml.tokens", tokens); });
    put("tokenizer.ggml.scores", [&] {
      w.set_array("tokenizer.ggml.scores", ValueType::f32, std::vector<float>(tokens.size(), -1.0f));
    });
    put("tokenizer.ggml.token_type", [&] {
      std::vector<int32_t> types(tokens.size(), 1);
      types[0] = 2;
      types[1] = types[2] = 3;
      w.set_array("tokenizer.ggml.token_type", ValueType::i32, types);
    });
    put("tokenizer.ggml.bos_token_id", [&] { w.set_u32("tokenizer.ggml.bos_token_id", 1); });
    put("tokenizer.ggml.eos_token_id", [&] { w.set_u32("tokenizer.ggml.eos_token_id", 2); });
    put("tokenizer.ggml.unknown_token_id", [&] { w.set_u32("tokenizer.ggml.unknown_token_id", 0); });

    const int64_t e = n_embd, f = n_ff, v = static_cast<int64_t>(tokens.size());
    const int64_t kv = e / n_head * n_head_kv;
    std::vector<std::pair<std::string, std::vector<int64_t>>> ts = {{"token_embd.weight", {e, v}},
                                                                    {"output_norm.weight", {e}}};
    const bool sub_norms = arch != "llama";
    for (uint32_t l = 0; l < n_layer; ++l) {
      auto n = [&](const char* what) { return fmt::format("blk.{}.{}.weight", l, what); };
      ts.push_back({n("attn_norm"), {e}});
      ts.push_back({n("attn_q"), {e, e}});
      ts.push_back({n("attn_k"), {e, kv}});
      ts.push_back({n("attn_v"), {e, kv}});
      ts.push_back({n("attn_output"), {e, e}});
      ts.push_back({n("ffn_norm"), {e}});
      ts.push_back({n("ffn_gate"), {e, f}});
      ts.push_back({n("ffn_up"), {e, f}});
      ts.push_back({n("ffn_down"), {f, e}});
      if (sub_norms) {
        ts.push_back({n("attn_sub_norm"), {e}});
        ts.push_back({n("ffn_sub_norm"), {f}});
      }
    }
    for (auto& [name, ne] : ts) {
      if (drop_tensors.count(name)) continue;
      if (auto it = reshape.find(name); it != reshape.end()) ne = it->second;
      int64_t count = 1;
      for (int64_t d : ne) count *= d;
      w.add_tensor(name, kF32, ne, std::span(zeros).first(static_cast<size_t>(count) * 4));
    }
    w.write(p);
    return p;
  }
};

class MalformedModel : public ::testing::Test {
 protected:
  test::TempDir dir_;
  TinyModel m_;

  std::filesystem::path path() const { return dir_ / "tiny.gguf"; }
  GgufFile open() { return GgufFile::open(m_.write(path())); }

  std::string config_rejects(std::initializer_list<std::string_view> parts) {
    GgufFile f = open();
    return expect_invalid(path(), parts, [&] { (void)model::read_config(f); });
  }
  std::string tokenizer_rejects(std::initializer_list<std::string_view> parts) {
    GgufFile f = open();
    return expect_invalid(path(), parts, [&] { (void)model::read_tokenizer_info(f); });
  }
  std::string tensors_rejects(std::initializer_list<std::string_view> parts) {
    GgufFile f = open();
    model::ModelConfig c = model::read_config(f);
    return expect_invalid(path(), parts, [&] { (void)model::check_tensors(f, c); });
  }
};

TEST_F(MalformedModel, BaselineTinyModelIsValidForEveryArchitectureSpelling) {
  // Item 19: bitnet, bitnet-25 and bitnet-b1.58 all exist in the wild.
  for (const char* arch : {"bitnet-b1.58", "bitnet-25", "bitnet", "llama"}) {
    SCOPED_TRACE(arch);
    m_.arch = arch;
    GgufFile f = open();
    model::ModelConfig c = model::read_config(f);
    EXPECT_EQ(c.arch_name, arch);
    EXPECT_EQ(c.n_vocab, 8u);
    EXPECT_EQ(c.n_head_kv, 2u);
    model::TokenizerInfo t = model::read_tokenizer_info(f);
    EXPECT_EQ(t.bos, 1u);
    EXPECT_EQ(t.n_control, 2u);
    model::TensorCheck tc = model::check_tensors(f, c);
    EXPECT_TRUE(tc.unused.empty());
    EXPECT_TRUE(tc.tied_output);
  }
  m_.arch = "bitnet-25";
  EXPECT_EQ(model::read_config(open()).ffn_act, model::FfnAct::relu2);
  m_.arch = "bitnet";
  EXPECT_EQ(model::read_config(open()).ffn_act, model::FfnAct::silu);
}

// ---- 9. well-known keys of the wrong type or shape ----

TEST_F(MalformedModel, TokensNotStrings) {
  m_.replace["tokenizer.ggml.tokens"] = [](gguf::GgufWriter& w, const std::string& k) {
    w.set_array(k, ValueType::i32, std::vector<int32_t>(8, 0));
  };
  config_rejects({"'tokenizer.ggml.tokens' is an array of i32, expected strings"});
  tokenizer_rejects({"'tokenizer.ggml.tokens' is an array of i32, expected strings"});
}

TEST_F(MalformedModel, TokensNotAnArray) {
  m_.replace["tokenizer.ggml.tokens"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_string(k, "abc"); };
  GgufFile f = open();
  const uint64_t kv_at = f.find("tokenizer.ggml.tokens")->offset;
  tokenizer_rejects({at(kv_at), "key 'tokenizer.ggml.tokens' has type string, expected array"});
}

TEST_F(MalformedModel, TokensMissing) {
  m_.drop("tokenizer.ggml.tokens");
  tokenizer_rejects({"missing 'tokenizer.ggml.tokens'"});
}

TEST_F(MalformedModel, ScoresOfTheWrongType) {
  m_.replace["tokenizer.ggml.scores"] = [](gguf::GgufWriter& w, const std::string& k) {
    w.set_array(k, ValueType::f64, std::vector<double>(8, 0.0));
  };
  tokenizer_rejects({"'tokenizer.ggml.scores' is an array of f64, expected f32"});
}

TEST_F(MalformedModel, ScoresOfTheWrongCount) {
  m_.replace["tokenizer.ggml.scores"] = [](gguf::GgufWriter& w, const std::string& k) {
    w.set_array(k, ValueType::f32, std::vector<float>(7, 0.0f));
  };
  tokenizer_rejects({"'tokenizer.ggml.scores' has 7 entries for 8 tokens"});
}

TEST_F(MalformedModel, TokenTypeCountMismatch) {
  m_.replace["tokenizer.ggml.token_type"] = [](gguf::GgufWriter& w, const std::string& k) {
    w.set_array(k, ValueType::i32, std::vector<int32_t>(9, 1));
  };
  tokenizer_rejects({"'tokenizer.ggml.token_type' has 9 entries for 8 tokens"});
}

TEST_F(MalformedModel, TokenTypeOfTheWrongElementType) {
  m_.replace["tokenizer.ggml.token_type"] = [](gguf::GgufWriter& w, const std::string& k) {
    w.set_array(k, ValueType::u8, std::vector<uint8_t>(8, 1));
  };
  tokenizer_rejects({"'tokenizer.ggml.token_type' is an array of u8, expected i32"});
}

TEST_F(MalformedModel, TokenTypeValueOutOfRange) {
  m_.replace["tokenizer.ggml.token_type"] = [](gguf::GgufWriter& w, const std::string& k) {
    std::vector<int32_t> types(8, 1);
    types[5] = 7;
    w.set_array(k, ValueType::i32, types);
  };
  tokenizer_rejects({"'tokenizer.ggml.token_type' of token 5 is 7", "valid types are 0 to 6"});
}

TEST_F(MalformedModel, BosIdNotBelowTheVocabularySize) {
  m_.replace["tokenizer.ggml.bos_token_id"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_u32(k, 8); };
  tokenizer_rejects({"'tokenizer.ggml.bos_token_id' is 8, but the vocabulary has only 8 tokens"});
}

TEST_F(MalformedModel, EosIdFarBeyondTheVocabulary) {
  m_.replace["tokenizer.ggml.eos_token_id"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_u64(k, 1u << 20); };
  tokenizer_rejects({"'tokenizer.ggml.eos_token_id' is 1048576, but the vocabulary has only 8 tokens"});
}

TEST_F(MalformedModel, BosIdOfTheWrongType) {
  m_.replace["tokenizer.ggml.bos_token_id"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_string(k, "1"); };
  tokenizer_rejects({"key 'tokenizer.ggml.bos_token_id' has type string, expected an integer"});
}

TEST_F(MalformedModel, BosIdMinusOneMeansNoneAndIsAccepted) {
  m_.replace["tokenizer.ggml.bos_token_id"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_i32(k, -1); };
  EXPECT_FALSE(model::read_tokenizer_info(open()).bos.has_value());
}

TEST_F(MalformedModel, BlockCountZero) {
  m_.n_layer = 0;
  config_rejects({"'bitnet-b1.58.block_count' is 0; it must be between 1 and 1024"});
}

TEST_F(MalformedModel, HeadCountZero) {
  m_.replace[m_.key("attention.head_count")] = [](gguf::GgufWriter& w, const std::string& k) { w.set_u32(k, 0); };
  config_rejects({"'bitnet-b1.58.attention.head_count' is 0; it must be between 1 and 4096"});
}

TEST_F(MalformedModel, HeadCountKvZero) {
  m_.replace[m_.key("attention.head_count_kv")] = [](gguf::GgufWriter& w, const std::string& k) { w.set_u32(k, 0); };
  config_rejects({"'bitnet-b1.58.attention.head_count_kv' is 0; it must be between 1 and 4096"});
}

TEST_F(MalformedModel, ContextLengthAboveTheLimit) {
  m_.n_ctx = (1u << 24) + 1;
  config_rejects({"'bitnet-b1.58.context_length' is 16777217; it must be between 1 and 16777216"});
}

TEST_F(MalformedModel, HyperParameterOfTheWrongType) {
  m_.replace[m_.key("block_count")] = [](gguf::GgufWriter& w, const std::string& k) { w.set_string(k, "1"); };
  config_rejects({"key 'bitnet-b1.58.block_count' has type string, expected an integer"});
}

TEST_F(MalformedModel, NegativeHyperParameter) {
  m_.replace[m_.key("embedding_length")] = [](gguf::GgufWriter& w, const std::string& k) { w.set_i32(k, -32); };
  config_rejects({"key 'bitnet-b1.58.embedding_length' is -32, expected a non-negative integer"});
}

TEST_F(MalformedModel, RequiredHyperParameterMissing) {
  m_.drop(m_.key("feed_forward_length"));
  config_rejects({"missing required key 'bitnet-b1.58.feed_forward_length'"});
}

TEST_F(MalformedModel, HeadCountNotAMultipleOfHeadCountKv) {
  m_.n_head_kv = 3;
  config_rejects({"'bitnet-b1.58.attention.head_count' 4 is not a multiple of "
                  "'bitnet-b1.58.attention.head_count_kv' 3"});
}

TEST_F(MalformedModel, EmbeddingNotDivisibleByHeadCount) {
  m_.n_embd = 30;
  config_rejects({"'bitnet-b1.58.embedding_length' 30 is not divisible by 'bitnet-b1.58.attention.head_count' 4"});
}

TEST_F(MalformedModel, RmsEpsilonNotPositive) {
  m_.replace[m_.key("attention.layer_norm_rms_epsilon")] = [](gguf::GgufWriter& w, const std::string& k) {
    w.set_f32(k, -0.25f);
  };
  config_rejects({"'bitnet-b1.58.attention.layer_norm_rms_epsilon' is -0.25", "small positive number"});
}

TEST_F(MalformedModel, VocabSizeDisagreesWithTheTokenCount) {
  m_.replace[m_.key("vocab_size")] = [](gguf::GgufWriter& w, const std::string& k) { w.set_u32(k, 9); };
  config_rejects({"'bitnet-b1.58.vocab_size' is 9 but 'tokenizer.ggml.tokens' has 8 tokens"});
}

// ---- 18. tensors vs. hyper-parameters ----

TEST_F(MalformedModel, RequiredTensorMissing) {
  m_.drop_tensors = {"blk.0.ffn_down.weight"};
  tensors_rejects({"required tensor 'blk.0.ffn_down.weight' is missing", "architecture 'bitnet-b1.58'"});
}

TEST_F(MalformedModel, SubNormMissingForABitnetArchitecture) {
  m_.drop_tensors = {"blk.0.attn_sub_norm.weight"};
  tensors_rejects({"required tensor 'blk.0.attn_sub_norm.weight' is missing"});
}

TEST_F(MalformedModel, TokenEmbeddingOfTheWrongShape) {
  m_.reshape["token_embd.weight"] = {32, 7};
  tensors_rejects({"tensor 'token_embd.weight' has shape [32, 7], expected [32, 8]"});
}

TEST_F(MalformedModel, TransposedKeyProjection) {
  m_.reshape["blk.0.attn_k.weight"] = {16, 32};
  tensors_rejects({"tensor 'blk.0.attn_k.weight' has shape [16, 32], expected [32, 16]"});
}

// ---- 19. architecture ----

TEST_F(MalformedModel, UnknownArchitectureListsTheSupportedOnes) {
  m_.arch = "qwen2";
  config_rejects({"architecture 'qwen2' is not supported", "supported: llama, bitnet, bitnet-25, bitnet-b1.58"});
}

TEST_F(MalformedModel, UnknownArchitectureIsShownWithControlBytesEscaped) {
  m_.replace["general.architecture"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_string(k, "evil\n\x1b[31m"); };
  config_rejects({"architecture 'evil\\x0a\\x1b[31m' is not supported"});
}

TEST_F(MalformedModel, ArchitectureMissing) {
  m_.drop("general.architecture");
  config_rejects({"missing 'general.architecture'"});
}

TEST_F(MalformedModel, ArchitectureOfTheWrongType) {
  m_.replace["general.architecture"] = [](gguf::GgufWriter& w, const std::string& k) { w.set_u32(k, 1); };
  config_rejects({"key 'general.architecture' has type u32, expected string"});
}

}  // namespace
}  // namespace bitnet
