// OutputScreen (core/kernels/screen.hpp) on every table that has gemv_i8_i16 (the reference and
// this CPU's optimised ones) and every weight type it screens, against one oracle: the full
// kernels::matmul of the same matrix with the same table. A call must give, bit for bit, the
// oracle's value of every row among the true top_k (by value, ties to the lower index) of the rows
// not listed in `exact`, and of every listed row; every other row is either that same value or
// exactly -infinity, and the returned count is the number of rows computed. Random matrices of
// all types and several widths, near-ties at the k-th row, forced rows far from the top, thread
// counts, NaN and infinite weights, the activations that must fall back to every row, and one
// adversarial matrix per term of the error bound (each fails if its term is dropped or cut to
// 80%).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/base/memory_pool.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/kernels.hpp"
#include "core/kernels/screen.hpp"
#include "kernels/pack.hpp"
#include "kernels/tables.hpp"

namespace bitnet::kernels {
namespace {

using G = gguf::GgmlType;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kInf = std::numeric_limits<float>::infinity();

// The reference first, then this CPU's optimised tables.
std::vector<const KernelTable*> all_tables() {
  std::vector<const KernelTable*> t = optimised_tables();
  t.insert(t.begin(), &reference_table());
  return t;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct Matrix {
  G type = G::F32;
  int64_t rows = 0, cols = 0;
  test::Bytes data;
  WeightView view() const { return WeightView{type, cols, rows, data.data()}; }
};

template <typename T>
test::Bytes bytes_of(const std::vector<T>& v) {
  test::Bytes b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Matrix f16_matrix(const std::vector<uint16_t>& h, int64_t rows, int64_t cols) { return {G::F16, rows, cols, bytes_of(h)}; }
Matrix f32_matrix(const std::vector<float>& f, int64_t rows, int64_t cols) { return {G::F32, rows, cols, bytes_of(f)}; }

int64_t block_of(G type) {
  switch (type) {
    case G::Q4_0:
    case G::Q8_0: return kQK8_0;
    case G::Q6_K:
    case G::TQ1_0:
    case G::TQ2_0: return kQK_K;
    default: return 1;
  }
}

// Random weights of `type` (values of order one; the block types with random scales).
Matrix random_matrix(std::mt19937& rng, G type, int64_t rows, int64_t cols) {
  const auto n = static_cast<size_t>(rows * cols);
  Matrix m{type, rows, cols, {}};
  switch (type) {
    case G::F32: m.data = bytes_of(test::random_floats(rng, n, -1.0f, 1.0f)); break;
    case G::F16: m.data = bytes_of(test::random_f16(rng, n, -1.0f, 1.0f)); break;
    case G::BF16: {
      std::vector<float> f = test::random_floats(rng, n, -1.0f, 1.0f);
      std::vector<uint16_t> h(n);
      for (size_t i = 0; i < n; ++i) h[i] = f32_to_bf16(f[i]);
      m.data = bytes_of(h);
      break;
    }
    case G::Q4_0: m.data = test::pack_q4_0(test::random_ints(rng, n, -8, 7), test::random_f16(rng, n / 32, 0.01f, 0.2f)); break;
    case G::Q8_0:
      m.data = test::pack_q8_0(test::random_ints(rng, n, -128, 127), test::random_f16(rng, n / 32, 0.001f, 0.02f));
      break;
    case G::Q6_K:
      m.data = test::pack_q6_k(test::random_ints(rng, n, -32, 31), test::random_ints(rng, n / 16, -128, 127),
                               test::random_f16(rng, n / 256, 0.0002f, 0.002f));
      break;
    case G::TQ1_0:
    case G::TQ2_0: {
      std::vector<int> t = test::random_ints(rng, n, -1, 1);
      std::vector<uint16_t> d = test::random_f16(rng, n / 256, 0.5f, 1.5f);
      m.data = type == G::TQ1_0 ? test::pack_tq1_0(t, d) : test::pack_tq2_0(t, d);
      break;
    }
    default: ADD_FAILURE() << "no generator for " << gguf::type_name(type);
  }
  return m;
}

// Activations: uniform, or uniform with a few large outliers (as real hidden states have), which
// makes the screen's int16 steps coarse for every other element.
std::vector<float> random_activation(std::mt19937& rng, int64_t cols, bool outliers) {
  std::vector<float> x = test::random_floats(rng, static_cast<size_t>(cols), -1.0f, 1.0f);
  if (outliers) {
    std::uniform_int_distribution<int64_t> at(0, cols - 1);
    for (int i = 0; i < 3; ++i) x[static_cast<size_t>(at(rng))] *= 60.0f;
  }
  return x;
}

std::vector<float> full_product(const KernelTable& k, const Matrix& m, const std::vector<float>& x) {
  std::vector<float> full(static_cast<size_t>(m.rows), 7.0f);
  MatmulScratch scratch;
  matmul(k, m.view(), x.data(), m.cols, 1, full.data(), m.rows, scratch);
  return full;
}

// Rows by full value, largest first, ties to the lower index; the rows in `skip` left out.
// `full` must hold no NaN.
std::vector<int32_t> ranked(const std::vector<float>& full, std::span<const int32_t> skip = {}) {
  std::vector<uint8_t> out(full.size(), 0);
  for (int32_t r : skip) out[static_cast<size_t>(r)] = 1;
  std::vector<int32_t> order;
  for (size_t r = 0; r < full.size(); ++r)
    if (out[r] == 0) order.push_back(static_cast<int32_t>(r));
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return full[static_cast<size_t>(a)] > full[static_cast<size_t>(b)]; });
  return order;
}

// One logits call's result against the oracle `full`. `rank`: also require the true top_k of the
// rows not in `exact` (needs a NaN-free `full`).
testing::AssertionResult check_call(const std::vector<float>& full, const std::vector<float>& y, int64_t count,
                                    int32_t top_k, std::span<const int32_t> exact, bool rank = true) {
  const size_t rows = full.size();
  int64_t computed = 0;
  bool full_has_neg_inf = false;
  for (size_t r = 0; r < rows; ++r) {
    full_has_neg_inf |= same_bits(full[r], kNegInf);
    if (same_bits(y[r], kNegInf)) continue;
    ++computed;
    if (!same_bits(y[r], full[r]))
      return testing::AssertionFailure() << "row " << r << ": y=" << y[r] << " but matmul gives " << full[r];
  }
  if (count < top_k) return testing::AssertionFailure() << "count " << count << " < top_k " << top_k;
  if (!full_has_neg_inf && count != computed)
    return testing::AssertionFailure() << "count " << count << " but " << computed << " rows are not -inf";
  for (int32_t r : exact) {
    if (!same_bits(y[static_cast<size_t>(r)], full[static_cast<size_t>(r)]))
      return testing::AssertionFailure() << "forced row " << r << ": y=" << y[static_cast<size_t>(r)]
                                         << " but matmul gives " << full[static_cast<size_t>(r)];
  }
  if (rank) {
    const std::vector<int32_t> order = ranked(full, exact);
    for (size_t i = 0; i < static_cast<size_t>(top_k) && i < order.size(); ++i) {
      const auto r = static_cast<size_t>(order[i]);
      if (!same_bits(y[r], full[r]))
        return testing::AssertionFailure() << "rank " << i << " (row " << r << ", " << full[r] << ", k-th value "
                                           << full[static_cast<size_t>(order[static_cast<size_t>(top_k) - 1])]
                                           << ") not computed: y=" << y[r] << " (count " << count << ")";
    }
  }
  return testing::AssertionSuccess();
}

// y starts as a value no call may leave behind: every row is written, -inf or the exact value.
struct Call {
  std::vector<float> y;
  int64_t count = 0;
};
Call screen_call(const OutputScreen& s, const Matrix& m, const std::vector<float>& x, int32_t top_k,
                 std::span<const int32_t> exact, OutputScreen::Work& work, MatmulScratch& scratch,
                 ThreadPool* pool = nullptr) {
  Call c{std::vector<float>(static_cast<size_t>(m.rows), 12345.0f), 0};
  c.count = s.logits(x.data(), top_k, exact, c.y.data(), work, scratch, pool);
  return c;
}

constexpr G kTypes[] = {G::F32, G::F16, G::BF16, G::Q4_0, G::Q8_0, G::Q6_K, G::TQ1_0, G::TQ2_0};

TEST(OutputScreen, SupportsEveryTypeButI2s) {
  const std::byte dummy[4] = {};
  for (const KernelTable* k : all_tables()) {
    if (k->gemv_i8_i16 == nullptr) continue;
    for (G type : kTypes) EXPECT_TRUE(OutputScreen::supports(*k, WeightView{type, 256, 8, dummy})) << k->name;
    EXPECT_FALSE(OutputScreen::supports(*k, WeightView{G::I2_S, 256, 8, dummy})) << k->name;
    EXPECT_FALSE(OutputScreen::supports(*k, WeightView{G::F16, 256, 0, dummy})) << k->name;
  }
  // The reference has the integer entry: the screen always runs somewhere.
  EXPECT_NE(reference_table().gemv_i8_i16, nullptr);
}

// The screen's memory is what planned_bytes says, under its tag, and goes back with it.
TEST(OutputScreen, HoldsThePlannedBytes) {
  std::mt19937 rng(11);
  MemoryPool memory;
  const Matrix m = random_matrix(rng, G::F16, 301, 96);
  {
    OutputScreen s(reference_table(), m.view(), memory);
    EXPECT_EQ(s.bytes(), OutputScreen::planned_bytes(m.view()));
    EXPECT_EQ(memory.tracker().tag(kTagOutputScreen).current, OutputScreen::planned_bytes(m.view()));
  }
  EXPECT_EQ(memory.tracker().tag(kTagOutputScreen).current, 0u);
  EXPECT_TRUE(OutputScreen::saves_bytes(WeightView{G::F16, 256, 8, nullptr}));
  EXPECT_TRUE(OutputScreen::saves_bytes(WeightView{G::F32, 256, 8, nullptr}));
  EXPECT_FALSE(OutputScreen::saves_bytes(WeightView{G::Q8_0, 256, 8, nullptr}));
  EXPECT_FALSE(OutputScreen::saves_bytes(WeightView{G::Q6_K, 256, 8, nullptr}));
}

// Random matrices of every type, row counts past the screen's 256-row ranges, widths with and
// without the integer kernels' tails, activations with and without outliers.
TEST(OutputScreen, RandomMatricesGiveTheTopKExactly) {
  struct Shape {
    int64_t rows, cols;
  };
  constexpr Shape kShapes[] = {{1000, 64}, {1000, 77}, {1000, 256}, {1000, 2560}, {3001, 64}, {3001, 256}};
  constexpr int32_t kTopK[] = {1, 5, 40};
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  std::mt19937 rng(21);
  size_t calls = 0;
  for (G type : kTypes) {
    for (const Shape& shape : kShapes) {
      if (shape.cols % block_of(type) != 0) continue;
      const Matrix m = random_matrix(rng, type, shape.rows, shape.cols);
      std::vector<std::vector<float>> xs;
      for (int a = 0; a < 3; ++a) xs.push_back(random_activation(rng, shape.cols, a == 2));
      for (const KernelTable* k : all_tables()) {
        if (!OutputScreen::supports(*k, m.view())) continue;
        OutputScreen screen(*k, m.view(), memory);
        for (size_t a = 0; a < xs.size(); ++a) {
          const std::vector<float>& x = xs[a];
          const std::vector<float> full = full_product(*k, m, x);
          for (int32_t top_k : kTopK) {
            SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(type)) + " rows=" +
                         std::to_string(shape.rows) + " cols=" + std::to_string(shape.cols) + " act=" +
                         std::to_string(a) + " top_k=" + std::to_string(top_k));
            const Call c = screen_call(screen, m, x, top_k, {}, work, scratch);
            EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {}));
            ++calls;
          }
        }
      }
    }
  }
  EXPECT_GT(calls, 0u);
}

