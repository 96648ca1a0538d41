// What the kernel says about this process's memory (Linux /proc): resident set and its peak, and
// how much of a mapped file is mapped and resident. Used by memcheck next to the pool's tracker,
// which only sees the engine's own buffers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

namespace bitnet {

struct ProcessMemory {
  uint64_t rss = 0;       // VmRSS
  uint64_t peak_rss = 0;  // VmHWM: since start, or since the last reset_peak_rss()
};

// nullopt when /proc/self/status cannot be read (not Linux, no /proc).
std::optional<ProcessMemory> read_process_memory();

// Starts a new VmHWM window (writes 5 to /proc/self/clear_refs); false when the kernel refused.
bool reset_peak_rss();

struct MappingMemory {
  uint64_t mapped = 0;    // bytes of address space mapping the file
  uint64_t resident = 0;  // of those, pages resident in this process (smaps Rss)
};

// Sums the mappings of `file` in /proc/self/smaps (by path); zeros when none or unreadable.
MappingMemory read_file_mappings(const std::filesystem::path& file);

// Bytes of this process's anonymous memory in transparent huge pages (AnonHugePages of
// /proc/self/smaps_rollup); nullopt when unreadable.
std::optional<uint64_t> read_anon_huge_pages();

}  // namespace bitnet
