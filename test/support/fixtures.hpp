// Test helper: find shared fixture files through BITNET_FIXTURE_PATH (set by CTest from the
// BITNET_FIXTURE_DIR cache variable; CI points it at ../shared/fixtures).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace bitnet::test {

// fixture_file("models/stories260K.gguf"). Throws (failing the test) when it is missing:
// a fixture test that silently skips would prove nothing.
inline std::filesystem::path fixture_file(const std::string& rel) {
  const char* env = std::getenv("BITNET_FIXTURE_PATH");
  std::string dirs = env ? env : "";
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
