// libFuzzer target: arbitrary bytes as a fixture manifest (core/fixtures/manifest.*), merged over
// the built-in one the way BITNET_MANIFEST files are. Only bitnet::Error may refuse the input.
#include <cstdint>
#include <string_view>

#include "core/base/error.hpp"
#include "core/fixtures/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitnet;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    fixtures::Manifest over = fixtures::Manifest::parse(json, "fuzz.json");
    fixtures::Manifest m = fixtures::Manifest::builtin();
    m.merge(over);
    for (const fixtures::Entry& e : over.entries())
      if (m.find(e.name) == nullptr) __builtin_trap();  // a merged name must be found
  } catch (const Error&) {
  }
  return 0;
}