// Not a contract but the point of the screen, and a guard against the test above passing only
// because every row was computed: on random matrices few rows survive.
TEST(OutputScreen, ScreensOutMostRowsOfRandomMatrices) {
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  std::mt19937 rng(31);
  for (G type : {G::F16, G::F32, G::Q8_0}) {
    const Matrix m = random_matrix(rng, type, 3001, 256);
    OutputScreen screen(reference_table(), m.view(), memory);
    const std::vector<float> x = random_activation(rng, 256, false);
    const Call c = screen_call(screen, m, x, 5, {}, work, scratch);
    EXPECT_LT(c.count, m.rows / 10) << gguf::type_name(type);
    EXPECT_TRUE(check_call(full_product(reference_table(), m, x), c.y, c.count, 5, {})) << gguf::type_name(type);
  }
}

// Rows 0..99 equal one row b; rows 100..199 are b with one element one F16 ulp up or down
// (alternately); rows 200..455 are b with their first 1..256 elements 16 ulps nearer zero (a
// staircase of values falling through the screen's error bound); the rest random and smaller. The
// activation is b itself, so the copies are the largest rows and the k-th row sits inside groups
// of exactly equal or one-ulp-apart values.
TEST(OutputScreen, NearTiesAtTheKthRow) {
  const int64_t rows = 1000, cols = 256;
  std::mt19937 rng(41);
  std::vector<uint16_t> base(static_cast<size_t>(cols));
  for (auto& h : base) {
    const float v = std::uniform_real_distribution<float>(0.25f, 1.0f)(rng);
    h = f32_to_f16(rng() % 2 == 0 ? v : -v);
  }
  std::vector<uint16_t> w = test::random_f16(rng, static_cast<size_t>(rows * cols), -0.3f, 0.3f);
  auto row = [&](int64_t r) { return w.begin() + r * cols; };
  for (int64_t r = 0; r < 456; ++r) std::copy(base.begin(), base.end(), row(r));
  for (int64_t r = 100; r < 200; ++r) {
    uint16_t& h = row(r)[r % cols];
    h = static_cast<uint16_t>(r % 2 == 0 ? h + 1 : h - 1);  // |b| >= 0.25: the sign never flips
  }
  for (int64_t r = 200; r < 456; ++r)
    for (int64_t i = 0; i < r - 199; ++i) row(r)[i] = static_cast<uint16_t>(row(r)[i] - 16);  // magnitude down
  // The F32 version of the same matrix: one-ulp steps of F32 instead.
  std::vector<float> wf(w.size());
  for (size_t i = 0; i < w.size(); ++i) wf[i] = f16_to_f32(w[i]);
  for (int64_t r = 100; r < 200; ++r) {
    float& v = wf[static_cast<size_t>(r * cols + r % cols)];
    v = f16_to_f32(base[static_cast<size_t>(r % cols)]);
    v = std::nextafter(v, r % 2 == 0 ? kInf : kNegInf);
  }
  std::vector<float> x(static_cast<size_t>(cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = f16_to_f32(base[i]);

  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  for (const Matrix& m : {f16_matrix(w, rows, cols), f32_matrix(wf, rows, cols)}) {
    for (const KernelTable* k : all_tables()) {
      if (!OutputScreen::supports(*k, m.view())) continue;
      OutputScreen screen(*k, m.view(), memory);
      const std::vector<float> full = full_product(*k, m, x);
      const std::vector<int32_t> order = ranked(full);
      ASSERT_LT(order[455], 456);  // the constructed rows are the largest
      for (int32_t top_k : {1, 40, 99, 100, 101, 150, 250, 400}) {
        SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(m.type)) + " top_k=" + std::to_string(top_k));
        const Call c = screen_call(screen, m, x, top_k, {}, work, scratch);
        EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {}));
        // Every row tied with the k-th value can be among the top_k.
        const float kth = full[static_cast<size_t>(order[static_cast<size_t>(top_k - 1)])];
        for (int64_t r = 0; r < rows; ++r)
          if (full[static_cast<size_t>(r)] == kth) {
            EXPECT_TRUE(same_bits(c.y[static_cast<size_t>(r)], kth)) << "row " << r;
          }
      }
    }
  }
}

