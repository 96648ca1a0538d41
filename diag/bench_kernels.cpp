// Kernel micro-benchmarks at a model's real shapes, and the memory read-bandwidth probe behind the
// decode roofline. Timings are wall-clock per call; the fastest sample is the one reported, as
// STREAM and most kernel benchmarks do, since noise only ever adds time.
#include "bench_kernels.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>

#include "core/base/error.hpp"
#include "core/base/memory_pool.hpp"
#include "core/base/thread_pool.hpp"
#include "core/infer/session.hpp"
#include "core/kernels/formats.hpp"
#include "core/model/tensor_names.hpp"

namespace bitnet::diag {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The model's distinct matrix shapes, in forward-pass order, each with the names sharing it.
struct Shape {
  kernels::WeightView w;
  std::string tensors;
};

std::vector<Shape> model_shapes(const model::Model& m) {
  using model::Tensor;
  std::vector<std::pair<Tensor, const kernels::WeightView*>> all;
  if (m.config().n_layer > 0) {
    const model::LayerWeights& l = m.layer(0);
    all = {{Tensor::attn_q, &l.wq},      {Tensor::attn_k, &l.wk},     {Tensor::attn_v, &l.wv},
           {Tensor::attn_output, &l.wo}, {Tensor::ffn_gate, &l.gate}, {Tensor::ffn_up, &l.up},
           {Tensor::ffn_down, &l.down}};
  }
  all.emplace_back(Tensor::output, &m.output());
  std::vector<Shape> out;
  for (const auto& [t, w] : all) {
    const std::string_view name = model::tensor_base_name(t);
    auto same = std::find_if(out.begin(), out.end(), [&](const Shape& s) {
      return s.w.type == w->type && s.w.rows == w->rows && s.w.cols == w->cols;
    });
    if (same == out.end()) {
      out.push_back({*w, std::string(name)});
    } else {
      same->tensors.append(",").append(name);
    }
  }
  return out;
}

// Times fn: one warm-up call, then up to `samples` calls, fewer when a call is slow (the scalar
// reference on a 2B-sized output matrix), so a row costs about a second at most.
template <typename F>
void time_calls(KernelBenchRow& row, int samples, F&& fn) {
  auto t0 = Clock::now();
  fn();
  const double warm = since(t0);
  const int n = std::clamp(static_cast<int>(1.0 / std::max(warm, 1e-9)), 1, std::max(1, samples));
  for (int i = 0; i < n; ++i) {
    t0 = Clock::now();
    fn();
    row.seconds.push_back(since(t0));
  }
  row.best_seconds = *std::min_element(row.seconds.begin(), row.seconds.end());
}

// Sum of n 64-bit words (n a multiple of 8), eight independent lanes so the compiler vectorizes
// it. Compiled for AVX-512, AVX2 and baseline x86-64 and picked at run time (GCC's function
// multi-versioning): a baseline SSE2 loop tops out below this machine's memory bandwidth
// (17.8 vs 26 GB/s with 2 threads), which would make the roofline flattering.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t sum_words(const uint64_t* p, int64_t n) {
  uint64_t s[8] = {};
  for (int64_t i = 0; i < n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += p[i + k];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

}  // namespace

uint64_t decode_bytes_per_token(const model::Model& m, const kernels::KernelTable& k, uint32_t n_past,
                                infer::KvType kv) {
  const model::ModelConfig& c = m.config();
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < c.n_layer; ++i) {
    const model::LayerWeights& l = m.layer(i);
    // A session reads its own copy, in the type it runs as (TQ1_0's 54 bytes per block become
    // TQ2_0's 66 where the table repacks).
    for (const kernels::WeightView* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
      bytes += kernels::weight_bytes(infer::resident_weight(k, *w));
    bytes += (l.attn_norm.size() + l.attn_sub_norm.size() + l.ffn_norm.size() + l.ffn_sub_norm.size()) * sizeof(float);
  }
  bytes += kernels::weight_bytes(infer::resident_weight(k, m.output()));
  kernels::WeightView row = m.token_embd();
  row.rows = 1;
  bytes += kernels::weight_bytes(row);
  bytes += m.output_norm().size() * sizeof(float);
  // K and V rows of every earlier position: 2 bytes a value (f16), 4 (f32), 34 per 32 (q8_0).
  const uint64_t values = uint64_t{2} * c.n_layer * n_past * c.n_embd_kv();
  bytes += kv == infer::KvType::q8_0 ? values / kernels::kQK8_0 * sizeof(kernels::BlockQ8_0)
                                     : values * (kv == infer::KvType::f32 ? sizeof(float) : sizeof(uint16_t));
  return bytes;
}

BandwidthProbe probe_read_bandwidth(ThreadPool& pool, uint64_t bytes, int passes, const std::function<void()>& before_pass) {
  BITNET_CHECK(bytes >= 4096 && passes >= 1);
  // Whole 64-byte lines: aligned_alloc wants a multiple of its alignment.
  const size_t words = static_cast<size_t>(bytes / 64 * 8);
  struct Free {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint64_t, Free> buf(static_cast<uint64_t*>(std::aligned_alloc(64, words * sizeof(uint64_t))));
  if (!buf) throw std::bad_alloc();
  uint64_t* data = buf.get();
  // The same page size as the session's weights, so the probe is not slowed by page walks the
  // decode does not pay.
  advise_huge_pages(data, words * sizeof(uint64_t));
  // Touch every page from the threads that will read it (first-touch NUMA placement).
  const int64_t chunks = int64_t{pool.size()} * 8;
  const int64_t per_chunk = static_cast<int64_t>(words) / chunks / 8 * 8;  // whole groups of eight
  pool.parallel_for(chunks, [&](int64_t b, int64_t e) {
    for (int64_t i = b * per_chunk; i < e * per_chunk; ++i) data[i] = static_cast<uint64_t>(i);
  });
  std::vector<uint64_t> sums(static_cast<size_t>(chunks));
  BandwidthProbe p;
  p.bytes = static_cast<uint64_t>(chunks * per_chunk) * sizeof(uint64_t);
  p.n_threads = pool.size();
  p.best_seconds = 1e30;
  for (int pass = 0; pass < passes; ++pass) {
    if (before_pass) before_pass();
    const auto t0 = Clock::now();
    pool.parallel_for(chunks, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) sums[static_cast<size_t>(c)] = sum_words(data + c * per_chunk, per_chunk);
    });
    p.best_seconds = std::min(p.best_seconds, since(t0));
  }
  // The sums must be used, or the reads could be dropped: they are checked against the closed form.
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  const auto n = static_cast<uint64_t>(chunks * per_chunk);
  BITNET_CHECK(total == n * (n - 1) / 2);
  p.gbs = static_cast<double>(p.bytes) / p.best_seconds / 1e9;
  return p;
}

