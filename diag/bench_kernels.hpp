// `bench --kernels`: each kernel-table entry a model uses, timed at the model's own matrix shapes
// on every backend this CPU runs, and a read-bandwidth probe that gives the decode roofline
// (the t/s a memory-bound decode could reach: bandwidth / bytes read per token).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/infer/session.hpp"
#include "core/model/model.hpp"

namespace bitnet {
class ThreadPool;
}

namespace bitnet::diag {

struct KernelBenchRow {
  std::string backend;     // kernel table name: "avx512"
  std::string entry;       // table entry: "dot_tq2_0_q8_k", "quantize_q8_k"
  std::string tensors;     // the model's matrices of this shape: "attn_q,attn_output"
  std::string type;        // weight type name: "TQ2_0" ("F32" for quantizers: their input)
  int64_t rows = 0;        // output rows (1 for a quantizer)
  int64_t cols = 0;
  int64_t n_tokens = 0;    // activation rows per call: 1 is decode's GEMV, more is prefill
  int n_threads = 0;
  std::vector<double> seconds;  // per call, one per sample
  double best_seconds = 0;
  double gops = 0;         // 2 * rows * cols * n_tokens / best_seconds (multiply-adds count 2)
  double gbs = 0;          // bytes streamed (weights, or a quantizer's f32 input) / best_seconds
  uint64_t bytes = 0;      // what gbs counts
};

struct BandwidthProbe {
  uint64_t bytes = 0;      // buffer size read per pass
  int n_threads = 0;
  double best_seconds = 0; // fastest pass
  double gbs = 0;          // bytes / best_seconds / 1e9
};

// Bytes a decode step reads at context position n_past: every matrix a token passes through
// (each layer's seven plus the output projection), one embedding row, the norms, and the KV cache
// rows attention reads (in the cache type kv). Matrices the table repacks at load count in their
// repacked size.
uint64_t decode_bytes_per_token(const model::Model& m, const kernels::KernelTable& k, uint32_t n_past,
                                infer::KvType kv = infer::KvType::f16);

// Reads a buffer of `bytes` (touched first, so it is resident) `passes` times with the pool's
// threads, each summing its own contiguous slice; the fastest pass is the measurement.
// before_pass, when given, runs before each pass: bench's cancellation check (a probe of 2 GiB
// under a sanitizer takes seconds).
BandwidthProbe probe_read_bandwidth(ThreadPool& pool, uint64_t bytes, int passes,
                                    const std::function<void()>& before_pass = {});

struct KernelBenchOptions {
  std::vector<const kernels::KernelTable*> tables;  // the backends to time
  std::vector<int64_t> n_tokens = {1, 32};          // activation rows per matmul call
  int samples = 5;                                  // timed calls per row, after one warm-up
};

// Rows for every (table, entry, shape, n_tokens), in that order. Inputs are seeded random
// activations; weights are the model's own.
std::vector<KernelBenchRow> run_kernel_bench(const model::Model& m, ThreadPool& pool, const KernelBenchOptions& opt);

}  // namespace bitnet::diag
