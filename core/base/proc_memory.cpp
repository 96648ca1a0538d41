// /proc parsing for process and mapping memory. smaps rather than mincore for the model: mincore
// reports the page cache (a freshly written file is all "resident" before anyone reads it),
// smaps what this process really has mapped in.
#include "proc_memory.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace bitnet {
namespace {

// "VmRSS:     1234 kB" -> 1234 * 1024; the caller has matched the key.
uint64_t kb_field(const std::string& line) {
  std::istringstream in(line.substr(line.find(':') + 1));
  uint64_t kb = 0;
  in >> kb;
  return kb * 1024;
}

}  // namespace

std::optional<ProcessMemory> read_process_memory() {
  std::ifstream in("/proc/self/status");
  if (!in) return std::nullopt;
  ProcessMemory m;
  bool rss = false, hwm = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) {
      m.rss = kb_field(line);
      rss = true;
    } else if (line.starts_with("VmHWM:")) {
      m.peak_rss = kb_field(line);
      hwm = true;
    }
  }
  if (!rss || !hwm) return std::nullopt;
  return m;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

std::optional<uint64_t> read_anon_huge_pages() {
  std::ifstream in("/proc/self/smaps_rollup");
  if (!in) return std::nullopt;
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("AnonHugePages:")) return kb_field(line);
  return std::nullopt;
}

MappingMemory read_file_mappings(const std::filesystem::path& file) {
  MappingMemory m;
  std::error_code ec;
  const std::filesystem::path want = std::filesystem::weakly_canonical(file, ec);
  if (ec) return m;
  std::ifstream in("/proc/self/smaps");
  if (!in) return m;
  // A mapping starts with "start-end perms offset dev inode [path]"; its fields follow as
  // "Key:   N kB" lines. Paths with spaces are kept whole (the path is the rest of the line).
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(':');
    const size_t space = line.find(' ');
    const bool header = space != std::string::npos && (colon == std::string::npos || space < colon);
    if (header) {
      std::istringstream h(line);
      std::string range, perms, offset, dev, inode;
      h >> range >> perms >> offset >> dev >> inode;
      std::string path;
      std::getline(h >> std::ws, path);
      inside = !path.empty() && path == want.string();
      continue;
    }
    if (!inside) continue;
    if (line.starts_with("Size:")) m.mapped += kb_field(line);
    else if (line.starts_with("Rss:")) m.resident += kb_field(line);
  }
  return m;
}

}  // namespace bitnet
