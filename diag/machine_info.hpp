// What debug-report says about the machine: OS, kernel, CPU, cores, runtime CPU flags, memory,
// hugepages and whether we run under a hypervisor, WSL or a container. Read from uname, /proc,
// /sys and /etc/os-release (never from environment variables); a fact that cannot be read stays
// empty rather than guessed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bitnet::diag {

struct MachineInfo {
  std::string os;            // PRETTY_NAME of /etc/os-release, else uname sysname
  std::string kernel;        // uname release + version
  std::string arch;          // uname machine
  std::string cpu_model;     // CPUID brand string, else /proc/cpuinfo "model name"
  int logical_cores = 0;     // online CPUs
  int usable_cores = 0;      // in this process's affinity mask (taskset, cgroup cpusets)
  std::optional<int> physical_cores;  // distinct (physical id, core id) pairs of /proc/cpuinfo
  // The runtime flags the kernels care about, in a fixed order: {"AVX2", true}, ...
  std::vector<std::pair<std::string, bool>> cpu_flags;
  std::optional<uint64_t> ram_total;      // bytes
  std::optional<uint64_t> ram_available;  // bytes (MemAvailable: what can be had without swapping)
  uint64_t page_size = 0;
  std::string transparent_hugepages;      // "always", "madvise", "never" or "" when unknown
  std::optional<uint64_t> hugepages_total;  // preallocated HugePages_Total
  std::optional<uint64_t> hugepage_size;    // bytes
  bool hypervisor = false;                // the CPUID hypervisor bit ("hypervisor" in cpuinfo flags)
  std::string vm_vendor;                  // /sys/class/dmi/id sys_vendor + product_name, if readable
  bool wsl = false;                       // the kernel release names Microsoft/WSL
  std::string container;                  // "docker", "podman", or "" when none was detected
};

MachineInfo gather_machine_info();

}  // namespace bitnet::diag
