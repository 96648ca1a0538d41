// core/base/temp_files: the TempFile guard (removed unless committed, renamed when committed), the
// registry a signal handler empties, and the PID in a temporary's name.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/base/error.hpp"
#include "core/base/temp_files.hpp"
#include "support/scoped.hpp"

namespace bitnet {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string tmp_name(const fs::path& final_path) { return final_path.string() + ".tmp-" + std::to_string(::getpid()); }

TEST(TempFile, IsRemovedUnlessCommitted) {
  test::TempDir dir;
  const fs::path out = dir / "m.gguf";
  {
    TempFile t(out);
    EXPECT_EQ(t.path().string(), tmp_name(out));
    std::ofstream(t.path()) << "half";
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  {
    TempFile t(out);
    std::ofstream(t.path()) << "whole";
    t.commit();
  }
  EXPECT_EQ(read_text(out), "whole");
  EXPECT_FALSE(fs::exists(tmp_name(out)));
}

TEST(TempFile, ACommitThatCannotRenameThrowsAndLeavesNothing) {
  test::TempDir dir;
  fs::create_directory(dir / "taken");
  fs::create_directory(dir / "taken" / "x");  // rename() cannot replace a non-empty directory
  {
    TempFile t(dir / "taken");
    std::ofstream(t.path()) << "data";
    EXPECT_THROW(t.commit(), Error);
  }
  EXPECT_FALSE(fs::exists(tmp_name(dir / "taken")));
}

TEST(TempFile, RegisteredFilesAreRemovedByTheSignalPathAndOnlyWhileRegistered) {
  test::TempDir dir;
  const fs::path out = dir / "m.gguf";
  TempFile t(out);
  std::ofstream(t.path()) << "half";
  const fs::path other = dir / "other.tmp-1";
  std::ofstream(other) << "not registered";
  remove_registered_temp_files();
  EXPECT_FALSE(fs::exists(t.path()));
  EXPECT_TRUE(fs::exists(other));
  register_temp_file(other);
  unregister_temp_file(other);
  remove_registered_temp_files();
  EXPECT_TRUE(fs::exists(other));
}

TEST(TempFile, ThePidInTheName) {
  EXPECT_EQ(temp_file_pid("m.gguf.tmp-1234"), 1234);
  EXPECT_EQ(temp_file_pid("a.tmp-b.tmp-7"), 7);
  for (const char* not_one : {"m.gguf", "m.gguf.tmp-", "m.gguf.tmp-12a", ".tmp-5", "m.tmp-0", "m.tmp-12345678901", "m.part"})
    EXPECT_EQ(temp_file_pid(not_one), std::nullopt) << not_one;
}

TEST(TempFile, ProcessAlive) {
  EXPECT_TRUE(process_alive(::getpid()));
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(process_alive(child));
}

}  // namespace
}  // namespace bitnet