// Forced rows far below the top are computed exactly; forced rows at the top do not count towards
// the k (a sampler may ban them), so the k best of the others are computed too; duplicates and
// any order are fine.
TEST(OutputScreen, ExactRowsAreComputedAndDoNotCountTowardsK) {
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  std::mt19937 rng(51);
  for (const KernelTable* k : all_tables()) {
    for (G type : {G::F16, G::F32, G::Q8_0}) {
      const Matrix m = random_matrix(rng, type, 1000, 256);
      if (!OutputScreen::supports(*k, m.view())) continue;
      OutputScreen screen(*k, m.view(), memory);
      for (int a = 0; a < 2; ++a) {
        const std::vector<float> x = random_activation(rng, m.cols, a == 1);
        const std::vector<float> full = full_product(*k, m, x);
        const std::vector<int32_t> order = ranked(full);
        SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(type)) + " act=" + std::to_string(a));
        // The 10 smallest, with top_k 1.
        const std::vector<int32_t> bottom(order.end() - 10, order.end());
        Call c = screen_call(screen, m, x, 1, bottom, work, scratch);
        EXPECT_TRUE(check_call(full, c.y, c.count, 1, bottom));
        EXPECT_TRUE(same_bits(c.y[static_cast<size_t>(order[0])], full[static_cast<size_t>(order[0])]));
        EXPECT_GE(c.count, 11);
        // The 5 largest forced, top_k 3: ranks 5..7 must be computed as well.
        const std::vector<int32_t> top(order.begin(), order.begin() + 5);
        c = screen_call(screen, m, x, 3, top, work, scratch);
        EXPECT_TRUE(check_call(full, c.y, c.count, 3, top));
        for (size_t i = 0; i < 8; ++i)
          EXPECT_TRUE(same_bits(c.y[static_cast<size_t>(order[i])], full[static_cast<size_t>(order[i])])) << "rank " << i;
        EXPECT_GE(c.count, 8);
        // Unsorted, repeated, and the first and last rows.
        const std::vector<int32_t> mixed = {999, order[999], 3, 3, 0, order[500], 999};
        c = screen_call(screen, m, x, 2, mixed, work, scratch);
        EXPECT_TRUE(check_call(full, c.y, c.count, 2, mixed));
      }
    }
  }
}

