// memcheck: load a model, run K generate workloads in fresh sessions on a pool of their own,
// tear everything down, and report plan vs tracked bytes per tag, the mapped model and process
// RSS, what is still held after teardown, and growth across rounds. Builds a report; never prints.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/base/proc_memory.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/kernels.hpp"
#include "diag/bench_compare.hpp"

namespace bitnet::diag {

struct MemcheckOptions {
  std::string prompt = "Once upon a time";
  int32_t n_gen = 16;
  int32_t repeat = 1;
  uint64_t budget = 0;  // the tracked peak may not pass this (0: no budget)
  uint32_t n_ctx = 0;   // 0: the session's default
  int threads = 1;
  infer::KvType kv_type = infer::KvType::f16;
  const kernels::KernelTable* kernels = nullptr;  // required
  // TEST ONLY: hold one 4 KiB block under this tag past the teardown check, as a leaking
  // component would, so tests can see a leak caught and named. Released after the report.
  std::string test_leak_tag;
  // TEST ONLY: limit this planned tag to one byte less than its plan, as if the session took more
  // than the plan says: the round fails with a plan overflow (exit 1), which is not a leak.
  std::string test_overflow_tag;
  // When set (Ctrl-C, --timeout), the running workload stops and run_memcheck throws
  // Error(interrupted).
  const std::atomic<bool>* cancel = nullptr;
};

struct MemcheckTag {
  std::string tag;
  uint64_t planned = 0;         // the session plan's bytes for this tag
  uint64_t peak = 0;            // most bytes held at once, over all rounds
  uint64_t allocs = 0;          // over all rounds
  uint64_t after_teardown = 0;  // bytes still held after everything was destroyed: a leak
  uint64_t live_blocks = 0;     // blocks among them
};

struct MemcheckRound {
  uint64_t tracked_peak = 0;    // pool peak during the round
  uint64_t held_after = 0;      // pool bytes still held after the round's session was destroyed
  uint64_t pool_footprint = 0;  // held + blocks kept for reuse, after the round
  uint64_t system_allocs = 0;   // blocks the round took from the system (0: everything reused)
  uint64_t reused = 0;          // blocks the round got back from the pool
  uint64_t rss_after = 0;
  size_t n_prompt = 0;
  size_t n_gen = 0;
};

struct MemcheckReport {
  std::string model_path;
  uint64_t model_file_size = 0;
  std::string kernel_table;
  int threads = 1;
  uint32_t n_ctx = 0;
  uint32_t n_batch = 0;
  std::string kv_type;
  std::vector<MemcheckTag> tags;  // the plan's tags in plan order, then any other tag seen
  uint64_t planned_total = 0;
  uint64_t tracked_peak = 0;      // most bytes held at once, all tags, over all rounds
  uint64_t kv_cache_planned = 0;
  uint64_t output_screen_planned = 0;  // the int8 copy of the output matrix generate screens with
  MappingMemory model_mapping;    // at the end of the last round
  bool model_unmapped = false;    // after teardown no mapping of the file is left
  ProcessMemory rss_loaded;       // after load, before the first session
  ProcessMemory rss_end;          // after the last round, before teardown
  ProcessMemory rss_teardown;     // after teardown
  bool peak_rss_since_load = false;  // peak_rss counts from just before the load (else: process start)
  std::vector<MemcheckRound> rounds;

  // The verdict: empty lists mean exit 0.
  std::vector<std::string> leaks;        // "kv_cache: 4096 bytes in 1 block still held after teardown"
  std::vector<std::string> growth;       // "round 2: pool footprint 5 MiB, 1 MiB more than round 1"
  std::vector<std::string> over_budget;  // the tags at the peak, largest first
  bool ok() const { return leaks.empty() && growth.empty() && over_budget.empty(); }
  // Against a --baseline (compare_with_baseline): tracked bytes over the baseline's, or an RSS
  // over it by more than kRssNoise (a regression, exit 7); smaller RSS growth is only reported.
  std::vector<std::string> regressions;
  std::vector<std::string> rss_growth;
};

// Process RSS moves by some pages between identical runs (allocator and kernel page decisions),
// so RSS growth up to this fraction of the baseline is reported but is not a regression.
constexpr double kRssNoise = 0.05;

// Throws bitnet::Error for an unusable model (invalid_input), a bad option (usage), or a pool
// refusal (failure: a buffer over its plan).
MemcheckReport run_memcheck(const std::filesystem::path& model_path, const MemcheckOptions& opt);

// The baseline a run makes (memcheck --save-baseline), with the workload of opt.
MemcheckBaseline memcheck_baseline(const MemcheckReport& r, const MemcheckOptions& opt, const Provenance& p);

// Where the workload of `now` differs from the baseline's ("-n 4 (baseline 16)"): such numbers do
// not compare.
std::vector<std::string> workload_differences(const MemcheckBaseline& base, const MemcheckBaseline& now);

// Fills r.regressions and r.rss_growth: every tracked number above the baseline's (exact), every
// RSS number above it.
void compare_with_baseline(MemcheckReport& r, const MemcheckBaseline& base);

}  // namespace bitnet::diag
