// `bitnet inspect FILE` on broken files, as a user would run it: exit status 3, exactly one
// "error: " line on stderr naming the file, and (for container errors) nothing on stdout.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/gguf/writer.hpp"
#include "gguf/gguf_bytes.hpp"
#include "support/fixtures.hpp"

extern char** environ;

namespace bitnet {
namespace {

using test::GgufBytes;

struct Outcome {
  int status = -1;  // exit code, or 128 + signal
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class MalformedCli : public ::testing::Test {
 protected:
  test::TempDir dir_;

  Outcome inspect(const std::filesystem::path& model) {
    const char* bin = std::getenv("BITNET_BIN");
    EXPECT_NE(bin, nullptr) << "BITNET_BIN is not set (run through ctest)";
    Outcome r;
    if (!bin) return r;
    const std::string out_path = (dir_ / "stdout.txt").string(), err_path = (dir_ / "stderr.txt").string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::string arg0 = bin, arg1 = "inspect", arg2 = model.string();
    std::vector<char*> argv = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    pid_t pid = -1;
    int rc = posix_spawn(&pid, bin, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    EXPECT_EQ(rc, 0) << "posix_spawn " << bin;
    if (rc != 0) return r;
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0) {
    }
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
  }

  // Exit 3, one "error: " line naming the file and holding `fact`, and stdout empty when
  // the container itself is broken (there is no report to print).
  void expect_rejected(const std::filesystem::path& model, const std::string& fact, bool container = true) {
    SCOPED_TRACE(model.string());
    Outcome r = inspect(model);
    EXPECT_EQ(r.status, 3) << "stderr: " << r.err;
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
  Outcome r = inspect(test::fixture_file("models/stories260K.gguf"));
  EXPECT_EQ(r.status, 0) << r.err;
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
  Outcome r = inspect(p);
  EXPECT_NE(r.out.find("verdict       invalid"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bitnet
