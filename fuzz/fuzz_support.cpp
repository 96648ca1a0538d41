// MemFile and fixture lookup for the fuzz targets.
#include "fuzz_support.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/base/log.hpp"

namespace bitnet::fuzz {

MemFile::MemFile() {
  fd_ = ::memfd_create("bitnet-fuzz", 0);
  if (fd_ < 0) {
    std::perror("memfd_create");
    std::abort();
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

void MemFile::assign(const uint8_t* data, size_t size) {
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size)) {
    std::perror("memfd write");
    std::abort();
  }
}

std::filesystem::path fixture_file(const std::string& rel) {
  const char* env = std::getenv("BITNET_FIXTURE_PATH");
  std::string dirs = env && *env ? env : BITNET_FUZZ_FIXTURE_DIR;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty() && std::filesystem::exists(std::filesystem::path(dir) / rel)) return std::filesystem::path(dir) / rel;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  std::fprintf(stderr, "fuzz: fixture '%s' not found in '%s' (set BITNET_FIXTURE_PATH)\n", rel.c_str(), dirs.c_str());
  std::abort();
}

void init_target(void (*write_seeds)(const std::filesystem::path& dir)) {
  log::Config quiet;
  quiet.level = log::Level::off;
  log::configure(quiet);
  if (const char* dir = std::getenv("BITNET_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
}

}  // namespace bitnet::fuzz
