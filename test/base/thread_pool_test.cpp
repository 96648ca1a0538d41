// ThreadPool: every index is visited exactly once, errors propagate, and matmul on real model
// weights gives bit-identical results for 1, 2 and 3 threads.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/base/thread_pool.hpp"
#include "core/gguf/reader.hpp"
#include "core/kernels/kernels.hpp"
#include "support/fixtures.hpp"

namespace bitnet {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << n;
    }
  }
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(300, [](int64_t b, int64_t) {
    if (b > 0) throw std::runtime_error("worker failed");
  }), std::runtime_error);
  // Still usable afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(10, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 10);
}

TEST(ThreadPool, MatmulIsBitIdenticalForAnyThreadCount) {
  const std::pair<const char*, const char*> weights[] = {
      {"models/bitnet-tiny-i2_s.gguf", "blk.0.ffn_up.weight"},
      {"models/bitnet-tiny-tq2_0.gguf", "blk.0.ffn_up.weight"},
      {"models/bitnet-tiny-tq1_0.gguf", "blk.0.ffn_down.weight"},
      {"models/bitnet-tiny-tq2_0.gguf", "token_embd.weight"},  // Q6_K
      {"models/bitnet-tiny-f16.gguf", "blk.1.attn_q.weight"},
      {"models/stories260K.gguf", "blk.0.ffn_gate.weight"},
  };
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto [file, name] : weights) {
    auto f = gguf::GgufFile::open(test::fixture_file(file));
    const gguf::TensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr);
    kernels::WeightView w{t->type, t->ne[0], t->ne[1], f.tensor_data(*t).data(), 1.0f};
    if (t->type == gguf::GgmlType::I2_S) w.i2s_scale = kernels::i2s_tensor_scale(w.data, t->n_elements());
    const int64_t n_tokens = 5;
    std::vector<float> x(static_cast<size_t>(n_tokens * w.cols));
    for (float& v : x) v = nd(rng);
    std::vector<float> ref(static_cast<size_t>(n_tokens * w.rows));
    kernels::MatmulScratch s0;
    kernels::matmul(kernels::reference_table(), w, x.data(), w.cols, n_tokens, ref.data(), w.rows, s0);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> y(ref.size(), -1.0f);
      kernels::MatmulScratch s;
      kernels::matmul(kernels::reference_table(), w, x.data(), w.cols, n_tokens, y.data(), w.rows, s, &pool);
      EXPECT_EQ(0, std::memcmp(y.data(), ref.data(), ref.size() * sizeof(float))) << file << " " << threads;
    }
  }
}

}  // namespace
}  // namespace bitnet
