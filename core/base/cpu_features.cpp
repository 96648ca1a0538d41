// CPU feature detection through GCC's __builtin_cpu_supports (which also checks that the OS
// saves the AVX/AVX-512 register state) and the CPUID brand string.
#include "cpu_features.hpp"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace bitnet {

namespace {

// Linux keeps AMX tile data off until a process asks (arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); without it the first tile instruction dies with SIGILL.
bool amx_permitted() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

std::string brand_string() {
  unsigned regs[12] = {};
  unsigned max = __get_cpuid_max(0x80000000u, nullptr);
  if (max < 0x80000004u) return {};
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char text[49] = {};
  std::memcpy(text, regs, 48);
  std::string s(text);
  const auto b = s.find_first_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b);
}

CpuFeatures detect() {
  __builtin_cpu_init();
  CpuFeatures f;
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#if defined(__clang__) && __clang_major__ < 16
  // clang before 16 (Debian 12's 14 builds the fuzz targets) does not know "avxvnni": CPUID
  // leaf 7 sub-leaf 1, EAX bit 4, valid only when the OS saves the AVX state (as avx2 says).
  unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0;
  f.avxvnni = f.avx2 && __get_cpuid_count(7, 1, &a7, &b7, &c7, &d7) && (a7 & (1u << 4)) != 0;
#else
  f.avxvnni = __builtin_cpu_supports("avxvnni");
#endif
  // AMX-TILE and AMX-INT8: CPUID leaf 7 sub-leaf 0, EDX bits 24 and 25 (read directly: not every
  // compiler's __builtin_cpu_supports knows them); usable only once the kernel grants the state.
  unsigned a70 = 0, b70 = 0, c70 = 0, d70 = 0;
  const bool amx_cpu = __get_cpuid_count(7, 0, &a70, &b70, &c70, &d70) && (d70 & (1u << 24)) != 0 && (d70 & (1u << 25)) != 0;
  f.amx_int8 = amx_cpu && amx_permitted();
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) f.f16c = (c & bit_F16C) != 0;
  f.brand = brand_string();
  return f;
}

}  // namespace

std::string CpuFeatures::summary() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(f16c, "F16C");
  add(avxvnni, "AVX-VNNI");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vl, "AVX512VL");
  add(avx512vnni, "AVX512-VNNI");
  add(amx_int8, "AMX-INT8");
  return s.empty() ? "none" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace bitnet
