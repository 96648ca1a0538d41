// GgufWriter -> bytes / file -> GgufFile::open gives back every KV (all 13 value types, arrays
// of each element type) and every tensor (name, type, dims, data), at alignment 32 and 64; and
// GgufWriter::write is atomic (temp file + rename, nothing left behind on failure).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "gguf/gguf_bytes.hpp"

namespace bitnet {
namespace {

using gguf::ArrayView;
using gguf::GgmlType;
using gguf::GgufFile;
using gguf::GgufWriter;
using gguf::ValueType;

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

// One tensor per engine-relevant type, with its byte size worked out by hand (not by the
// code under test): blocks x bytes per block, and I2_S's n/4 + 32.
struct TensorCase {
  const char* name;
  GgmlType type;
  std::vector<int64_t> ne;
  size_t nbytes;
};
const std::vector<TensorCase>& tensor_cases() {
  static const std::vector<TensorCase> cases = {
      {"f32", GgmlType::F32, {3, 5}, 3 * 5 * 4},
      {"f16", GgmlType::F16, {7}, 7 * 2},
      {"q8_0", GgmlType::Q8_0, {64, 3}, 2 * 3 * 34},
      {"q6_k", GgmlType::Q6_K, {256, 2}, 2 * 210},
      {"tq1_0", GgmlType::TQ1_0, {256, 1, 2}, 2 * 54},
      {"tq2_0", GgmlType::TQ2_0, {512, 2}, 4 * 66},
      {"i2_s", GgmlType::I2_S, {128, 4}, 512 / 4 + 32},
      {"f32.4d", GgmlType::F32, {2, 1, 3, 2}, 12 * 4},
  };
  return cases;
}

const std::vector<std::string> kStrings = {"", "a", "h\xc3\xa9llo", std::string("nul\0inside", 10), "\xe2\x96\x81the"};

struct Model {
  std::vector<std::vector<std::byte>> data;  // tensor payloads, alive until write()
  GgufWriter w;

