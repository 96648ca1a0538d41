// Test helper: the real llama.cpp reference (BITNET_LLAMA_DIR, set up by
// scripts/setup-llama-reference) is required in CI and optional elsewhere.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace bitnet::test {

inline std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace bitnet::test

#define BITNET_REQUIRE_LLAMA_REF()                                                                          \
  do {                                                                                                      \
    if (::bitnet::test::env_or_empty("BITNET_LLAMA_DIR").empty()) {                                         \
      if (::bitnet::test::env_or_empty("CI") == "true")                                                     \
        FAIL() << "BITNET_LLAMA_DIR is not set in CI: scripts/test must run scripts/setup-llama-reference"; \
      GTEST_SKIP() << "BITNET_LLAMA_DIR is not set; run scripts/setup-llama-reference and export it";       \
    }                                                                                                       \
  } while (0)