// The screen built and run with pools of 1, 2 and 3 threads gives the bits of the one-thread run.
TEST(OutputScreen, ThreadCountDoesNotChangeTheResult) {
  MemoryPool memory;
  std::mt19937 rng(61);
  for (const KernelTable* k : all_tables()) {
    for (G type : {G::F16, G::Q6_K}) {
      const Matrix m = random_matrix(rng, type, 3001, 512);
      if (!OutputScreen::supports(*k, m.view())) continue;
      const std::vector<float> x = random_activation(rng, m.cols, true);
      const std::vector<float> full = full_product(*k, m, x);
      const std::vector<int32_t> exact = {17, 2999};
      MatmulScratch scratch(memory);
      OutputScreen::Work work;
      OutputScreen plain(*k, m.view(), memory);
      const Call want = screen_call(plain, m, x, 40, exact, work, scratch);
      EXPECT_TRUE(check_call(full, want.y, want.count, 40, exact));
      for (int threads : {1, 2, 3}) {
        SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(type)) + " threads=" + std::to_string(threads));
        ThreadPool pool(threads);
        OutputScreen pooled(*k, m.view(), memory, &pool);
        for (const OutputScreen* s : {&plain, &pooled}) {
          OutputScreen::Work fresh;  // a second caller's buffers on the shared screen
          const Call got = screen_call(*s, m, x, 40, exact, threads == 2 ? fresh : work, scratch, &pool);
          EXPECT_EQ(got.count, want.count);
          EXPECT_EQ(std::memcmp(got.y.data(), want.y.data(), got.y.size() * sizeof(float)), 0);
        }
      }
    }
  }
}