  explicit Model(uint64_t alignment) : w(alignment) {
    w.set_u8("t.u8", 200);
    w.set_i8("t.i8", -100);
    w.set_u16("t.u16", 60000);
    w.set_i16("t.i16", -30000);
    w.set_u32("t.u32", 4000000000u);
    w.set_i32("t.i32", -2000000000);
    w.set_f32("t.f32", 0.15625f);
    w.set_bool("t.bool.true", true);
    w.set_bool("t.bool.false", false);
    w.set_string("t.string", "h\xc3\xa9llo, world");
    w.set_string("t.string.empty", "");
    w.set_u64("t.u64", UINT64_MAX - 1);
    w.set_i64("t.i64", INT64_MIN + 1);
    w.set_f64("t.f64", -1.0 / 3.0);
    w.set_array("a.u8", ValueType::u8, std::vector<uint8_t>{0, 1, 255});
    w.set_array("a.i8", ValueType::i8, std::vector<int8_t>{-128, 0, 127});
    w.set_array("a.u16", ValueType::u16, std::vector<uint16_t>{0, 65535});
    w.set_array("a.i16", ValueType::i16, std::vector<int16_t>{-32768, 32767});
    w.set_array("a.u32", ValueType::u32, std::vector<uint32_t>{1, 2, 3, 0xffffffff});
    w.set_array("a.i32", ValueType::i32, std::vector<int32_t>{-1, 0, 1});
    w.set_array("a.f32", ValueType::f32, std::vector<float>{-0.5f, 1e30f, std::numeric_limits<float>::infinity()});
    w.set_array("a.bool", ValueType::boolean, std::vector<uint8_t>{1, 0, 1, 1});
    w.set_array("a.u64", ValueType::u64, std::vector<uint64_t>{0, UINT64_MAX});
    w.set_array("a.i64", ValueType::i64, std::vector<int64_t>{INT64_MIN, INT64_MAX});
    w.set_array("a.f64", ValueType::f64, std::vector<double>{3.5, -0.0, 1e-300});
    w.set_array("a.u32.empty", ValueType::u32, std::vector<uint32_t>{});
    w.set_strings("a.string", kStrings);
    w.set_strings("a.string.empty", {});
    uint32_t seed = 1;
    for (const TensorCase& c : tensor_cases()) {
      data.push_back(random_bytes(c.nbytes, seed++));
      w.add_tensor(c.name, c.type, c.ne, data.back());
    }
  }
};

template <typename T>
T scalar(const GgufFile& f, const char* key, ValueType type) {
  const gguf::KeyValue* kv = f.find(key);
  EXPECT_NE(kv, nullptr) << key;
  if (!kv) return T{};
  EXPECT_EQ(kv->type(), type) << key;
  const T* v = std::get_if<T>(&kv->value);
  EXPECT_NE(v, nullptr) << key;
  return v ? *v : T{};
}

template <typename T>
void expect_array(const GgufFile& f, const char* key, ValueType elem, const std::vector<T>& want) {
  SCOPED_TRACE(key);
  const ArrayView* a = f.get_array(key);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->elem_type, elem);
  ASSERT_EQ(a->count, want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    T got = a->element<T>(i);
    EXPECT_EQ(std::memcmp(&got, &want[i], sizeof(T)), 0) << "element " << i;  // bitwise: -0.0, inf
  }
}

void expect_everything(const GgufFile& f, uint64_t alignment) {
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  if (alignment == 32) {
    EXPECT_EQ(f.find("general.alignment"), nullptr);  // the default is not written
  } else {
    EXPECT_EQ(f.get_uint("general.alignment"), alignment);
  }

  EXPECT_EQ(scalar<uint8_t>(f, "t.u8", ValueType::u8), 200);
  EXPECT_EQ(scalar<int8_t>(f, "t.i8", ValueType::i8), -100);
  EXPECT_EQ(scalar<uint16_t>(f, "t.u16", ValueType::u16), 60000);
  EXPECT_EQ(scalar<int16_t>(f, "t.i16", ValueType::i16), -30000);
  EXPECT_EQ(scalar<uint32_t>(f, "t.u32", ValueType::u32), 4000000000u);
  EXPECT_EQ(scalar<int32_t>(f, "t.i32", ValueType::i32), -2000000000);
  EXPECT_EQ(scalar<float>(f, "t.f32", ValueType::f32), 0.15625f);
  EXPECT_TRUE(scalar<bool>(f, "t.bool.true", ValueType::boolean));
  EXPECT_FALSE(scalar<bool>(f, "t.bool.false", ValueType::boolean));
  EXPECT_EQ(scalar<std::string_view>(f, "t.string", ValueType::string), "h\xc3\xa9llo, world");
  EXPECT_EQ(scalar<std::string_view>(f, "t.string.empty", ValueType::string), "");
  EXPECT_EQ(scalar<uint64_t>(f, "t.u64", ValueType::u64), UINT64_MAX - 1);
  EXPECT_EQ(scalar<int64_t>(f, "t.i64", ValueType::i64), INT64_MIN + 1);
  EXPECT_EQ(scalar<double>(f, "t.f64", ValueType::f64), -1.0 / 3.0);

  expect_array(f, "a.u8", ValueType::u8, std::vector<uint8_t>{0, 1, 255});
  expect_array(f, "a.i8", ValueType::i8, std::vector<int8_t>{-128, 0, 127});
  expect_array(f, "a.u16", ValueType::u16, std::vector<uint16_t>{0, 65535});
  expect_array(f, "a.i16", ValueType::i16, std::vector<int16_t>{-32768, 32767});
  expect_array(f, "a.u32", ValueType::u32, std::vector<uint32_t>{1, 2, 3, 0xffffffff});
  expect_array(f, "a.i32", ValueType::i32, std::vector<int32_t>{-1, 0, 1});
  expect_array(f, "a.f32", ValueType::f32, std::vector<float>{-0.5f, 1e30f, std::numeric_limits<float>::infinity()});
  expect_array(f, "a.bool", ValueType::boolean, std::vector<uint8_t>{1, 0, 1, 1});
  expect_array(f, "a.u64", ValueType::u64, std::vector<uint64_t>{0, UINT64_MAX});
  expect_array(f, "a.i64", ValueType::i64, std::vector<int64_t>{INT64_MIN, INT64_MAX});
  expect_array(f, "a.f64", ValueType::f64, std::vector<double>{3.5, -0.0, 1e-300});
  expect_array(f, "a.u32.empty", ValueType::u32, std::vector<uint32_t>{});
  const ArrayView* s = f.get_array("a.string");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->elem_type, ValueType::string);
  ASSERT_EQ(s->count, kStrings.size());
  ASSERT_EQ(s->strings.size(), kStrings.size());
  for (size_t i = 0; i < kStrings.size(); ++i) EXPECT_EQ(s->strings[i], kStrings[i]) << i;
  const ArrayView* e = f.get_array("a.string.empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->count, 0u);

  // Every value type id 0..12 occurs (9 = array), KVs come back in the order written.
  std::vector<bool> seen(gguf::kValueTypeCount);
  uint64_t prev_offset = 0;
  for (const auto& kv : f.kvs()) {
    seen[static_cast<size_t>(kv.type())] = true;
    EXPECT_GT(kv.offset, prev_offset) << kv.key;
    prev_offset = kv.offset;
  }
  for (uint32_t t = 0; t < gguf::kValueTypeCount; ++t) EXPECT_TRUE(seen[t]) << "value type " << t;
  EXPECT_EQ(f.kvs().front().key, alignment == 32 ? "t.u8" : "general.alignment");

  ASSERT_EQ(f.tensors().size(), tensor_cases().size());
  uint32_t seed = 1;
  for (size_t i = 0; i < tensor_cases().size(); ++i) {
    const TensorCase& c = tensor_cases()[i];
    SCOPED_TRACE(c.name);
    const gguf::TensorInfo& t = f.tensors()[i];
    EXPECT_EQ(t.name, c.name);
    EXPECT_EQ(f.find_tensor(c.name), &t);
    EXPECT_EQ(t.type, c.type);
    ASSERT_EQ(t.n_dims, c.ne.size());
    EXPECT_EQ(std::vector<int64_t>(t.dims().begin(), t.dims().end()), c.ne);
    EXPECT_EQ(t.nbytes, c.nbytes);
    EXPECT_EQ(t.offset % alignment, 0u);
    std::span<const std::byte> got = f.tensor_data(t);
    std::vector<std::byte> want = random_bytes(c.nbytes, seed++);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size()), 0);
  }
}

