// KL-divergence base files (diag/kld_base.hpp): what is written reads back bit for bit, and every
// way a file can be damaged is refused with invalid_input naming the file.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.hpp"
#include "diag/kld_base.hpp"

namespace bitnet::diag {
namespace {

struct TempDir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("bitnet-kld-" + std::to_string(::getpid()));
  TempDir() { std::filesystem::create_directories(dir); }
  ~TempDir() { std::filesystem::remove_all(dir); }
};

KldBaseHeader header(uint32_t n_vocab, uint32_t n_ctx, size_t chunks) {
  KldBaseHeader h;
  h.model = "m.gguf";
  h.engine = "test";
  h.vocab_sha256 = std::string(64, 'a');
  h.n_vocab = n_vocab, h.n_ctx = n_ctx, h.first = n_ctx / 2;
  for (size_t i = 0; i < chunks * n_ctx; ++i) h.tokens.push_back(static_cast<TokenId>(i % n_vocab));
  return h;
}

std::vector<std::vector<float>> random_chunks(const KldBaseHeader& h, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 5.0f);
  std::vector<std::vector<float>> c(h.n_chunks(), std::vector<float>(size_t{h.n_ctx - h.first} * h.n_vocab));
  for (auto& rows : c)
    for (float& x : rows) x = d(rng);
  c[0][0] = -INFINITY;  // a masked logit survives too
  return c;
}

void write(const std::filesystem::path& p, const KldBaseHeader& h, const std::vector<std::vector<float>>& chunks) {
  KldBaseWriter w(p, h);
  for (const auto& c : chunks) w.add_chunk(c);
  w.commit();
}

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const std::filesystem::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// Reads the whole file; the error it gives, or "" when it reads.
std::string read_error(const std::filesystem::path& p) {
  try {
    KldBaseReader r(p);
    for (size_t i = 0; i < r.header().n_chunks(); ++i) r.next_chunk();
    r.expect_end();
    return "";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input) << e.what();
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    return e.what();
  }
}

TEST(KldBase, RoundTripsEveryBit) {
  TempDir t;
  const KldBaseHeader h = header(1000, 16, 3);  // rows bigger than zstd's stream buffers
  const auto chunks = random_chunks(h, 1);
  write(t.dir / "a.kld", h, chunks);
  KldBaseReader r(t.dir / "a.kld");
  EXPECT_EQ(r.header().tokens, h.tokens);
  EXPECT_EQ(r.header().n_vocab, 1000u);
  EXPECT_EQ(r.header().first, 8u);
  EXPECT_EQ(r.header().vocab_sha256, h.vocab_sha256);
  EXPECT_EQ(r.header().model, "m.gguf");
  for (const auto& c : chunks) {
    const std::vector<float> got = r.next_chunk();
    ASSERT_EQ(got.size(), c.size());
    EXPECT_EQ(0, std::memcmp(got.data(), c.data(), c.size() * sizeof(float)));
  }
  EXPECT_NO_THROW(r.expect_end());
  EXPECT_THROW(r.next_chunk(), Error);
}

TEST(KldBase, AnUnfinishedWriteLeavesNothing) {
  TempDir t;
  const KldBaseHeader h = header(50, 8, 2);
  const auto chunks = random_chunks(h, 2);
  {
    KldBaseWriter w(t.dir / "b.kld", h);
    w.add_chunk(chunks[0]);
    EXPECT_THROW(w.add_chunk(std::vector<float>(3)), Error);  // a chunk of the wrong size
    EXPECT_THROW(w.commit(), Error);                          // one chunk short
  }
  EXPECT_TRUE(std::filesystem::is_empty(t.dir)) << "no file, no temporary";
}

TEST(KldBase, DamagedFilesAreRefused) {
  TempDir t;
  const KldBaseHeader h = header(50, 8, 2);
  write(t.dir / "good.kld", h, random_chunks(h, 3));
  const std::string good = read_bytes(t.dir / "good.kld");
  ASSERT_EQ(read_error(t.dir / "good.kld"), "");

  write_bytes(t.dir / "empty.kld", "");
  EXPECT_NE(read_error(t.dir / "empty.kld").find("truncated"), std::string::npos);
  write_bytes(t.dir / "text.kld", "PPL = 12.3\n");
  EXPECT_NE(read_error(t.dir / "text.kld").find("zstd"), std::string::npos);
  write_bytes(t.dir / "cut.kld", good.substr(0, good.size() - 20));
  EXPECT_NE(read_error(t.dir / "cut.kld"), "");
  // A second frame after the rows: bytes that do not belong.
  std::string extra(ZSTD_compressBound(4), '\0');
  extra.resize(ZSTD_compress(extra.data(), extra.size(), "more", 4, 1));
  write_bytes(t.dir / "extra.kld", good + extra);
  EXPECT_NE(read_error(t.dir / "extra.kld").find("after its last chunk"), std::string::npos);

  // Headers that do not add up.
  auto with_header = [&](const std::string& name, const std::string& line) {
    std::string z(ZSTD_compressBound(line.size()), '\0');
    z.resize(ZSTD_compress(z.data(), z.size(), line.data(), line.size(), 1));
    write_bytes(t.dir / name, z);
    return read_error(t.dir / name);
  };
  const std::string sha = std::string(64, 'a');
  EXPECT_NE(with_header("fmt.kld", "{\"format\":\"other\"}\n").find("format"), std::string::npos);
  EXPECT_NE(with_header("ver.kld", "{\"format\":\"bitnet-kld-base\",\"version\":9}\n").find("version 9"), std::string::npos);
  const std::string base = "{\"format\":\"bitnet-kld-base\",\"version\":1,\"vocab_sha256\":\"" + sha + "\",";
  EXPECT_NE(with_header("ctx.kld", base + "\"n_vocab\":50,\"n_ctx\":2,\"first\":1,\"tokens\":[1,2]}\n").find("n_ctx 2"),
            std::string::npos);
  EXPECT_NE(with_header("id.kld", base + "\"n_vocab\":50,\"n_ctx\":4,\"first\":2,\"tokens\":[1,2,3,50]}\n").find("outside"),
            std::string::npos);
  EXPECT_NE(with_header("whole.kld", base + "\"n_vocab\":50,\"n_ctx\":4,\"first\":2,\"tokens\":[1,2,3]}\n").find("whole"),
            std::string::npos);
  EXPECT_NE(with_header("rows.kld", base + "\"n_vocab\":50,\"n_ctx\":4,\"first\":2,\"tokens\":[1,2,3,4]}\n").find("chunk 1"),
            std::string::npos);
  EXPECT_NE(read_error(t.dir / "missing.kld"), "");
}

}  // namespace
}  // namespace bitnet::diag
