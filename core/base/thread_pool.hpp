// A persistent pool of worker threads for data-parallel loops. Work is split into contiguous
// ranges by index, one per thread, so which thread computes an element never changes what is
// computed: results are identical for any thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bitnet {

class ThreadPool {
 public:
  // n_threads counts the calling thread: 1 means no workers at all.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n), in parallel, and returns when all
  // are done. Ranges hold at least `grain` indices (fewer threads are used for small n).
  // An exception thrown by fn is rethrown here (the first one).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // Threads to use by default: the hardware's count.
  static int default_threads();

 private:
  void worker(int index);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_parts_ = 0;
  // Changed only under mu_ (the condition variables' predicates read them there); atomic so that
  // the spin before the locked wait can read them without the lock.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
  std::exception_ptr error_;
};

// fn(begin, end) over [0, n): on pool's threads (as ThreadPool::parallel_for), or all on the
// caller when there is no pool or it has one thread (no std::function built then).
template <typename F>
void parallel_ranges(ThreadPool* pool, int64_t n, int64_t grain, F&& fn) {
  if (pool == nullptr || pool->size() == 1) {
    fn(int64_t{0}, n);
    return;
  }
  pool->parallel_for(n, fn, grain);
}

}  // namespace bitnet