// A row with NaN or an infinity has no finite error bound: it is always computed, whatever the k.
TEST(OutputScreen, NonFiniteWeightRowsAreNeverScreenedOut) {
  const int64_t rows = 1000, cols = 256;
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  std::mt19937 rng(71);
  std::vector<uint16_t> w = test::random_f16(rng, static_cast<size_t>(rows * cols), -1.0f, 1.0f);
  // Positive activations: +inf weights give +inf, -inf weights -inf, both NaN.
  const std::vector<float> x = test::random_floats(rng, static_cast<size_t>(cols), 0.1f, 1.0f);
  auto at = [&](int64_t r, int64_t i) -> uint16_t& { return w[static_cast<size_t>(r * cols + i)]; };
  at(7, 3) = 0x7e00;                      // NaN
  at(500, 100) = 0x7c00;                  // +inf
  at(501, 0) = 0x7c00;                    // +inf, and
  at(501, 255) = 0xfc00;                  // -inf: NaN
  at(502, 9) = 0xfc00;                    // -inf
  at(999, 200) = 0xfe00;                  // negative NaN
  for (int64_t i = 0; i < cols; ++i) at(998, i) = 0;  // an all-zero row: exact, value 0
  const Matrix m = f16_matrix(w, rows, cols);
  const std::vector<int32_t> nonfinite = {7, 500, 501, 999};
  for (const KernelTable* k : all_tables()) {
    if (!OutputScreen::supports(*k, m.view())) continue;
    OutputScreen screen(*k, m.view(), memory);
    const std::vector<float> full = full_product(*k, m, x);
    ASSERT_TRUE(std::isnan(full[7]) && std::isnan(full[501]) && std::isnan(full[999]));
    ASSERT_EQ(full[500], kInf);
    ASSERT_EQ(full[502], kNegInf);
    for (int32_t top_k : {1, 5, 40}) {
      SCOPED_TRACE(std::string(k->name) + " top_k=" + std::to_string(top_k));
      const Call c = screen_call(screen, m, x, top_k, {}, work, scratch);
      EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {}, /*rank=*/false));
      for (int32_t r : nonfinite) EXPECT_TRUE(same_bits(c.y[static_cast<size_t>(r)], full[static_cast<size_t>(r)])) << "row " << r;
      // The finite rows' top_k (the non-finite ones aside) is still exact.
      std::vector<float> finite = full;
      for (int32_t r : nonfinite) finite[static_cast<size_t>(r)] = kNegInf;
      const std::vector<int32_t> order = ranked(finite);
      for (size_t i = 0; i < static_cast<size_t>(top_k); ++i)
        EXPECT_TRUE(same_bits(c.y[static_cast<size_t>(order[i])], full[static_cast<size_t>(order[i])])) << "rank " << i;
    }
  }
}

// Where the screen has nothing to screen with, every row is computed: an all-zero activation (and
// one that rounds to zero in F16), an activation that matmul sees as NaN or infinite, and a k that
// with the forced rows covers the matrix. (The Q8_0 and Q8_K quantizers turn a NaN element into a
// finite block, which matmul then multiplies: there the screen runs and must agree with it.)
TEST(OutputScreen, DegenerateCallsComputeEveryRow) {
  const int64_t rows = 600, cols = 256;
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  std::mt19937 rng(81);
  for (const KernelTable* k : all_tables()) {
    for (G type : {G::F16, G::F32, G::Q8_0, G::Q6_K}) {
      const Matrix m = random_matrix(rng, type, rows, cols);
      if (!OutputScreen::supports(*k, m.view())) continue;
      OutputScreen screen(*k, m.view(), memory);
      std::vector<std::vector<float>> xs;
      xs.emplace_back(static_cast<size_t>(cols), 0.0f);
      xs.emplace_back(static_cast<size_t>(cols), -0.0f);
      if (type == G::F16) xs.emplace_back(static_cast<size_t>(cols), 1e-9f);  // F16 zero
      xs.push_back(random_activation(rng, cols, false));
      xs.back()[5] = std::numeric_limits<float>::quiet_NaN();
      xs.push_back(random_activation(rng, cols, false));
      xs.back()[70] = kInf;
      xs.push_back(random_activation(rng, cols, false));
      xs.back()[200] = kNegInf;
      for (size_t a = 0; a < xs.size(); ++a) {
        SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(type)) + " act=" + std::to_string(a));
        const std::vector<float> full = full_product(*k, m, xs[a]);
        std::vector<double> seen(static_cast<size_t>(cols));
        ASSERT_TRUE(matmul_activation(*k, m.view(), xs[a].data(), seen.data()));
        const bool degenerate = a < 2 || (type == G::F16 && a == 2) ||
                                std::any_of(seen.begin(), seen.end(), [](double v) { return !std::isfinite(v); });
        const bool nan_free = std::none_of(full.begin(), full.end(), [](float v) { return std::isnan(v); });
        for (int32_t top_k : {1, 40}) {
          const Call c = screen_call(screen, m, xs[a], top_k, {}, work, scratch);
          if (degenerate) {
            EXPECT_EQ(c.count, rows);
            EXPECT_EQ(std::memcmp(c.y.data(), full.data(), full.size() * sizeof(float)), 0);
          } else {
            EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {}, nan_free));
          }
        }
      }
      const std::vector<float> x = random_activation(rng, cols, false);
      const std::vector<float> full = full_product(*k, m, x);
      const std::vector<int32_t> one = {3};
      for (auto [top_k, exact] : {std::pair<int32_t, std::span<const int32_t>>{static_cast<int32_t>(rows), {}},
                                  {static_cast<int32_t>(rows + 5), {}},
                                  {static_cast<int32_t>(rows - 1), one}}) {
        SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(type)) + " top_k=" + std::to_string(top_k));
        const Call c = screen_call(screen, m, x, top_k, exact, work, scratch);
        EXPECT_EQ(c.count, rows);
        EXPECT_EQ(std::memcmp(c.y.data(), full.data(), full.size() * sizeof(float)), 0);
      }
    }
  }
}

