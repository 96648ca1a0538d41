// What the CPU we run on supports (runtime detection; the build never assumes an ISA).
#pragma once

#include <string>

namespace bitnet {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
  bool avxvnni = false;
  // AMX tiles with int8 products, and the kernel's permission to use them (Linux grants the 8 KB
  // of tile state per process on request; detection asks once).
  bool amx_int8 = false;
  std::string brand;  // e.g. "Intel(R) Xeon(R) ..." ("" when unknown)

  // "AVX2 FMA F16C AVX512F ..." for logs and reports.
  std::string summary() const;
};

const CpuFeatures& cpu_features();

}  // namespace bitnet
