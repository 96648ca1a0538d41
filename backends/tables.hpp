// Accessors of the kernel tables, one per ISA translation unit. Call only on a CPU that has the
// ISA (see register.cpp).
#pragma once

#include "core/kernels/kernels.hpp"

namespace bitnet::backends {

const kernels::KernelTable& avx2_table();
const kernels::KernelTable& avx512_table();
const kernels::KernelTable& amx_table();  // AVX-512 plus AMX-INT8 prefill GEMMs

}  // namespace bitnet::backends
