// Backend registration. Compiled without ISA flags: it only asks the CPU what it has and hands
// core the tables' accessors.
#include "backends/register.hpp"

#include "backends/tables.hpp"
#include "core/base/cpu_features.hpp"
#include "core/kernels/dispatch.hpp"

namespace bitnet::backends {
namespace {

bool avx2_ok() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c;
}

bool avx512_ok() {
  const CpuFeatures& f = cpu_features();
  return avx2_ok() && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
}

bool amx_ok() { return avx512_ok() && cpu_features().amx_int8; }

}  // namespace

void register_all() {
  kernels::register_backend({"avx2", avx2_ok, avx2_table, 10});
  kernels::register_backend({"avx512", avx512_ok, avx512_table, 20});
  kernels::register_backend({"amx", amx_ok, amx_table, 30});
}

const char* compiled() { return "avx2 avx512 amx"; }

}  // namespace bitnet::backends
