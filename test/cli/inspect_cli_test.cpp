// `bitnet inspect` and `bitnet --version` run as a user would: the built binary in a child
// process. JSON output is parsed back with simdjson and compared with independent facts.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/gguf/reader.hpp"
#include "support/fixtures.hpp"
#include "support/run.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

std::map<std::string, std::string> published_sums() {
  std::map<std::string, std::string> sums;
  std::ifstream in(fixture_file("SHA256SUMS"));
  std::string hex, name;
  while (in >> hex >> name) sums[name] = hex;
  return sums;
}

int count_lines_starting(const std::string& s, const std::string& prefix) {
  int n = 0;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) n += line.starts_with(prefix);
  return n;
}

TEST(InspectCli, EveryModelFixtureReportsArchitectureShapesAndChecksum) {
  auto sums = published_sums();
  struct Want {
    std::string file, arch;
    uint64_t n_embd, n_layer, n_tensors;
  };
  const std::vector<Want> wants = {
      {"models/stories260K.gguf", "llama", 64, 5, 48},
      {"models/bitnet-tiny-f16.gguf", "bitnet", 256, 4, 46},
      {"models/bitnet-tiny-i2_s.gguf", "bitnet", 256, 4, 46},
      {"models/bitnet-tiny-tq2_0.gguf", "bitnet", 256, 4, 46},
      {"models/bitnet-tiny-tq2_0-embf16.gguf", "bitnet", 256, 4, 46},
      {"models/bitnet-tiny-tq1_0.gguf", "bitnet", 256, 4, 46},
      {"models/bitnet-b158-tiny-f16.gguf", "bitnet-b1.58", 256, 4, 46},
      {"models/bitnet-b158-tiny-i2_s.gguf", "bitnet-b1.58", 256, 4, 46},
      {"models/bitnet-b158-tiny-bpe-f16.gguf", "bitnet-b1.58", 256, 4, 46},
      {"models/bitnet-b158-tiny-bpe-i2_s.gguf", "bitnet-b1.58", 256, 4, 46},
  };
  simdjson::dom::parser parser;
  for (const Want& w : wants) {
    SCOPED_TRACE(w.file);
    RunResult r = run_bitnet({"inspect", "--json", fixture_file(w.file).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
    EXPECT_EQ(std::string_view(doc["architecture"]), w.arch);
    EXPECT_EQ(uint64_t(doc["hparams"]["n_embd"]), w.n_embd);
    EXPECT_EQ(uint64_t(doc["hparams"]["n_layer"]), w.n_layer);
    EXPECT_EQ(uint64_t(doc["n_tensors"]), w.n_tensors);
    EXPECT_EQ(std::string_view(doc["sha256"]), sums.at(w.file));
    EXPECT_EQ(std::string_view(doc["verdict"]), "ok");
    EXPECT_EQ(uint64_t(doc["size"]), std::filesystem::file_size(fixture_file(w.file)));
  }
}

// README and --help: exit 3 unless the file is valid and runnable. A vocabulary-only file is
// valid but not a model: the full report on stdout, then one error line and exit 3.
TEST(InspectCli, VocabFilesAreVocabOnly) {
  for (const char* file : {"vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-llama-bpe.gguf",
                           "vocab/ggml-vocab-gpt-2.gguf"}) {
    const std::string path = fixture_file(file).string();
    RunResult r = run_bitnet({"inspect", "--json", "--no-hash", path});
    EXPECT_EQ(r.exit_code, 3) << file << r.err;
    EXPECT_EQ(r.err.rfind("error: " + path + ": vocab-only: no tensors", 0), 0u) << r.err;
    EXPECT_EQ(count_lines_with(r.err, "error: "), 1u) << r.err;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS);
    EXPECT_EQ(std::string_view(doc["verdict"]), "vocab-only") << file;
    EXPECT_EQ(uint64_t(doc["n_tensors"]), 0u);
    EXPECT_TRUE(doc["sha256"].is_null());
  }
}

TEST(InspectCli, TextReportAndTensorTable) {
  RunResult r = run_bitnet({"inspect", "--tensors", fixture_file("models/bitnet-tiny-i2_s.gguf").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture  bitnet"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n_head 4, n_head_kv 2, head_dim 64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  I2_S        28 tensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_NE(r.out.find("16416 bytes"), std::string::npos) << "256*256/4+32";
  EXPECT_NE(r.out.find("verdict       ok"), std::string::npos);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(InspectCli, DefaultModelIsTheStoriesFixture) {
  RunResult r = run_bitnet({"inspect", "--no-hash"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("stories260K.gguf"), std::string::npos);
  EXPECT_NE(r.out.find("n_embd 64, n_layer 5, n_ff 172"), std::string::npos) << r.out;
}

TEST(InspectCli, MissingFileIsExit3WithOneErrorLine) {
  RunResult r = run_bitnet({"inspect", "/nonexistent/model.gguf"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.err, "error: /nonexistent/model.gguf: no such file\n");
}

// A mistyped name is a usage error (2), not a download failure (4), and says what exists.
TEST(InspectCli, UnknownFixtureIsExit2ListingTheKnownNames) {
  for (const char* cmd : {"inspect", "generate"}) {
    RunResult r = std::string(cmd) == "inspect" ? run_bitnet({cmd, "fixture:no-such-model"})
                                                : run_bitnet({cmd, "-m", "fixture:no-such-model", "-p", "x"});
    EXPECT_EQ(r.exit_code, 2) << cmd;
    EXPECT_TRUE(r.out.empty());
    EXPECT_EQ(count_lines_starting(r.err, "error: "), 1) << r.err;
    EXPECT_NE(r.err.find("unknown fixture 'no-such-model': it is not in the manifest (known: stories260K, "),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find("ggml-vocab-llama-spm"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'bitnet fixtures list'"), std::string::npos) << r.err;
  }
}

TEST(InspectCli, UsageErrorsAreExit2) {
  RunResult a = run_bitnet({"inspect", "--no-such-flag"});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_EQ(count_lines_starting(a.err, "error: "), 1) << a.err;
  RunResult b = run_bitnet({"--log-level", "loud", "inspect", "--no-hash"});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("unknown log level 'loud'"), std::string::npos) << b.err;
  RunResult c = run_bitnet({"no-such-command"});
  EXPECT_EQ(c.exit_code, 2);
}

TEST(InspectCli, LogsNeverReachStdout) {
  RunResult r = run_bitnet({"-vvv", "inspect", "--json", "--no-hash", fixture_file("models/stories260K.gguf").string()});
  ASSERT_EQ(r.exit_code, 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  EXPECT_NE(r.err.find("[gguf]"), std::string::npos) << "debug logs go to stderr: " << r.err;
}

TEST(VersionCli, NamesVersionCommitBuildCompilerFlagsBackends) {
  RunResult r = run_bitnet({"--version"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("bitnet 0.")) << r.out;
  for (const char* field : {"\ncommit: ", "\nbuild type: ", "\ncompiler: ", "\ncompile flags: ", "\nbackends: "})
    EXPECT_NE(r.out.find(field), std::string::npos) << field;
  EXPECT_NE(r.out.find("backends: reference"), std::string::npos);
}

// Issue #20, point 19: --kv lists every metadata key; --json still gives a verdict for a file
// too broken to report on; --check-tensors finds a NaN weight and names the tensor (inspect and
// generate), where it used to surface only as garbage output.
TEST(InspectCli, KvListsEveryKey) {
  RunResult r = run_bitnet({"inspect", "--kv", "--no-hash"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("metadata      19 keys"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("llama.embedding_length"), std::string::npos);
  EXPECT_NE(r.out.find("[512 x string: \"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", ...]"), std::string::npos) << r.out;
  RunResult j = run_bitnet({"inspect", "--kv", "--no-hash", "--json"});
  EXPECT_NE(j.out.find("\"key\": \"llama.block_count\""), std::string::npos) << j.out;
}

TEST(InspectCli, JsonOnABrokenFileStillGivesTheVerdict) {
  TempDir dir;
  const std::string bad = (dir / "bad.gguf").string();
  std::ofstream(bad) << "not gguf";
  RunResult r = run_bitnet({"inspect", bad, "--json"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.out.find("\"verdict\": \"invalid\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"error\": \"" + bad + ": at byte 0"), std::string::npos) << r.out;
}

TEST(InspectCli, CheckTensorsNamesANanWeight) {
  TempDir dir;
  const std::filesystem::path copy = dir / "nan.gguf";
  std::filesystem::copy_file(fixture_file("models/stories260K.gguf"), copy);
  {
    // output_norm.weight (F32, stories260K) starts at byte 145248: its element 3 becomes a NaN.
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(145248 + 3 * 4);
    const uint32_t nan_bits = 0x7fc00000u;
    f.write(reinterpret_cast<const char*>(&nan_bits), 4);
  }
  RunResult clean = run_bitnet({"inspect", "--check-tensors", "--no-hash"});
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_NE(clean.out.find("every value finite"), std::string::npos) << clean.out;
  RunResult r = run_bitnet({"inspect", copy.string(), "--check-tensors", "--no-hash"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("tensor 'output_norm.weight': element 3 is nan"), std::string::npos) << r.err;
  RunResult unchecked = run_bitnet({"inspect", copy.string(), "--no-hash"});
  EXPECT_EQ(unchecked.exit_code, 0) << "without the flag the values are not read";
  RunResult g = run_bitnet({"generate", "-m", copy.string(), "-p", "Once", "-n", "2", "--check-tensors"});
  EXPECT_EQ(g.exit_code, 3);
  EXPECT_NE(g.err.find("tensor 'output_norm.weight': element 3 is nan: the weights are not finite"), std::string::npos)
      << g.err;
  EXPECT_EQ(g.out, "");
}

// The I2_S tensor scale (one float after the packed codes) is checked before the codes: a NaN
// scale would make every weight of the tensor NaN, and the error names the tensor and the scale.
TEST(InspectCli, CheckTensorsNamesANanI2sScale) {
  TempDir dir;
  const std::filesystem::path copy = dir / "nan-scale.gguf";
  std::filesystem::copy_file(fixture_file("models/bitnet-tiny-i2_s.gguf"), copy);
  std::string name;
  uint64_t at = 0;
  {
    const gguf::GgufFile f = gguf::GgufFile::open(copy);
    for (const gguf::TensorInfo& t : f.tensors())
      if (t.type == gguf::GgmlType::I2_S) {
        name = t.name;
        at = f.data_offset() + t.offset + static_cast<uint64_t>(t.n_elements()) / 4;
        break;
      }
  }
  ASSERT_FALSE(name.empty()) << "the fixture has I2_S tensors";
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    const uint32_t nan_bits = 0x7fc00000u;
    f.write(reinterpret_cast<const char*>(&nan_bits), 4);
  }
  RunResult r = run_bitnet({"inspect", copy.string(), "--check-tensors", "--no-hash"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("tensor '" + name + "': its I2_S scale is nan"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bitnet::test
