// Test helper: find shared fixture files through BITNET_FIXTURE_PATH, defaulting to the
// BITNET_FIXTURE_DIR the build was configured with (../shared/fixtures beside the checkout).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace bitnet::test {

// fixture_file("models/stories260K.gguf"). Throws (failing the test) when it is missing:
// a fixture test that silently skips would prove nothing.
inline std::string fixture_dirs() {
  const char* env = std::getenv("BITNET_FIXTURE_PATH");
  return env && *env ? env : BITNET_TEST_FIXTURE_DIR;
}

inline std::filesystem::path fixture_file(const std::string& rel) {
  std::string dirs = fixture_dirs();
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty()) {
      std::filesystem::path p = std::filesystem::path(dir) / rel;
      if (std::filesystem::exists(p)) return p;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  throw std::runtime_error("fixture '" + rel + "' not found in BITNET_FIXTURE_PATH='" + dirs + "'");
}

}  // namespace bitnet::test
