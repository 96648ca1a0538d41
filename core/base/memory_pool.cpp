// MemoryPool: aligned_alloc underneath; freed blocks are kept by exact size, so a session built
// again with the same shape gets its buffers back without the system allocator. A request that
// finds no kept block of its size drops them all first: the pool's footprint never grows past
// what was held at once.
#include "memory_pool.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

#include "core/base/log.hpp"

namespace bitnet {

PoolBuffer& PoolBuffer::operator=(PoolBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = std::exchange(o.pool_, nullptr);
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    tag_ = o.tag_;
  }
  return *this;
}

void PoolBuffer::reset() noexcept {
  if (data_ != nullptr) pool_->release(data_, tag_, bytes_);
  pool_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

MemoryPool::~MemoryPool() {
  // A buffer outliving its pool would hand its block to freed memory later.
  BITNET_CHECK(tracker_.current() == 0);
  std::lock_guard lock(mu_);
  trim_locked();
}

PoolBuffer MemoryPool::allocate(std::string_view tag, size_t bytes) {
  PoolBuffer b;
  if (bytes == 0) return b;
  if (bytes > SIZE_MAX - kPoolAlign)
    throw make_error(ErrorCode::failure, "memory pool: '{}' asked for {} bytes, more than can exist", tag, bytes);
  const size_t size = pool_block_bytes(bytes);
  const uint32_t id = tracker_.intern(tag);
  const MemoryTracker::Refusal r = tracker_.try_add(id, size, opt_.capacity);
  if (r.kind == MemoryTracker::Refusal::capacity)
    throw make_error(ErrorCode::failure,
                     "memory pool exhausted: '{}' asked for {} bytes while {} of its {} bytes are held", tag, size,
                     r.held, r.limit);
  if (r.kind == MemoryTracker::Refusal::tag_limit)
    throw make_error(ErrorCode::failure,
                     "memory pool: '{}' asked for {} bytes with {} held, over its plan of {} bytes", tag, size, r.held,
                     r.limit);
  void* p = nullptr;
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(size); it != cache_.end()) {
      p = it->second;
      cache_.erase(it);
      stats_.cached_bytes -= size;
      ++stats_.reused;
    } else {
      trim_locked();
      ++stats_.system_allocs;
    }
  }
  if (p == nullptr) p = std::aligned_alloc(kPoolAlign, size);
  if (p == nullptr) {
    tracker_.remove(id, size);
    throw make_error(ErrorCode::failure, "out of memory: '{}' asked for {} bytes", tag, size);
  }
  b.pool_ = this;
  b.data_ = p;
  b.bytes_ = size;
  b.tag_ = id;
  static log::Logger& lg = log::get("pool");
  if (lg.enabled(log::Level::trace))  // the tracker's total is only read for the message
    log::trace(lg, "take {} bytes for '{}' at {} ({} held by the pool)", size, tag, p, tracker_.current());
  return b;
}

void MemoryPool::set_limit(std::string_view tag, uint64_t bytes) { tracker_.set_limit(tracker_.intern(tag), bytes); }

PoolCacheStats MemoryPool::cache_stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void MemoryPool::trim() {
  std::lock_guard lock(mu_);
  trim_locked();
}

void MemoryPool::trim_locked() noexcept {
  for (auto& [size, p] : cache_) std::free(p);
  cache_.clear();
  stats_.cached_bytes = 0;
}

void MemoryPool::release(void* p, uint32_t tag, size_t bytes) noexcept {
  tracker_.remove(tag, bytes);
  std::lock_guard lock(mu_);
  try {
    cache_.emplace(bytes, p);
    stats_.cached_bytes += bytes;
  } catch (...) {  // no memory for the bookkeeping: give the block back instead of keeping it
    std::free(p);
  }
}

void advise_huge_pages(void* p, size_t bytes) noexcept {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  // Advice only: a kernel without THP refuses it, and the memory works the same either way.
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

MemoryPool& default_memory_pool() {
  static MemoryPool* pool = new MemoryPool();
  return *pool;
}

}  // namespace bitnet