std::vector<KernelBenchRow> run_kernel_bench(const model::Model& m, ThreadPool& pool, const KernelBenchOptions& opt) {
  std::vector<KernelBenchRow> rows;
  const std::vector<Shape> shapes = model_shapes(m);
  int64_t max_tokens = 1, max_cols = 1, max_rows = 1;
  for (int64_t t : opt.n_tokens) max_tokens = std::max(max_tokens, t);
  for (const Shape& s : shapes) {
    max_cols = std::max(max_cols, s.w.cols);
    max_rows = std::max(max_rows, s.w.rows);
  }
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(max_tokens * max_cols));
  for (float& v : x) v = nd(rng);
  std::vector<float> y(static_cast<size_t>(max_tokens * max_rows));
  kernels::MatmulScratch scratch;
  constexpr int64_t kQuantRows = 64;  // rows per quantizer call: one row takes about a microsecond

  for (const kernels::KernelTable* k : opt.tables) {
    for (const Shape& s : shapes) {
      const std::string_view entry = kernels::matmul_entry(*k, s.w);
      if (entry.empty()) continue;
      const std::string type(gguf::type_name(s.w.type));
      for (int64_t nt : opt.n_tokens) {
        KernelBenchRow r{std::string(k->name), std::string(entry), s.tensors, type, s.w.rows, s.w.cols, nt, pool.size(), {}, 0, 0, 0, 0};
        time_calls(r, opt.samples, [&] {
          kernels::matmul(*k, s.w, x.data(), s.w.cols, nt, y.data(), s.w.rows, scratch, &pool);
        });
        r.bytes = kernels::weight_bytes(s.w);
        r.gops = 2.0 * static_cast<double>(s.w.rows * s.w.cols * nt) / r.best_seconds / 1e9;
        r.gbs = static_cast<double>(r.bytes) / r.best_seconds / 1e9;
        rows.push_back(std::move(r));
      }
    }
    // Each quantizer once per distinct width (it runs on the calling thread, before the matmul).
    std::vector<std::pair<std::string, int64_t>> done;
    for (const Shape& s : shapes) {
      const kernels::WeightFormat* f = kernels::find_format(s.w.type);
      if (f == nullptr || kernels::matmul_entry(*k, s.w).empty()) continue;
      const std::string q(kernels::quantizer_name(f->act));
      if (q.empty()) continue;
      if (std::find(done.begin(), done.end(), std::pair<std::string, int64_t>(q, s.w.cols)) != done.end()) continue;
      done.emplace_back(q, s.w.cols);
      const int64_t n = std::min<int64_t>(kQuantRows, static_cast<int64_t>(x.size()) / s.w.cols);
      void* out = scratch.get(kernels::act_bytes(f->act, s.w.cols));
      KernelBenchRow r{std::string(k->name), q, s.tensors, "F32", 1, s.w.cols, n, 1, {}, 0, 0, 0, 0};
      time_calls(r, opt.samples, [&] {
        for (int64_t t = 0; t < n; ++t) kernels::quantize_activations(*k, f->act, x.data() + t * s.w.cols, s.w.cols, out);
      });
      r.bytes = static_cast<uint64_t>(n * s.w.cols) * sizeof(float);
      r.gbs = static_cast<double>(r.bytes) / r.best_seconds / 1e9;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace bitnet::diag
