// The memory pool for the engine's own buffers (KV cache, activations, logits, matmul scratch):
// 64-byte aligned tagged blocks, counted by the pool's tracker, freed blocks kept for the next
// session of the same shape. A capacity or a per-tag limit (a plan) turns an over-large request
// into a bitnet::Error instead of a surprise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/base/error.hpp"
#include "core/base/memory_tracker.hpp"

namespace bitnet {

inline constexpr size_t kPoolAlign = 64;

// Bytes a request of `bytes` really holds: rounded up to the alignment (0 stays 0). Plans use it
// so that planned and tracked bytes compare exactly.
constexpr uint64_t pool_block_bytes(uint64_t bytes) { return (bytes + kPoolAlign - 1) / kPoolAlign * kPoolAlign; }

class MemoryPool;

// One block from a pool, returned to it on destruction. Move-only.
class PoolBuffer {
 public:
  PoolBuffer() = default;
  PoolBuffer(PoolBuffer&& o) noexcept { *this = std::move(o); }
  PoolBuffer& operator=(PoolBuffer&& o) noexcept;
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;
  ~PoolBuffer() { reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }
  void reset() noexcept;

 private:
  friend class MemoryPool;
  MemoryPool* pool_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  uint32_t tag_ = 0;
};

struct MemoryPoolOptions {
  uint64_t capacity = 0;  // most bytes held at once over all tags; 0: no limit
};

struct PoolCacheStats {
  uint64_t cached_bytes = 0;   // freed blocks kept for reuse (not counted as held by the tracker)
  uint64_t system_allocs = 0;  // blocks that came from the system allocator
  uint64_t reused = 0;         // requests served from the kept blocks
};

// Asks Linux to back the 2 MiB-aligned middle of [p, p + bytes) with transparent huge pages
// (honoured when THP is in "always" or "madvise" mode; a no-op otherwise). Call it before the
// memory is first written. Streaming hundreds of megabytes of weights through 4 KiB pages costs
// a page walk every 4 KiB, and the hardware prefetcher stops at every page edge: on the 2B
// model's decode, huge pages were worth 15% (docs/benchmarks.md).
void advise_huge_pages(void* p, size_t bytes) noexcept;

class MemoryPool {
 public:
  explicit MemoryPool(MemoryPoolOptions opt = {}) : opt_(opt) {}
  // Frees the kept blocks. Every PoolBuffer must be gone by now (an invariant, checked).
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // A block of pool_block_bytes(bytes), 64-byte aligned, not zeroed, counted under `tag`; a
  // kept block of exactly that size is reused. 0 bytes gives an empty buffer. Throws
  // bitnet::Error(failure) when the capacity or the tag's limit would be passed, or the system
  // has no memory left, naming the tag.
  PoolBuffer allocate(std::string_view tag, size_t bytes);

  // The plan for a tag: holding more than `bytes` under it at once becomes an error (0: the tag
  // may hold nothing). Tags without a plan are limited only by the capacity.
  void set_limit(std::string_view tag, uint64_t bytes);

  const MemoryTracker& tracker() const { return tracker_; }
  MemoryTracker& tracker() { return tracker_; }
  uint64_t capacity() const { return opt_.capacity; }
  PoolCacheStats cache_stats() const;
  // Gives the kept blocks back to the system.
  void trim();

 private:
  friend class PoolBuffer;
  void release(void* p, uint32_t tag, size_t bytes) noexcept;
  void trim_locked() noexcept;

  MemoryPoolOptions opt_;
  MemoryTracker tracker_;  // a member, not a pointer: a pool cannot lose its tracker
  mutable std::mutex mu_;  // guards the kept blocks and their stats
  std::multimap<size_t, void*> cache_;
  PoolCacheStats stats_;
};

// The process-wide pool that sessions use when given none (no limits). Never destroyed, so a
// buffer released during static destruction still finds it.
MemoryPool& default_memory_pool();

// `n` elements of T in a pool block: the vector-like face (data, size, [], begin/end) that the
// session's buffers need. `size` may be lowered and raised again within what the block holds.
template <typename T>
class PoolArray {
  static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= kPoolAlign);

 public:
  PoolArray() = default;
  PoolArray(MemoryPool& pool, std::string_view tag, size_t n) : buf_(pool.allocate(tag, checked_bytes(n))), n_(n) {}

  T* data() { return static_cast<T*>(buf_.data()); }
  const T* data() const { return static_cast<const T*>(buf_.data()); }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  size_t capacity() const { return buf_.bytes() / sizeof(T); }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  T* begin() { return data(); }
  T* end() { return data() + n_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + n_; }
  void set_size(size_t n) {
    BITNET_CHECK(n <= capacity());
    n_ = n;
  }

 private:
  static size_t checked_bytes(size_t n) {
    if (n > SIZE_MAX / sizeof(T) - kPoolAlign)
      throw make_error(ErrorCode::failure, "memory pool: a buffer of {} elements of {} bytes does not fit in memory", n,
                       sizeof(T));
    return n * sizeof(T);
  }
  PoolBuffer buf_;
  size_t n_ = 0;
};

}  // namespace bitnet
