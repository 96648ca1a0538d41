// Human-readable sizes for reports and messages, one spelling across the commands.
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace bitnet {

// 1536 -> "1.50 KiB"; below 1 KiB whole bytes ("512 B").
inline std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace bitnet
