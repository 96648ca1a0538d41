// Loading a tokenizer from a model must not read its weights: a GGUF with stories260K's vocabulary
// and a 1 GiB tensor (a sparse file, so nothing is written) loads and tokenizes at once, and the
// tensor's pages stay out of memory.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>

#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "support/fixtures.hpp"

namespace bitnet::tokenizer {
namespace {

constexpr uint64_t kBigElements = uint64_t{1} << 28;  // F32: 1 GiB

// Writes the vocabulary of `src` plus one tensor that claims 1 GiB of data, leaving the data a
// hole in the file.
void write_big_model(const std::filesystem::path& src, const std::filesystem::path& out) {
  gguf::GgufFile f = gguf::GgufFile::open(src);
  gguf::GgufWriter w;
  for (const auto& kv : f.kvs())
    if (kv.key != "general.alignment") w.set_value(kv.key, kv.value);
  const float one = 1.0f;
  w.add_tensor("big.weight", gguf::GgmlType::F32, {1}, std::as_bytes(std::span<const float>(&one, 1)));
  std::vector<std::byte> bytes = w.to_bytes();

  // Tensor info: name length (u64), name, n_dims (u32), ne[0] (u64), type (u32), offset (u64).
  const std::string name = "big.weight";
  auto it = std::search(bytes.begin(), bytes.end(), reinterpret_cast<const std::byte*>(name.data()),
                        reinterpret_cast<const std::byte*>(name.data()) + name.size());
  EXPECT_NE(it, bytes.end());
  size_t ne_at = static_cast<size_t>(it - bytes.begin()) + name.size() + 4;
  std::memcpy(bytes.data() + ne_at, &kBigElements, 8);
  uint64_t header_end = ne_at + 8 + 4 + 8;
  uint64_t data_at = (header_end + gguf::kDefaultAlignment - 1) / gguf::kDefaultAlignment * gguf::kDefaultAlignment;

  std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(data_at));
  std::filesystem::resize_file(out, data_at + kBigElements * 4);  // the extension is a hole
}

TEST(LazyLoad, WeightsAreNeverRead) {
  auto path = std::filesystem::temp_directory_path() / ("bitnet-lazy-" + std::to_string(::getpid()) + ".gguf");
  write_big_model(test::fixture_file("models/stories260K.gguf"), path);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() { std::filesystem::remove(p); }
  } cleanup{path};

  auto t0 = std::chrono::steady_clock::now();
  gguf::GgufFile f = gguf::GgufFile::open(path);
  Tokenizer tok(read_vocab(f));
  auto ids = tok.encode_ids("Once upon a time", true, true);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ids, (std::vector<TokenId>{1, 403, 407, 261, 378}));
  EXPECT_LT(ms, 2000.0);
  std::printf("tokenizer from a 1 GiB model: %.1f ms\n", ms);

  // Count the tensor's pages in memory. Readahead around the header may bring in a few; reading
  // the weights would bring in all 262144.
  const gguf::TensorInfo* t = f.find_tensor("big.weight");
  ASSERT_NE(t, nullptr);
  std::span<const std::byte> data = f.tensor_data(*t);
  ASSERT_EQ(data.size(), kBigElements * 4);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto addr = reinterpret_cast<uintptr_t>(data.data());
  uintptr_t first = (addr + page - 1) / page * page;
  size_t len = (addr + data.size() - first) / page * page;
  std::vector<unsigned char> resident(len / page);
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(first), len, resident.data()), 0);
  size_t in_core = 0;
  for (unsigned char r : resident) in_core += r & 1;
  EXPECT_LT(in_core, resident.size() / 100) << in_core << " of " << resident.size() << " pages resident";
}

}  // namespace
}  // namespace bitnet::tokenizer