// F32 rows at the ends of the float range: subnormal rows (whose int8 scale underflows), rows of
// huge values, zero rows, rows with a single nonzero element, next to ordinary rows.
TEST(OutputScreen, ExtremeF32Rows) {
  const int64_t rows = 800, cols = 96;
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  std::mt19937 rng(91);
  std::vector<float> w = test::random_floats(rng, static_cast<size_t>(rows * cols), -1.0f, 1.0f);
  auto row = [&](int64_t r) { return w.begin() + r * cols; };
  for (int64_t r = 0; r < 50; ++r) {
    const float scale = r < 10 ? 1e-40f : r < 20 ? 1e-37f : r < 30 ? 1e30f : r < 40 ? 0.0f : 1.0f;
    for (int64_t i = 0; i < cols; ++i) row(r)[i] *= scale;
    if (r >= 40) {
      std::fill(row(r), row(r) + cols, 0.0f);
      row(r)[r % cols] = 3.0f;
    }
  }
  for (int64_t r = 50; r < 60; ++r) std::fill(row(r), row(r) + cols, 0.0f);  // zero except for
  for (int64_t r = 50; r < 60; ++r) row(r)[1] = 1e-44f;                      // one subnormal
  const Matrix m = f32_matrix(w, rows, cols);
  for (const KernelTable* k : all_tables()) {
    if (!OutputScreen::supports(*k, m.view())) continue;
    OutputScreen screen(*k, m.view(), memory);
    for (int a = 0; a < 4; ++a) {
      std::vector<float> x = random_activation(rng, cols, a == 1);
      if (a == 2)
        for (float& v : x) v *= 1e-30f;  // products underflow
      if (a == 3)
        for (float& v : x) v *= 1e6f;
      const std::vector<float> full = full_product(*k, m, x);
      for (int32_t top_k : {1, 5, 40}) {
        SCOPED_TRACE(std::string(k->name) + " act=" + std::to_string(a) + " top_k=" + std::to_string(top_k));
        const Call c = screen_call(screen, m, x, top_k, {}, work, scratch);
        EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {}));
        // Negative top_k rows as well: the smallest through the forced list.
        const std::vector<int32_t> order = ranked(full);
        const std::vector<int32_t> bottom(order.end() - 5, order.end());
        const Call b = screen_call(screen, m, x, top_k, bottom, work, scratch);
        EXPECT_TRUE(check_call(full, b.y, b.count, top_k, bottom));
      }
    }
  }
}

// Adversarial rows, one per term of the screen's error bound: a row B whose screen estimate falls
// short of its exact value by nearly the whole term, and a row A whose estimate is exact, just
// below B (by 2% of the term). B is the argmax, and A's lower bound lies above everything B's
// interval would reach without that term (or with 80% of it), so B is computed only if the whole
// term is there.
void expect_argmax_computed(const Matrix& m, const std::vector<float>& x, int32_t b, int32_t a) {
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  for (const KernelTable* k : all_tables()) {
    if (!OutputScreen::supports(*k, m.view())) continue;
    SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(m.type)));
    OutputScreen screen(*k, m.view(), memory);
    const std::vector<float> full = full_product(*k, m, x);
    const std::vector<int32_t> order = ranked(full);
    ASSERT_EQ(order[0], b);  // the construction: B first, A second
    ASSERT_EQ(order[1], a);
    for (int32_t top_k : {1, 2}) {
      const Call c = screen_call(screen, m, x, top_k, {}, work, scratch);
      EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {})) << "top_k=" << top_k;
    }
  }
}