class RoundTrip : public ::testing::TestWithParam<uint64_t> {
 protected:
  test::TempDir dir_;
};

TEST_P(RoundTrip, ToBytesGivesBackEveryKeyAndTensor) {
  Model m(GetParam());
  std::vector<std::byte> bytes = m.w.to_bytes();
  EXPECT_EQ(bytes.size() % GetParam(), 0u);
  std::filesystem::path p = dir_ / "bytes.gguf";
  test::write_file(p, bytes);
  expect_everything(GgufFile::open(p), GetParam());
}

TEST_P(RoundTrip, WriteGivesBackEveryKeyAndTensorAndMatchesToBytes) {
  Model m(GetParam());
  std::filesystem::path p = dir_ / "model.gguf";
  m.w.write(p);
  EXPECT_EQ(test::read_file(p), m.w.to_bytes());
  expect_everything(GgufFile::open(p), GetParam());
}

TEST_P(RoundTrip, SetValueCopiesEveryKeyByteForByte) {
  Model m(GetParam());
  std::filesystem::path a = dir_ / "a.gguf";
  m.w.write(a);
  GgufFile f = GgufFile::open(a);
  GgufWriter copy(GetParam());  // writes general.alignment itself when not the default
  for (const auto& kv : f.kvs())
    if (kv.key != "general.alignment") copy.set_value(kv.key, kv.value);
  for (const auto& t : f.tensors()) copy.add_tensor(t.name, t.type, {t.dims().begin(), t.dims().end()}, f.tensor_data(t));
  EXPECT_EQ(copy.to_bytes(), test::read_file(a));
}

INSTANTIATE_TEST_SUITE_P(Alignment, RoundTrip, ::testing::Values(uint64_t{32}, uint64_t{64}),
                         [](const ::testing::TestParamInfo<uint64_t>& i) { return "align" + std::to_string(i.param); });

// ---- atomic write ----

std::vector<std::string> listing(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AtomicWrite, SuccessLeavesOnlyTheTarget) {
  test::TempDir dir;
  Model m(32);
  m.w.write(dir / "m.gguf");
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"m.gguf"});
}

TEST(AtomicWrite, OverwriteReplacesTheWholeOldFile) {
  test::TempDir dir;
  std::filesystem::path p = dir / "m.gguf";
  test::write_file(p, std::vector<std::byte>(1 << 16, std::byte{0x5a}));  // larger than the new file
  Model m(64);
  m.w.write(p);
  EXPECT_EQ(test::read_file(p), m.w.to_bytes());
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"m.gguf"});
}

TEST(AtomicWrite, MissingDirectoryIsAnErrorAndCreatesNothing) {
  test::TempDir dir;
  Model m(32);
  std::filesystem::path p = dir / "no-such-dir" / "m.gguf";
  try {
    m.w.write(p);
    FAIL() << "write into a missing directory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::failure);
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_TRUE(listing(dir.path()).empty());
}

TEST(AtomicWrite, FailedRenameRemovesTheTempFileAndKeepsTheTarget) {
  test::TempDir dir;
  std::filesystem::path p = dir / "m.gguf";
  std::filesystem::create_directory(p);  // rename(file, non-empty directory) fails
  test::write_file(p / "keep", std::vector<std::byte>(3, std::byte{1}));
  Model m(32);
  EXPECT_THROW(m.w.write(p), Error);
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"m.gguf"});
  EXPECT_TRUE(std::filesystem::is_directory(p));
  EXPECT_EQ(listing(p), std::vector<std::string>{"keep"});
}

}  // namespace
}  // namespace bitnet
