// synthetic:SHAPE models from the command line: generated once into <cache root>/synthetic/
// (BITNET_CACHE_DIR, else $XDG_CACHE_HOME/bitnet, else ~/.cache/bitnet) and then used by every
// command as the same file; bad specs are usage errors.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/gguf/reader.hpp"
#include "core/model/convert.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/scoped.hpp"
#include "support/run.hpp"
#include "support/same_weights.hpp"

namespace bitnet::test {
namespace {

std::vector<std::string> listing(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}


TEST(SyntheticCli, GeneratedOnceIntoTheCacheAndUsedEverywhere) {
  TempDir dir;
  ScopedEnv cache("BITNET_CACHE_DIR", (dir / "cache").string());
  RunResult r = run_bitnet({"inspect", "--json", "--no-hash", "synthetic:tiny"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS);
  const std::string file{std::string_view(doc["file"])};
  EXPECT_EQ(std::filesystem::path(file).parent_path(), dir / "cache" / "synthetic");
  EXPECT_EQ(std::string_view(doc["architecture"]), "bitnet");
  EXPECT_EQ(uint64_t(doc["hparams"]["n_embd"]), 256u);
  EXPECT_EQ(uint64_t(doc["types"]["TQ2_0"]["tensors"]), 28u);
  const auto bytes = read_file(file);

  r = run_bitnet({"generate", "-m", "synthetic:tiny", "-p", "the quick brown fox", "-n", "8", "--temp", "0", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"n_gen\":8"), std::string::npos) << r.out;
  r = run_bitnet({"tokenize", "-m", "synthetic:tiny", "the quick"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[1, ", 0), 0u) << r.out;
  EXPECT_EQ(listing(dir / "cache" / "synthetic"), std::vector<std::string>{std::filesystem::path(file).filename().string()});
  EXPECT_EQ(read_file(file), bytes);

  // The i2_s variant of the shape converts to exactly the tq2_0 variant's weights.
  r = run_bitnet({"convert", "synthetic:tiny:i2_s", (dir / "t.gguf").string(), "--type", "tq2_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_weights(dir / "t.gguf", file);

  r = run_bitnet({"inspect", "synthetic:tiny:q4_0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown TYPE 'q4_0'"), std::string::npos) << r.err;
}

TEST(SyntheticCli, CacheRootFallsBackToXdgThenHome) {
  TempDir dir;
  ScopedEnv no_cache("BITNET_CACHE_DIR", std::nullopt);
  {
    ScopedEnv xdg("XDG_CACHE_HOME", (dir / "xdg").string());
    RunResult r = run_bitnet({"inspect", "--no-hash", "synthetic:tiny:seed=5"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(listing(dir / "xdg" / "bitnet" / "synthetic").size(), 1u);
  }
  ScopedEnv no_xdg("XDG_CACHE_HOME", std::nullopt);
  ScopedEnv home("HOME", (dir / "home").string());
  RunResult r = run_bitnet({"inspect", "--no-hash", "synthetic:tiny:seed=5"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(listing(dir / "home" / ".cache" / "bitnet" / "synthetic").size(), 1u);
}

}  // namespace
}  // namespace bitnet::test
