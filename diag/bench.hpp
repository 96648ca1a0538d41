// End-to-end speed of this engine on a model, as llama-bench measures it: prompt processing (pp:
// prefill of n_prompt tokens from an empty context), generation (tg: n_gen single-token steps) and
// both in one session (pg: a prompt, then generation after it), each test repeated after a
// warm-up, optionally after n_depth tokens already in the context (llama-bench's -d). Builds
// result rows and hands each to a callback when it is done; never prints.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/infer/session.hpp"
#include "core/model/model.hpp"
#include "diag/bench_kernels.hpp"

namespace bitnet::diag {

// The probe's largest buffer: past the biggest last-level caches, and a big model's decode step
// (tens of GB) does not make the probe allocate as much again.
constexpr uint64_t kMaxProbeBytes = uint64_t{2} << 30;

// The probe's buffer for a decode step of step_bytes: step_bytes within [floor, kMaxProbeBytes]
// (floor wins over the cap).
inline uint64_t probe_bytes_for(uint64_t floor, uint64_t step_bytes) {
  return std::max(floor, std::min(step_bytes, kMaxProbeBytes));
}

struct BenchResult;
struct BenchReport;

// One test: pp {n_prompt, 0}, tg {0, n_gen} or pg {n_prompt, n_gen}, timed after n_depth tokens
// of context (evaluated untimed).
struct BenchTest {
  int32_t n_prompt = 0;
  int32_t n_gen = 0;
  int32_t n_depth = 0;
};

// llama-bench's names: "pp512", "tg128", "pp512+tg128", with " @ d4096" after a depth.
std::string test_name(const BenchTest& t);

struct BenchOptions {
  std::vector<BenchTest> tests = {{512, 0}, {0, 128}};  // run in this order for each thread count
  int32_t reps = 5;
  std::vector<int> threads = {2};
  const kernels::KernelTable* kernels = nullptr;  // required
  // Called after each of our timed repetitions with the thread count, the test and the repetition
  // index: `bench --reference` runs the reference's repetition there, so the two alternate.
  std::function<void(int threads, const BenchTest& test, int rep)> after_rep;
  // Called with each row as soon as its repetitions are done, and the report so far (its model
  // fields are set): bench prints the row then, so that an interrupted run keeps what it finished.
  std::function<void(const BenchReport& so_far, const BenchResult&)> on_result;
  // Called before each timed step with a one-line description ("pp512 rep 2/5, 2 threads").
  std::function<void(const std::string&)> progress;
  // Read-bandwidth probe before each thread count's tg test (0: no probe, no roofline): the
  // smallest buffer it reads. It reads as many bytes as one decode step does, up to
  // kMaxProbeBytes, so that the last-level cache serves it no more than it can serve the decode
  // (this machine's 504 MiB L3 served part of a 256 MiB probe: 39-43 GB/s against 35-40 for
  // 512 MiB to 2 GiB).
  uint64_t bandwidth_bytes = uint64_t{256} << 20;
  // Kernel micro-benchmarks (bench --kernels) per thread count; empty tables: none.
  KernelBenchOptions kernel_bench;
  // Logits each decode step computes exactly, as generate's default sampling (top-k 40) needs
  // them: through an output screen when the output matrix's type gains from one
  // (kernels::OutputScreen). 0: every logit (bench --exact-logits), as llama-bench does.
  int32_t top_k = 40;
  infer::KvType kv_type = infer::KvType::f16;  // the sessions' KV cache (bench --kv-type)
};

struct BenchResult {
  std::string test;       // "pp512", "tg128", "pp512+tg128", "tg128 @ d4096"
  int n_threads = 0;
  int32_t n_prompt = 0;
  int32_t n_gen = 0;
  int32_t n_depth = 0;
  std::vector<double> seconds;  // one per repetition
  std::time_t started = 0;      // when the first repetition began (llama-bench's test_time)
  double avg_ts = 0;      // tokens per second, mean over repetitions
  double stddev_ts = 0;   // sample standard deviation of tokens per second
  // tg rows with a bandwidth probe: bytes a decode step reads (at the mean context position of
  // the test), and the t/s that bandwidth allows: roofline_ts = bandwidth / bytes_per_token.
  uint64_t bytes_per_token = 0;
  uint64_t bandwidth_probe_bytes = 0;  // the probe's buffer
  double bandwidth_gbs = 0;
  double roofline_ts = 0;
  // tg rows: the session's weight copy (plan bytes) and how much of the process's anonymous
  // memory was in huge pages while it ran (nullopt: /proc did not say). Explains a slow decode
  // on a machine whose transparent huge pages are off.
  uint64_t weights_bytes = 0;
  std::optional<uint64_t> huge_page_bytes;
  // tg rows with an output screen: the mean output rows a decode step computed exactly, and the
  // screen's bytes (its int8 copy), both counted in bytes_per_token instead of the whole matrix.
  double output_rows = 0;
  uint64_t screen_bytes = 0;
};

struct BenchReport {
  std::string model_path;
  std::string model_type;  // "bitnet-b1.58 2560x30 I2_S"
  uint64_t model_size = 0; // bytes of the file
  uint64_t model_n_params = 0;
  std::string kernel_table;
  std::string kv_type = "f16";  // the sessions' KV cache type
  std::vector<BenchResult> results;
  std::vector<BandwidthProbe> bandwidth;   // one per thread count, when probed
  std::vector<KernelBenchRow> kernels;     // bench --kernels
};

// A test's tokens (depth included) may pass the model's training context, with a warning, up to
// this many times it.
constexpr uint64_t kMaxContextFactor = 4;

// Throws bitnet::Error(usage) for a test longer than kMaxContextFactor x the model's context.
BenchReport run_bench(const std::string& model_path, const model::Model& model, const BenchOptions& opt);

// Mean and sample standard deviation of tokens / seconds[i] (a pg test counts both its prompt and
// its generated tokens, as llama-bench does).
void summarize(BenchResult& r, double tokens);

}  // namespace bitnet::diag
