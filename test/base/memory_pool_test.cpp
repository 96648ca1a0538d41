// The memory pool and its tracker: exact counts and peaks for a known sequence, alignment,
// limits as errors, reuse of freed blocks, leaks named by tag, consistency under the thread
// pool; and the /proc readers next to them.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/mapped_file.hpp"
#include "core/base/memory_pool.hpp"
#include "core/base/proc_memory.hpp"
#include "core/base/thread_pool.hpp"

namespace bitnet {
namespace {

TEST(MemoryPool, TrackerIsAlwaysThere) {
  // The tracker is a member of every pool, the default one included; there is no way to build
  // a pool without one or to take it away.
  static_assert(!std::is_default_constructible_v<MemoryTracker>);
  static_assert(!std::is_copy_constructible_v<MemoryTracker>);
  MemoryPool& d = default_memory_pool();
  const uint64_t before = d.tracker().tag("test_default").allocs;
  PoolBuffer b = d.allocate("test_default", 10);
  EXPECT_EQ(d.tracker().tag("test_default").allocs, before + 1);
  EXPECT_EQ(d.tracker().tag("test_default").current, 64u);
}

TEST(MemoryPool, CountsAndPeaksAreExactForAKnownSequence) {
  MemoryPool pool;
  {
    PoolBuffer a = pool.allocate("kv_cache", 1000);    // 1024 held
    PoolBuffer b = pool.allocate("activations", 64);   // 64
    PoolBuffer c = pool.allocate("activations", 65);   // 128
    EXPECT_EQ(pool.tracker().current(), 1024u + 64 + 128);
    b.reset();
    PoolBuffer d = pool.allocate("kv_cache", 1);  // 64
    a.reset();
    const TrackerSnapshot s = pool.tracker().snapshot();
    ASSERT_EQ(s.tags.size(), 2u);
    EXPECT_EQ(s.tags[0].tag, "kv_cache");  // order of first use
    EXPECT_EQ(s.find("kv_cache").current, 64u);
    EXPECT_EQ(s.find("kv_cache").peak, 1024u + 64);
    EXPECT_EQ(s.find("kv_cache").allocs, 2u);
    EXPECT_EQ(s.find("kv_cache").live, 1u);
    EXPECT_EQ(s.find("activations").current, 128u);
    EXPECT_EQ(s.find("activations").peak, 192u);
    EXPECT_EQ(s.find("activations").allocs, 2u);
    // The total peaked at 1024 + 64 + 128 + 64 with d and before a was freed.
    EXPECT_EQ(s.peak, 1024u + 64 + 128 + 64 - 64);
    EXPECT_EQ(s.find("kv_cache").at_peak, 1024u);
    EXPECT_EQ(s.allocs, 4u);
    EXPECT_EQ(s.find("never_used").allocs, 0u);
    EXPECT_EQ(s.find("never_used").tag, "never_used");
  }
  EXPECT_EQ(pool.tracker().current(), 0u);
  pool.tracker().reset_peaks();
  EXPECT_EQ(pool.tracker().peak(), 0u);
  EXPECT_EQ(pool.tracker().tag("kv_cache").peak, 0u);
}

TEST(MemoryPool, BlocksAre64ByteAlignedAndWritable) {
  MemoryPool pool;
  std::vector<PoolBuffer> held;
  for (size_t n : {1u, 3u, 63u, 64u, 65u, 1000u, 4097u, 1u << 20}) {
    PoolBuffer b = pool.allocate("x", n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u) << n;
    EXPECT_EQ(b.bytes(), pool_block_bytes(n));
    std::memset(b.data(), 0xab, b.bytes());  // the whole rounded block is ours (ASan checks)
    held.push_back(std::move(b));
  }
  EXPECT_TRUE(pool.allocate("x", 0).empty());
  PoolArray<double> d(pool, "x", 3);
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.capacity(), 8u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(d.data()) % 64, 0u);
}

TEST(MemoryPool, ExhaustionAndOverThePlanAreErrorsNamingTheTag) {
  MemoryPoolOptions o;
  o.capacity = 4096;
  MemoryPool pool(o);
  PoolBuffer a = pool.allocate("kv_cache", 3000);
  try {
    PoolBuffer b = pool.allocate("activations", 2000);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::failure);
    EXPECT_NE(std::string(e.what()).find("exhausted: 'activations' asked for 2048 bytes"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.tracker().tag("activations").current, 0u);  // a refused request leaves no trace
  EXPECT_EQ(pool.tracker().tag("activations").allocs, 0u);
  PoolBuffer fits = pool.allocate("activations", 4096 - 3008);  // exactly up to the capacity (3000 holds 3008)
  EXPECT_EQ(pool.tracker().current(), 4096u);

  MemoryPool planned;
  planned.set_limit("logits", 256);
  PoolBuffer l = planned.allocate("logits", 200);
  try {
    PoolBuffer m = planned.allocate("logits", 64);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'logits' asked for 64 bytes with 256 held, over its plan of 256"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(PoolArray<float>(planned, "logits", SIZE_MAX / 2), Error);
  PoolBuffer other = planned.allocate("scratch", 1 << 16);  // limits are per tag
}

TEST(MemoryPool, FreedBlocksAreReusedAndTrimmed) {
  MemoryPool pool;
  void* first = nullptr;
  {
    PoolBuffer a = pool.allocate("kv_cache", 5000);
    first = a.data();
  }
  EXPECT_EQ(pool.tracker().current(), 0u);
  EXPECT_EQ(pool.cache_stats().cached_bytes, pool_block_bytes(5000));
  PoolBuffer again = pool.allocate("activations", 5000);  // same size, any tag
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(pool.cache_stats().reused, 1u);
  EXPECT_EQ(pool.cache_stats().system_allocs, 1u);
  again.reset();
  // A request of another size finds nothing to reuse and drops what was kept.
  PoolBuffer other = pool.allocate("activations", 100);
  EXPECT_EQ(pool.cache_stats().cached_bytes, 0u);
  other.reset();
  pool.trim();
  EXPECT_EQ(pool.cache_stats().cached_bytes, 0u);
}

TEST(MemoryPool, ALeakedBufferIsNamedByItsTag) {
  MemoryPool pool;
  PoolBuffer leaked = pool.allocate("test_leak", 4096);  // deliberately held past "teardown"
  {
    PoolBuffer a = pool.allocate("kv_cache", 100);
    PoolBuffer b = pool.allocate("scratch", 100);
  }
  std::vector<TagStats> still;
  for (const TagStats& t : pool.tracker().snapshot().tags)
    if (t.live > 0) still.push_back(t);
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still[0].tag, "test_leak");
  EXPECT_EQ(still[0].current, 4096u);
  EXPECT_EQ(still[0].live, 1u);
}

TEST(MemoryPool, ConcurrentAllocationFromTheThreadPoolStaysConsistent) {
  MemoryPool pool;
  ThreadPool threads(4);
  const char* tags[] = {"a", "b", "c"};
  constexpr int64_t kN = 3000;
  std::vector<PoolBuffer> kept(kN);
  threads.parallel_for(kN, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const size_t bytes = static_cast<size_t>(i % 7 + 1) * 64;
      PoolBuffer tmp = pool.allocate(tags[i % 3], bytes);
      std::memset(tmp.data(), static_cast<int>(i), bytes);
      if (i % 2 == 0) kept[static_cast<size_t>(i)] = std::move(tmp);  // every other one is held on
    }
  });
  uint64_t expect_held[3] = {0, 0, 0}, expect_allocs[3] = {0, 0, 0};
  for (int64_t i = 0; i < kN; ++i) {
    ++expect_allocs[i % 3];
    if (i % 2 == 0) expect_held[i % 3] += static_cast<uint64_t>(i % 7 + 1) * 64;
  }
  TrackerSnapshot s = pool.tracker().snapshot();
  EXPECT_EQ(s.allocs, static_cast<uint64_t>(kN));
  uint64_t total = 0;
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(s.find(tags[k]).allocs, expect_allocs[k]) << tags[k];
    EXPECT_EQ(s.find(tags[k]).current, expect_held[k]) << tags[k];
    EXPECT_GE(s.find(tags[k]).peak, expect_held[k]);
    total += expect_held[k];
  }
  EXPECT_EQ(s.current, total);
  EXPECT_GE(s.peak, total);
  kept.clear();
  EXPECT_EQ(pool.tracker().current(), 0u);
}

TEST(ProcMemory, ReadsRssAndAMappedFile) {
  auto m = read_process_memory();
  ASSERT_TRUE(m.has_value());
  EXPECT_GT(m->rss, 0u);
  EXPECT_GE(m->peak_rss, m->rss);

  const std::filesystem::path path = std::filesystem::temp_directory_path() / "bitnet_proc_memory_test.bin";
  const std::string content(3 * 4096 + 5, 'x');
  std::ofstream(path, std::ios::binary) << content;
  {
    MappedFile f = MappedFile::open(path);
    MappingMemory before = read_file_mappings(path);
    EXPECT_EQ(before.mapped, 4u * 4096);  // whole pages
    uint64_t sum = 0;
    for (std::byte b : f.bytes()) sum += static_cast<uint64_t>(b);  // touch every page
    EXPECT_EQ(sum, content.size() * 'x');
    EXPECT_EQ(read_file_mappings(path).resident, 4u * 4096);
  }
  EXPECT_EQ(read_file_mappings(path).mapped, 0u);  // unmapped with the MappedFile
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace bitnet
