// Formatting of error chains and the always-on invariant check.
#include "error.hpp"

#include <cstdio>
#include <cstdlib>

namespace bitnet {

std::string Error::format() const {
  std::string out = "error: " + chain_.front() + "\n";
  for (size_t i = 1; i < chain_.size(); ++i) out += "  caused by: " + chain_[i] + "\n";
  return out;
}

void invariant_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "bitnet: internal invariant failed: %s at %s:%d\n"
               "This is a bug; please attach `bitnet debug-report` to an issue.\n",
               expr, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace bitnet
