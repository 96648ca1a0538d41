// The optimised kernel tables this CPU runs (every backend test compares them with the reference).
#pragma once

#include <vector>

#include "backends/register.hpp"
#include "core/kernels/dispatch.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {

inline std::vector<const KernelTable*> optimised_tables() {
  backends::register_all();
  std::vector<const KernelTable*> out;
  for (const Backend& b : registered_backends())
    if (b.supported() && b.name != "reference") out.push_back(&b.table());
  return out;
}

}  // namespace bitnet::kernels
