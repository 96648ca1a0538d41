// libFuzzer target: the reference protocol (diag/crossval): what a reference engine prints, read as
// a golden answer (parse_golden, also the golden-file format) or, when the first byte is odd, as a
// bench answer (parse_bench_answer). Only bitnet::Error may refuse the input; a golden that parses
// must survive write_golden -> parse_golden with the same ids.
#include <cstdint>
#include <string_view>

#include "core/base/error.hpp"
#include "diag/crossval/golden.hpp"
#include "diag/crossval/reference.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitnet;
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] & 1) {
      (void)diag::parse_bench_answer(text, (data[0] >> 1) & 7, (data[0] >> 4) & 7);
    } else {
      const diag::Golden g = diag::parse_golden(text, "fuzz");
      const diag::Golden back = diag::parse_golden(diag::write_golden(g), "fuzz (written back)");
      if (back.prompt_ids != g.prompt_ids || back.steps.size() != g.steps.size()) __builtin_trap();
      for (size_t i = 0; i < g.steps.size(); ++i)
        if (back.steps[i].id != g.steps[i].id || back.steps[i].top.size() != g.steps[i].top.size()) __builtin_trap();
    }
  } catch (const Error&) {
  }
  return 0;
}
