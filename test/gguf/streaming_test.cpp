// GgufWriter's streamed tensors: a producer that writes a tensor in pieces gives the same file
// as the same bytes added as a span, in memory and on disk; a producer that writes the wrong
// number of bytes or throws fails the write and leaves nothing behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/base/error.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "gguf/gguf_bytes.hpp"

namespace bitnet {
namespace {

using gguf::ByteSink;
using gguf::GgmlType;
using gguf::GgufWriter;

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 0xff);
  return v;
}

// Sends `bytes` in pieces of 1, 7, 4096, 1 MiB + 3 ... bytes, cycling, to cover the file sink's
// buffered and pass-through paths.
void send_in_pieces(const std::vector<std::byte>& bytes, ByteSink& out) {
  const size_t sizes[] = {1, 7, 4096, (size_t{1} << 20) + 3, 0, 33};
  size_t at = 0;
  for (size_t k = 0; at < bytes.size(); ++k) {
    const size_t n = std::min(sizes[k % std::size(sizes)], bytes.size() - at);
    out.write({bytes.data() + at, n});
    at += n;
  }
}

struct Pair {
  std::vector<std::vector<std::byte>> data;
  GgufWriter spans, streamed;
  Pair() {
    spans.set_string("general.architecture", "test");
    streamed.set_string("general.architecture", "test");
    struct T {
      const char* name;
      GgmlType type;
      std::vector<int64_t> ne;
      size_t nbytes;
    };
    const std::vector<T> ts = {
        {"small", GgmlType::F32, {3}, 12},
        {"i2s", GgmlType::I2_S, {256, 8}, 256 * 8 / 4 + 32},
        {"big", GgmlType::F16, {1024, 1100}, 1024 * 1100 * 2},  // over 2 MiB: several sink paths
        {"tq2", GgmlType::TQ2_0, {512, 3}, 2 * 3 * 66},
    };
    uint32_t seed = 7;
    data.reserve(ts.size());  // the producers point at the elements
    for (const T& t : ts) {
      data.push_back(random_bytes(t.nbytes, seed++));
      spans.add_tensor(t.name, t.type, t.ne, data.back());
      const std::vector<std::byte>* bytes = &data.back();
      streamed.add_tensor(t.name, t.type, t.ne, [bytes](ByteSink& out) { send_in_pieces(*bytes, out); });
    }
  }
};

TEST(StreamingWriter, SameBytesAsSpansInMemoryAndOnDisk) {
  Pair p;
  const std::vector<std::byte> want = p.spans.to_bytes();
  EXPECT_EQ(p.streamed.to_bytes(), want);
  test::TempDir dir;
  p.streamed.write(dir / "m.gguf");
  EXPECT_EQ(test::read_file(dir / "m.gguf"), want);
  gguf::GgufFile f = gguf::GgufFile::open(dir / "m.gguf");
  ASSERT_EQ(f.tensors().size(), 4u);
  auto got = f.tensor_data(*f.find_tensor("big"));
  EXPECT_TRUE(std::equal(got.begin(), got.end(), p.data[2].begin(), p.data[2].end()));
}

void expect_failed_write(GgufWriter& w, const std::string& message_part) {
  test::TempDir dir;
  try {
    w.write(dir / "m.gguf");
    FAIL() << "write succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message_part), std::string::npos) << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(message_part), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "a partial file was left behind";
}

TEST(StreamingWriter, ShortProducerFailsTheWriteAndLeavesNothing) {
  GgufWriter w;
  w.add_tensor("t", GgmlType::F32, {4}, [](ByteSink& out) {
    const std::byte b[12] = {};
    out.write(b);
  });
  expect_failed_write(w, "tensor 't' produced 12 bytes, expected 16");
  EXPECT_THROW(w.to_bytes(), Error);
}

TEST(StreamingWriter, LongProducerFailsTheWrite) {
  GgufWriter w;
  w.add_tensor("t", GgmlType::F32, {4}, [](ByteSink& out) {
    const std::byte b[20] = {};
    out.write(b);
  });
  expect_failed_write(w, "produced 20 bytes, expected 16");
}

TEST(StreamingWriter, ThrowingProducerFailsTheWriteWithItsError) {
  GgufWriter w;
  std::vector<std::byte> ok(16);
  w.add_tensor("first", GgmlType::F32, {4}, ok);
  w.add_tensor("second", GgmlType::F32, {4}, [](ByteSink& out) {
    const std::byte b[8] = {};
    out.write(b);
    throw make_error(ErrorCode::invalid_input, "tensor 'second' is not ternary");
  });
  expect_failed_write(w, "not ternary");
}

}  // namespace
}  // namespace bitnet
