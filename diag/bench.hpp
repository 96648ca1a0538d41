// End-to-end speed of this engine on a model: prompt processing (prefill of n_prompt tokens
// from an empty context) and generation (n_gen single-token steps), each repeated after a
// warm-up, as llama-bench measures them. Builds result rows; never prints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/model/model.hpp"

namespace bitnet::diag {

struct BenchOptions {
  int32_t n_prompt = 512;            // 0: skip the prompt test
  int32_t n_gen = 128;               // 0: skip the generation test
  int32_t reps = 5;
  std::vector<int> threads = {2};
  const kernels::KernelTable* kernels = nullptr;  // required
  // Called after each of our timed repetitions (its pp, then its tg) with the thread count and the
  // repetition index: `bench --reference` runs the reference's repetition there, so the two alternate.
  std::function<void(int threads, int rep)> after_rep;
};

struct BenchResult {
  std::string test;       // "pp512", "tg128"
  int n_threads = 0;
  int32_t n_prompt = 0;
  int32_t n_gen = 0;
  std::vector<double> seconds;  // one per repetition
  double avg_ts = 0;      // tokens per second, mean over repetitions
  double stddev_ts = 0;   // sample standard deviation of tokens per second
};

struct BenchReport {
  std::string model_path;
  std::string model_type;  // "bitnet-b1.58 2560x30 I2_S"
  uint64_t model_size = 0; // bytes of the file
  uint64_t model_n_params = 0;
  std::string kernel_table;
  std::vector<BenchResult> results;
};

// Throws bitnet::Error(usage) for a prompt + generation longer than the model's context.
BenchReport run_bench(const std::string& model_path, const model::Model& model, const BenchOptions& opt);

// Mean and sample standard deviation of tokens / seconds[i].
void summarize(BenchResult& r, double tokens);

}  // namespace bitnet::diag
