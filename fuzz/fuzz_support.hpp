// Helpers shared by the fuzz targets: a reusable in-memory file for APIs that take a path, and
// where the shared fixtures are (BITNET_FIXTURE_PATH, else the directory the build was configured with).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace bitnet::fuzz {

// A memfd that holds the current input; path() names it for APIs that open a file.
class MemFile {
 public:
  MemFile();
  // Replaces the contents with data[0..size).
  void assign(const uint8_t* data, size_t size);
  const std::filesystem::path& path() const { return path_; }

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

// The first fixture directory holding `rel`; aborts with a message when there is none (the
// target cannot run without its fixtures, and silently fuzzing less would hide that).
std::filesystem::path fixture_file(const std::string& rel);

// The start of a target's LLVMFuzzerInitialize: logging off (the inputs are meant to fail), and
// with BITNET_FUZZ_WRITE_SEEDS=DIR set, the target's seeds written to DIR and the process ended.
void init_target(void (*write_seeds)(const std::filesystem::path& dir));

}  // namespace bitnet::fuzz
