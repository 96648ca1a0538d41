// gather_machine_info: small readers over /proc and /sys. Every reader tolerates a missing or
// odd file (containers hide some of them), because a bug report must never fail to be written.
#include "diag/machine_info.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "core/base/cpu_features.hpp"

namespace bitnet::diag {
namespace {

std::string read_text(const char* path, size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string s(limit, '\0');
  in.read(s.data(), static_cast<std::streamsize>(limit));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// "key : value" or "key=value" lines -> the value of the first `key`, trimmed.
std::optional<std::string> field(const std::string& text, std::string_view key, char sep) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t at = line.find(sep);
    if (at == std::string::npos || trim(std::string_view(line).substr(0, at)) != key) continue;
    return trim(std::string_view(line).substr(at + 1));
  }
  return std::nullopt;
}

std::optional<uint64_t> leading_number(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  return v;
}

// /proc/meminfo values are "12345 kB".
std::optional<uint64_t> meminfo_bytes(const std::string& meminfo, std::string_view key) {
  auto v = field(meminfo, key, ':');
  if (!v) return std::nullopt;
  auto n = leading_number(*v);
  if (!n) return std::nullopt;
  return v->ends_with("kB") ? *n * 1024 : *n;
}

std::string os_name(const utsname& u) {
  std::string text = read_text("/etc/os-release");
  if (auto v = field(text, "PRETTY_NAME", '=')) {
    std::string s = *v;
    if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) s = s.substr(1, s.size() - 2);
    if (!s.empty()) return s;
  }
  return u.sysname;
}

// Physical cores: distinct (physical id, core id) pairs; absent when cpuinfo does not say.
std::optional<int> physical_cores(const std::string& cpuinfo) {
  std::set<std::pair<std::string, std::string>> cores;
  std::string phys, core;
  std::istringstream in(cpuinfo);
  for (std::string line; std::getline(in, line);) {
    if (trim(line).empty()) {
      if (!core.empty()) cores.emplace(phys, core);
      phys.clear();
      core.clear();
      continue;
    }
    size_t at = line.find(':');
    if (at == std::string::npos) continue;
    std::string key = trim(std::string_view(line).substr(0, at));
    if (key == "physical id") phys = trim(std::string_view(line).substr(at + 1));
    if (key == "core id") core = trim(std::string_view(line).substr(at + 1));
  }
  if (!core.empty()) cores.emplace(phys, core);
  if (cores.empty()) return std::nullopt;
  return static_cast<int>(cores.size());
}

bool has_word(const std::string& text, std::string_view word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

MachineInfo gather_machine_info() {
  MachineInfo m;
  utsname u{};
  if (::uname(&u) == 0) {
    m.kernel = fmt::format("{} {}", u.release, u.version);
    m.arch = u.machine;
    m.wsl = lower(u.release).find("microsoft") != std::string::npos || lower(u.release).find("wsl") != std::string::npos;
  }
  m.os = os_name(u);

  const std::string cpuinfo = read_text("/proc/cpuinfo", 4 << 20);
  const CpuFeatures& f = cpu_features();
  m.cpu_model = f.brand.empty() ? field(cpuinfo, "model name", ':').value_or("") : f.brand;
  m.cpu_flags = {{"AVX2", f.avx2},         {"FMA", f.fma},           {"F16C", f.f16c},
                 {"AVX-VNNI", f.avxvnni},  {"AVX512F", f.avx512f},   {"AVX512BW", f.avx512bw},
                 {"AVX512VL", f.avx512vl}, {"AVX512-VNNI", f.avx512vnni}};
  if (auto flags = field(cpuinfo, "flags", ':')) m.hypervisor = has_word(*flags, "hypervisor");
  m.physical_cores = physical_cores(cpuinfo);
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.logical_cores = online > 0 ? static_cast<int>(online) : 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  m.usable_cores = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : m.logical_cores;

  const std::string meminfo = read_text("/proc/meminfo");
  m.ram_total = meminfo_bytes(meminfo, "MemTotal");
  m.ram_available = meminfo_bytes(meminfo, "MemAvailable");
  m.hugepages_total = meminfo_bytes(meminfo, "HugePages_Total");
  m.hugepage_size = meminfo_bytes(meminfo, "Hugepagesize");
  long page = ::sysconf(_SC_PAGESIZE);
  m.page_size = page > 0 ? static_cast<uint64_t>(page) : 0;
  // "always [madvise] never": the bracketed word is the active setting.
  std::string thp = read_text("/sys/kernel/mm/transparent_hugepage/enabled");
  if (size_t b = thp.find('['), e = thp.find(']'); b != std::string::npos && e != std::string::npos && e > b)
    m.transparent_hugepages = thp.substr(b + 1, e - b - 1);

  std::string vendor = trim(read_text("/sys/class/dmi/id/sys_vendor", 256));
  std::string product = trim(read_text("/sys/class/dmi/id/product_name", 256));
  if (m.hypervisor) m.vm_vendor = trim(fmt::format("{} {}", vendor, product));
  if (::access("/.dockerenv", F_OK) == 0) m.container = "docker";
  else if (::access("/run/.containerenv", F_OK) == 0) m.container = "podman";
  return m;
}

}  // namespace bitnet::diag
