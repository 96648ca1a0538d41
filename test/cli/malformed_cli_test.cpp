// `bitnet inspect FILE` on broken files, as a user would run it: exit status 3, exactly one
// "error: " line on stderr naming the file, and (for container errors) nothing on stdout.
#include <gtest/gtest.h>


#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/gguf/writer.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/fixtures.hpp"
#include "support/run.hpp"

namespace bitnet {
namespace {

using test::GgufBytes;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class MalformedCli : public ::testing::Test {
 protected:
  test::TempDir dir_;

  test::RunResult inspect(const std::filesystem::path& model) { return test::run_bitnet({"inspect", model.string()}); }

  // Exit 3, one "error: " line naming the file and holding `fact`, and stdout empty when
  // the container itself is broken (there is no report to print).
  void expect_rejected(const std::filesystem::path& model, const std::string& fact, bool container = true) {
    SCOPED_TRACE(model.string());
    test::RunResult r = inspect(model);
    EXPECT_EQ(r.exit_code, 3) << "stderr: " << r.err;
    std::vector<std::string> err = lines(r.err);
    ASSERT_EQ(err.size(), 1u) << "stderr: " << r.err;
    EXPECT_TRUE(err[0].starts_with("error: " + model.string() + ": ")) << err[0];
    EXPECT_NE(err[0].find(fact), std::string::npos) << "missing '" << fact << "' in: " << err[0];
    if (container) {
      EXPECT_EQ(r.out, "") << "stdout: " << r.out;
    }
  }
};

TEST_F(MalformedCli, ValidFixtureExitsZero) {
  test::RunResult r = inspect(test::fixture_file("models/stories260K.gguf"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict       ok"), std::string::npos) << r.out;
}

TEST_F(MalformedCli, BadMagic) {
  GgufBytes b;
  b.chars("GGUG").u32(3).u64(0).u64(0);
  expect_rejected(dir_.write("magic.gguf", b), "at byte 0: bad magic 'GGUG'");
}

TEST_F(MalformedCli, ShorterThanTheHeader) {
  GgufBytes b;
  b.chars("GGUF").u32(3);
  expect_rejected(dir_.write("short.gguf", b), "8 bytes, shorter than the 24-byte GGUF header");
}

TEST_F(MalformedCli, EmptyFile) { expect_rejected(dir_.write("empty.gguf", GgufBytes{}), "file is empty"); }

TEST_F(MalformedCli, NonexistentPath) { expect_rejected(dir_ / "missing.gguf", "no such file"); }

TEST_F(MalformedCli, Directory) {
  std::filesystem::create_directory(dir_ / "dir.gguf");
  expect_rejected(dir_ / "dir.gguf", "is a directory");
}

TEST_F(MalformedCli, HugeMetadataCount) {
  GgufBytes b;
  b.header(0, uint64_t{1} << 62).zeros(32);
  expect_rejected(dir_.write("count.gguf", b), "at byte 16: metadata count 4611686018427387904");
}

TEST_F(MalformedCli, ForkTensorType) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {256}, 38u, 0).pad(32).zeros(96);
  expect_rejected(dir_.write("tl1.gguf", b), "type 38 is TL1 from bitnet.cpp's fork");
}

TEST_F(MalformedCli, TruncatedData) {
  GgufBytes b;
  b.header(1, 0).tensor("w", {64}, gguf::GgmlType::F32, 0).pad(32).zeros(100);
  expect_rejected(dir_.write("cut.gguf", b), "the download is probably incomplete");
}

// A tensor name is echoed in messages; a newline in it must not forge a second error line.
TEST_F(MalformedCli, ControlCharactersInATensorNameStayOnOneLine) {
  GgufBytes b;
  b.header(2, 0).tensor("x\nerror: \x1b[2Jforged", {8}, gguf::GgmlType::F32, 0);
  b.tensor("x\nerror: \x1b[2Jforged", {8}, gguf::GgmlType::F32, 32).pad(32).zeros(64);
  expect_rejected(dir_.write("name.gguf", b), "duplicate tensor name 'x\\x0aerror: \\x1b[2Jforged'");
}

// A model-level problem: the container is fine, so the report is printed, then the error.
TEST_F(MalformedCli, ModelLevelProblemPrintsTheReportThenOneError) {
  static const std::vector<std::byte> zeros(64 * 4);
  gguf::GgufWriter w;
  w.set_string("general.architecture", "bitnet");
  w.add_tensor("token_embd.weight", gguf::GgmlType::F32, {64}, zeros);
  std::filesystem::path p = dir_ / "model.gguf";
  w.write(p);
  expect_rejected(p, "invalid: ", /*container=*/false);
  test::RunResult r = inspect(p);
  EXPECT_NE(r.out.find("verdict       invalid"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bitnet
