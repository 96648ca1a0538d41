// The kernel-table registry and runtime choice. core/ cannot see backends/ (layering), so the
// backends register their tables at start-up (backends/register.hpp, called by app/ and tests),
// each with the CPU features it needs. The reference table is always there.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {

struct Backend {
  std::string_view name;
  bool (*supported)() = nullptr;  // whether this CPU can run it
  // The table. Only called when supported(): a backend's code, even building its table, may
  // use instructions this CPU lacks.
  const KernelTable& (*table)() = nullptr;
  int priority = 0;               // higher wins when choosing automatically
};

void register_backend(const Backend& b);

// All registered backends, reference included, best first.
std::vector<Backend> registered_backends();

struct Selection {
  const KernelTable* table;
  std::string why;  // "best supported of: avx512 avx2 reference", or "asked for by name"
};

// name "" picks the best supported table; otherwise that table, or bitnet::Error(usage) naming
// the choices when it is unknown or this CPU cannot run it.
Selection select_backend(std::string_view name);

}  // namespace bitnet::kernels