// The weight term, ||w - s q|| ||a||: B's rounding error to int8 is 0.45 of a step along the
// activation's signs (Cauchy-Schwarz is tight), with activations of +-1 that the int16 copy holds
// exactly. A's F16 weights are on its own int8 grid (multiples of 1/128).
TEST(OutputScreen, WeightRoundingAlongTheActivationIsCovered) {
  const int64_t rows = 500, cols = 256;
  std::mt19937 rng(101);
  std::vector<float> x(static_cast<size_t>(cols));
  for (auto& v : x) v = rng() % 2 == 0 ? 1.0f : -1.0f;
  x[0] = 1.0f;
  std::vector<uint16_t> w = test::random_f16(rng, static_cast<size_t>(rows * cols), -0.05f, 0.05f);
  auto at = [&](int64_t r, int64_t i) -> uint16_t& { return w[static_cast<size_t>(r * cols + i)]; };
  const int32_t b = 123, a = 321;
  at(b, 0) = f32_to_f16(1.0f);  // s = 1/127
  double e_part = 0, value_b = 1.0;
  for (int64_t i = 1; i < cols; ++i) {
    const auto q = static_cast<float>(rng() % 100 + 1);  // |w| < 101/127: the rounding picks q
    const float v = f16_to_f32(f32_to_f16((q + 0.45f) / 127.0f * x[static_cast<size_t>(i)]));
    at(b, i) = f32_to_f16(v);
    e_part += std::fabs(v) - q / 127.0;
    value_b += std::fabs(v);
  }
  // A = B's value less 2% of the term (and < 1/128 more), on the grid k/128 (k <= 127: no
  // rounding error).
  auto units = static_cast<int64_t>(std::floor((value_b - 0.02 * e_part) * 128));
  at(a, 0) = f32_to_f16(127.0f / 128.0f);
  units -= 127;
  for (int64_t i = 1; i < cols; ++i) {
    const int64_t kk = std::min<int64_t>(127, std::max<int64_t>(units, 0));
    at(a, i) = f32_to_f16(static_cast<float>(kk) / 128.0f * x[static_cast<size_t>(i)]);
    units -= kk;
  }
  ASSERT_EQ(units, 0);
  expect_argmax_computed(f16_matrix(w, rows, cols), x, b, a);
}

// The activation term, s ||q|| ||a - d p||: element 0 of the activation sets the int16 step d,
// every other element lies 0.4375 of a step past a small multiple, with the sign of B's weight
// there (all +-127 steps): the int16 copy loses nearly the whole term. A has one weight, at
// element 0, where the copy is exact. F32 weights and activations: no rounding anywhere else.
TEST(OutputScreen, ActivationRoundingAlongTheRowIsCovered) {
  const int64_t rows = 500, cols = 256;
  std::mt19937 rng(102);
  std::vector<float> x(static_cast<size_t>(cols));
  x[0] = 32767.0f / 32768.0f;  // d = 2^-15
  std::vector<float> w = test::random_floats(rng, static_cast<size_t>(rows * cols), -0.5f, 0.5f);
  for (int64_t r = 0; r < rows; ++r) w[static_cast<size_t>(r * cols)] = 0.0f;  // values ~ 1e-3
  const int32_t b = 77, a = 400;
  double value_b = 0, f_part = 0;
  for (int64_t i = 1; i < cols; ++i) {
    const float sign = rng() % 2 == 0 ? 1.0f : -1.0f;
    const auto p = static_cast<float>(rng() % 3 + 1);
    x[static_cast<size_t>(i)] = sign * (16 * p + 7) * 0x1p-19f;  // (p + 0.4375) d
    w[static_cast<size_t>(b * cols + i)] = sign * 127.0f / 128.0f;  // q = +-127, s = 1/128
    value_b += 127.0 / 128.0 * std::fabs(x[static_cast<size_t>(i)]);
    f_part += 127.0 / 128.0 * 0.4375 * 0x1p-15;
  }
  std::fill_n(w.begin() + a * cols, cols, 0.0f);
  w[static_cast<size_t>(a * cols)] = static_cast<float>((value_b - 0.02 * f_part) / x[0]);
  expect_argmax_computed(f32_matrix(w, rows, cols), x, b, a);
}

