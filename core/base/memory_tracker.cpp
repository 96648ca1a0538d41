// MemoryTracker: one mutex around a handful of counters. Allocations are planned up front, so
// the lock is taken a few dozen times per session, never per token.
#include "memory_tracker.hpp"

#include <algorithm>

#include "core/base/error.hpp"

namespace bitnet {

TagStats TrackerSnapshot::find(std::string_view tag) const {
  for (const TagStats& t : tags)
    if (t.tag == tag) return t;
  TagStats none;
  none.tag = std::string(tag);
  return none;
}

TrackerSnapshot MemoryTracker::snapshot() const {
  std::lock_guard lock(mu_);
  TrackerSnapshot s;
  for (const Entry& e : tags_) s.tags.push_back(e.stats);
  s.current = current_;
  s.peak = peak_;
  s.allocs = allocs_;
  return s;
}

uint64_t MemoryTracker::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

uint64_t MemoryTracker::peak() const {
  std::lock_guard lock(mu_);
  return peak_;
}

void MemoryTracker::reset_peaks() {
  std::lock_guard lock(mu_);
  peak_ = current_;
  for (Entry& e : tags_) e.stats.peak = e.stats.at_peak = e.stats.current;
}

uint32_t MemoryTracker::intern(std::string_view tag) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < tags_.size(); ++i)
    if (tags_[i].stats.tag == tag) return static_cast<uint32_t>(i);
  tags_.emplace_back();
  tags_.back().stats.tag = std::string(tag);
  return static_cast<uint32_t>(tags_.size() - 1);
}

void MemoryTracker::set_limit(uint32_t tag, uint64_t bytes) {
  std::lock_guard lock(mu_);
  BITNET_CHECK(tag < tags_.size());
  tags_[tag].limit = bytes;
}

MemoryTracker::Refusal MemoryTracker::try_add(uint32_t tag, uint64_t bytes, uint64_t capacity) {
  std::lock_guard lock(mu_);
  BITNET_CHECK(tag < tags_.size());
  Entry& e = tags_[tag];
  // Checked and counted under one lock: two threads cannot both squeeze under a limit.
  if (capacity != 0 && bytes > capacity - std::min(capacity, current_))
    return {Refusal::capacity, current_, capacity};
  if (bytes > e.limit - std::min(e.limit, e.stats.current))
    return {Refusal::tag_limit, e.stats.current, e.limit};
  TagStats& s = e.stats;
  s.current += bytes;
  s.peak = std::max(s.peak, s.current);
  ++s.allocs;
  ++s.live;
  current_ += bytes;
  ++allocs_;
  if (current_ > peak_) {
    peak_ = current_;
    for (Entry& x : tags_) x.stats.at_peak = x.stats.current;
  }
  return {};
}

void MemoryTracker::remove(uint32_t tag, uint64_t bytes) noexcept {
  std::lock_guard lock(mu_);
  TagStats& s = tags_[tag].stats;
  s.current -= bytes;
  --s.live;
  current_ -= bytes;
}

}  // namespace bitnet
