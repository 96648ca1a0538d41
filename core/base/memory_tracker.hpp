// Per-tag accounting of the engine's own buffers: bytes held, peak, allocation count. A tracker
// exists only inside a MemoryPool (its constructor is private), so every pool allocation is
// counted and no pool runs untracked. Safe to read from any thread while others allocate.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

struct TagStats {
  std::string tag;
  uint64_t current = 0;  // bytes held now
  uint64_t peak = 0;     // most bytes held at once
  uint64_t allocs = 0;   // allocations made (pool hits and misses alike)
  uint64_t live = 0;     // blocks held now
  uint64_t at_peak = 0;  // bytes this tag held when the total last peaked
};

struct TrackerSnapshot {
  std::vector<TagStats> tags;  // in order of first use
  uint64_t current = 0;        // all tags
  uint64_t peak = 0;           // most bytes held at once, all tags together
  uint64_t allocs = 0;
  // This tag's numbers, or zeros (with the name filled in) when it was never used.
  TagStats find(std::string_view tag) const;
};

class MemoryTracker {
 public:
  MemoryTracker(const MemoryTracker&) = delete;
  MemoryTracker& operator=(const MemoryTracker&) = delete;

  TrackerSnapshot snapshot() const;
  TagStats tag(std::string_view tag) const { return snapshot().find(tag); }
  uint64_t current() const;
  uint64_t peak() const;
  // Starts a new peak window: every peak drops to the bytes held now.
  void reset_peaks();

 private:
  friend class MemoryPool;
  MemoryTracker() = default;

  // The outcome of try_add: ok, or which limit a request would cross (the pool builds the message).
  struct Refusal {
    enum Kind { none, capacity, tag_limit } kind = none;
    uint64_t held = 0;   // bytes held by the pool (capacity) or the tag (tag_limit)
    uint64_t limit = 0;
  };
  uint32_t intern(std::string_view tag);
  void set_limit(uint32_t tag, uint64_t bytes);
  // Counts `bytes` for `tag` unless that would pass `capacity` (0: none) or the tag's limit.
  Refusal try_add(uint32_t tag, uint64_t bytes, uint64_t capacity);
  void remove(uint32_t tag, uint64_t bytes) noexcept;

  struct Entry {
    TagStats stats;
    uint64_t limit = UINT64_MAX;  // none until a plan sets one
  };
  mutable std::mutex mu_;
  std::vector<Entry> tags_;
  uint64_t current_ = 0, peak_ = 0, allocs_ = 0;
};

}  // namespace bitnet