// The summation term, (n + 64) 2^-24 ||w|| ||a||: F32 weights on each row's int8 grid and
// activations on the int16 grid, so every screen estimate is the exact value, and only matmul's
// float sums differ from it. Rows 0..299 are one row with weights swapped between elements of
// equal activation (the same exact value, other float roundings) and an offset of -2..2 units at
// an activation of one unit: their float order is not their exact order.
TEST(OutputScreen, FloatSummationErrorIsCovered) {
  const int64_t rows = 1000, cols = 256;
  std::mt19937 rng(103);
  constexpr int32_t kMagnitudes[] = {32767, 30001, 20011, 9973};
  std::vector<int32_t> p(static_cast<size_t>(cols));
  p[0] = 32767;
  p[1] = 1;
  for (int64_t i = 2; i < cols; ++i)
    p[static_cast<size_t>(i)] = kMagnitudes[rng() % 4] * (rng() % 2 == 0 ? 1 : -1);
  std::vector<float> x(static_cast<size_t>(cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(p[i]) * 0x1p-15f;  // d = 2^-15
  std::vector<int32_t> base(static_cast<size_t>(cols));
  base[0] = 127;  // s = 1/128
  base[1] = 50;
  for (int64_t i = 2; i < cols; ++i)
    base[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % 127 + 1) * (p[static_cast<size_t>(i)] > 0 ? 1 : -1);
  std::vector<float> w = test::random_floats(rng, static_cast<size_t>(rows * cols), -0.05f, 0.05f);
  std::vector<int64_t> exact(static_cast<size_t>(rows), std::numeric_limits<int64_t>::min());  // units of 2^-22
  for (int64_t r = 0; r < 300; ++r) {
    std::vector<int32_t> q = base;
    for (int s = 0; s < 40; ++s) {
      const auto i = static_cast<size_t>(2 + rng() % (cols - 2)), j = static_cast<size_t>(2 + rng() % (cols - 2));
      if (p[i] == p[j]) std::swap(q[i], q[j]);
    }
    q[1] += static_cast<int32_t>(r % 5) - 2;
    exact[static_cast<size_t>(r)] = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      w[static_cast<size_t>(r * cols) + i] = static_cast<float>(q[i]) / 128.0f;
      exact[static_cast<size_t>(r)] += int64_t{q[i]} * p[i];
    }
  }
  const Matrix m = f32_matrix(w, rows, cols);
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  for (const KernelTable* k : all_tables()) {
    if (!OutputScreen::supports(*k, m.view())) continue;
    OutputScreen screen(*k, m.view(), memory);
    const std::vector<float> full = full_product(*k, m, x);
    const std::vector<int32_t> order = ranked(full);
    for (int32_t top_k : {1, 10, 50}) {
      SCOPED_TRACE(std::string(k->name) + " top_k=" + std::to_string(top_k));
      // The premise: a row of the float top_k whose exact value is below the k-th exact value.
      std::vector<int64_t> sorted_exact(exact);
      std::sort(sorted_exact.begin(), sorted_exact.end(), std::greater<>());
      bool reordered = false;
      for (size_t i = 0; i < static_cast<size_t>(top_k); ++i)
        reordered |= exact[static_cast<size_t>(order[i])] < sorted_exact[static_cast<size_t>(top_k - 1)];
      ASSERT_TRUE(reordered);
      const Call c = screen_call(screen, m, x, top_k, {}, work, scratch);
      EXPECT_TRUE(check_call(full, c.y, c.count, top_k, {}));
    }
  }
}

// A row whose float product overflows although its exact value is 0 and its norm is finite:
// matmul gives +inf, the largest logit, so the row is among the top_k and must be computed. The
// bound on matmul's rounding, (n + 64) 2^-24 ||w|| ||a||, does not hold once a partial sum
// overflows, so the screen computes every row whose ||w|| ||a|| reaches 2^126.
TEST(OutputScreen, RowWhoseProductOverflowsIsComputed) {
  const int64_t rows = 64, cols = 256;
  std::vector<float> w(static_cast<size_t>(rows * cols), 1e35f);  // every other row: 2.56e37
  std::fill_n(w.begin(), cols, 0.0f);
  w[0] = w[64] = w[128] = w[192] = 1e38f;  // one of the dots' 64 lanes: 4e38 = inf
  w[1] = w[2] = w[3] = w[4] = -1e38f;      // exact sum 0; ||row|| = 2.8e38 < FLT_MAX
  std::vector<uint16_t> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) wb[i] = f32_to_bf16(w[i]);
  const std::vector<float> x(static_cast<size_t>(cols), 1.0f);
  MemoryPool memory;
  MatmulScratch scratch(memory);
  OutputScreen::Work work;
  for (const Matrix& m : {f32_matrix(w, rows, cols), Matrix{G::BF16, rows, cols, bytes_of(wb)}}) {
    for (const KernelTable* k : all_tables()) {
      if (!OutputScreen::supports(*k, m.view())) continue;
      SCOPED_TRACE(std::string(k->name) + " " + std::string(gguf::type_name(m.type)));
      OutputScreen screen(*k, m.view(), memory);
      const std::vector<float> full = full_product(*k, m, x);
      ASSERT_EQ(full[0], kInf);
      const Call c = screen_call(screen, m, x, 1, {}, work, scratch);
      EXPECT_TRUE(check_call(full, c.y, c.count, 1, {}));
    }
  }
}

}  // namespace
}  // namespace bitnet::kernels
