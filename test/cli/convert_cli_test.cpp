// `bitnet convert` as a user runs it: exit codes (usage 2, invalid model 3, unwritable output 1
// with nothing left behind), the one-line --arch warning, outputs checked against the fixture
// they must equal.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "core/gguf/reader.hpp"
#include "core/model/convert.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/fixtures.hpp"
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

int count_lines(const std::string& s) {
  int n = 0;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

TEST(ConvertCli, ConvertsAndReports) {
  TempDir dir;
  const auto out = dir / "tq2.gguf";
  RunResult r = run_bitnet({"convert", fixture_file("models/bitnet-tiny-f16.gguf").string(), out.string(), "--type", "tq2_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, out.string() + ": 28 weight tensors as TQ2_0, 18 tensors copied\n");
  EXPECT_EQ(r.err, "");
  expect_same_weights(out, fixture_file("models/bitnet-tiny-tq2_0-embf16.gguf"));
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"tq2.gguf"});
  // fixture: names work as IN, and the converted file runs.
  r = run_bitnet({"convert", "fixture:bitnet-tiny-i2_s", (dir / "back.gguf").string(), "--type", "I2_S"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_bitnet({"generate", "-m", out.string(), "-p", "once upon a time", "-n", "4", "--temp", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ConvertCli, BadTypeIsUsageError) {
  TempDir dir;
  const auto out = dir / "x.gguf";
  for (const char* type : {"q4_0", "i2", "tl2"}) {
    RunResult r = run_bitnet({"convert", fixture_file("models/bitnet-tiny-f16.gguf").string(), out.string(), "--type", type});
    EXPECT_EQ(r.exit_code, 2) << type;
    EXPECT_EQ(r.err, std::string("error: --type '") + type + "' is not one of i2_s, tq2_0, tq1_0, f16, f32\n");
  }
  RunResult r = run_bitnet({"convert", fixture_file("models/bitnet-tiny-f16.gguf").string(), out.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--type is required"), std::string::npos) << r.err;
  r = run_bitnet({"convert", fixture_file("models/bitnet-tiny-f16.gguf").string(), out.string(), "--type", "i2_s", "--arch", "llama"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(listing(dir.path()).empty());
}

TEST(ConvertCli, NonTernaryIsExit3AndWritesNothing) {
  TempDir dir;
  RunResult r = run_bitnet({"convert", "fixture:stories260K", (dir / "x.gguf").string(), "--type", "i2_s"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err.rfind("error: tensor 'blk.0.attn_q.weight' (F32 [64, 64]) is not ternary: element 0 is ", 0), 0u) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_TRUE(listing(dir.path()).empty());
  r = run_bitnet({"convert", "fixture:stories260K", (dir / "x.gguf").string(), "--type", "i2_s", "--requantize"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("35 weight tensors as I2_S (35 requantized, lossy)"), std::string::npos) << r.out;
  // A block-size misfit is exit 3 too, --requantize or not.
  r = run_bitnet({"convert", "fixture:stories260K", (dir / "y.gguf").string(), "--type", "tq1_0", "--requantize"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("tensor 'blk.0.attn_q.weight' cannot be TQ1_0"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"x.gguf"});
}

TEST(ConvertCli, UnwritableOutputIsExit1AndLeavesNoPartialFile) {
  TempDir dir;
  write_file(dir / "file", std::vector<std::byte>(4));
  for (const auto& out : {dir / "file" / "out.gguf", dir / "missing" / "out.gguf"}) {
    RunResult r = run_bitnet({"convert", "fixture:bitnet-tiny-i2_s", out.string(), "--type", "tq2_0"});
    EXPECT_EQ(r.exit_code, 1) << out;
    EXPECT_NE(r.err.find("cannot create"), std::string::npos) << r.err;
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"file"});
  }
  // Replacing a directory fails at the rename: the temporary file is removed.
  std::filesystem::create_directory(dir / "d.gguf");
  write_file(dir / "d.gguf" / "keep", std::vector<std::byte>(1));
  RunResult r = run_bitnet({"convert", "fixture:bitnet-tiny-i2_s", (dir / "d.gguf").string(), "--type", "tq2_0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"d.gguf", "file"}));
}

TEST(ConvertCli, ArchRenameWarnsOnce) {
  TempDir dir;
  RunResult r = run_bitnet({"convert", "fixture:bitnet-b158-tiny-i2_s", (dir / "b.gguf").string(), "--type", "tq2_0",
                            "--arch", "bitnet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("bitnet.hidden_activation = \"relu2\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SiLU"), std::string::npos) << r.err;
  auto f = gguf::GgufFile::open(dir / "b.gguf");
  EXPECT_EQ(f.get_string("general.architecture"), "bitnet");
  EXPECT_EQ(f.get_string("bitnet.hidden_activation"), "relu2");
  r = run_bitnet({"inspect", "--json", "--no-hash", (dir / "b.gguf").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  EXPECT_EQ(std::string_view(doc["hparams"]["ffn_act"]), "relu2");
  // -q silences it.
  r = run_bitnet({"-q", "convert", "fixture:bitnet-b158-tiny-i2_s", (dir / "c.gguf").string(), "--type", "tq2_0", "--arch", "bitnet"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace bitnet::test
