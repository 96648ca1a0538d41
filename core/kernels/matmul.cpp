// matmul: quantize every token's activations once the way the weight format's home engine does,
// then one table dot product per (row, token). The scratch buffer holds the quantized tokens.
#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <type_traits>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/formats.hpp"
#include "core/kernels/kernels.hpp"

namespace bitnet::kernels {
namespace {

constexpr size_t kAlign = 64;

constexpr size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

[[noreturn]] void no_kernel(const WeightView& w, const KernelTable& k) {
  throw make_error(ErrorCode::invalid_input, "matmul: kernel table '{}' has no dot product for weight type {}",
                   k.name, gguf::type_name(w.type));
}

template <typename Fn>
void check_entry(Fn* fn, const WeightView& w, const KernelTable& k) {
  if (fn == nullptr) no_kernel(w, k);
}

// Runs f(first_row, end_row) over all rows, split across the pool's threads when there is one.
// Each (row, token) result is computed by the same code whichever thread runs it.
template <typename F>
void for_rows(ThreadPool* pool, int64_t rows, F&& f) {
  parallel_ranges(pool, rows, /*grain=*/16, f);
}

// Quantizes the tokens' activations (fn(t) does token t), over the pool when there are enough
// tokens to pay for waking it; each token's bytes come from the same code either way.
template <typename F>
void for_tokens(ThreadPool* pool, int64_t n_tokens, F&& fn) {
  if (pool == nullptr || pool->size() == 1 || n_tokens < 8) {
    for (int64_t t = 0; t < n_tokens; ++t) fn(t);
    return;
  }
  pool->parallel_for(n_tokens, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) fn(t);
  });
}

// Prefill tiles for the gemm entries: a block of rows small enough to stay in L1/L2 while a chunk
// of tokens (whose activations stay in L2) streams past it. One token (decode) reuses no row, so
// its tiles are as tall as the caller allows (one_token_rows): the entry then streams the range
// as it likes (the AVX2/AVX-512 decode reads four far-apart quarters at once) and pays its
// per-call set-up once.
constexpr int64_t kTileRows = 64, kTileTokens = 128;

template <typename F>
void for_tiles(int64_t r0, int64_t r1, int64_t n_tokens, int64_t one_token_rows, F&& f) {
  const int64_t rows = n_tokens == 1 ? std::max<int64_t>(1, one_token_rows) : kTileRows;
  for (int64_t tb = 0; tb < n_tokens; tb += kTileTokens)
    for (int64_t rb = r0; rb < r1; rb += rows) f(rb, std::min(rows, r1 - rb), tb, std::min(kTileTokens, n_tokens - tb));
}

// Bytes of one weight row for block types (rows never share a block there).
size_t row_bytes(const WeightView& w) {
  const gguf::TypeTraits& t = gguf::traits(w.type);
  BITNET_CHECK(w.cols % t.block_size == 0);
  return static_cast<size_t>(w.cols / t.block_size) * t.block_bytes;
}

// The activations of one matmul, quantized once, and the code that multiplies any row range of
// a weight of the same type and width with them: matmul runs one weight's rows, matmul_group
// several weights' (Q/K/V, gate/up) in one pass over the pool.
using RowRunner = std::function<void(const WeightView& w, float* y, int64_t y_stride, int64_t r0, int64_t r1)>;

// I2_S (SPEC 2.5): one int8 scale and sum of q per token, integer dot per row, then
// (dot - qsum) / s * wscale in float, in that order.
RowRunner prepare_i2s(const KernelTable& k, const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens,
                      MatmulScratch& scratch, ThreadPool* pool) {
  check_entry(k.quantize_i8, w, k);
  check_entry(k.dot_i2s_i8, w, k);
  const auto tokens = static_cast<size_t>(n_tokens);
  const size_t q_bytes = align_up(tokens * static_cast<size_t>(w.cols));
  const size_t s_bytes = align_up(tokens * sizeof(float));
  auto* base = static_cast<std::byte*>(scratch.get(matmul_scratch_bytes(w, n_tokens)));
  auto* q = reinterpret_cast<int8_t*>(base);
  auto* scale = reinterpret_cast<float*>(base + q_bytes);
  auto* qsum = reinterpret_cast<int32_t*>(base + q_bytes + s_bytes);
  const int64_t cols = w.cols;
  for_tokens(pool, n_tokens, [&](int64_t t) { k.quantize_i8(x + t * x_stride, cols, q + t * cols, &scale[t], &qsum[t]); });
  return [&k, q, scale, qsum, n_tokens](const WeightView& wv, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
    const auto* codes = reinterpret_cast<const uint8_t*>(wv.data);
    const int64_t n = wv.cols;
    auto finish = [&](int32_t dot, int64_t t) { return static_cast<float>(dot - qsum[t]) / scale[t] * wv.i2s_scale; };
    if (k.gemm_i2s_i8 != nullptr && n % kQK_I2S == 0) {
      std::array<int32_t, kTileRows * kTileTokens> dots;  // one tile's int32 sums
      for_tiles(r0, r1, n_tokens, static_cast<int64_t>(dots.size()), [&](int64_t rb, int64_t nr, int64_t tb, int64_t nt) {
        k.gemm_i2s_i8(codes + rb * n / 4, nr, q + tb * n, nt, n, dots.data(), nr);
        for (int64_t t = 0; t < nt; ++t)
          for (int64_t r = 0; r < nr; ++r) y[(tb + t) * y_stride + rb + r] = finish(dots[static_cast<size_t>(t * nr + r)], tb + t);
      });
      return;
    }
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = finish(k.dot_i2s_i8(codes, r * n, q + t * n, n), t);
  };
}

// Every other quantized type: Act is the quantized activation element/block type, `quantize`
// fills one token, `dot` takes one weight row and one token; `gemm` (may be null) takes many
// rows and tokens at once (see KernelTable).
template <typename Act, typename Quantize, typename Dot, typename Gemm = std::nullptr_t>
RowRunner prepare_blocks(const WeightView& w, int64_t act_per_token, Quantize quantize, Dot dot, const float* x,
                         int64_t x_stride, int64_t n_tokens, MatmulScratch& scratch, ThreadPool* pool,
                         Gemm gemm = nullptr) {
  auto* act = static_cast<Act*>(scratch.get(matmul_scratch_bytes(w, n_tokens)));
  const int64_t cols = w.cols;
  for_tokens(pool, n_tokens, [&](int64_t t) { quantize(x + t * x_stride, cols, act + t * act_per_token); });
  return [=](const WeightView& wv, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
    const size_t stride = row_bytes(wv);
    if constexpr (!std::is_same_v<Gemm, std::nullptr_t>) {
      if (gemm != nullptr) {
        for_tiles(r0, r1, n_tokens, r1 - r0, [&](int64_t rb, int64_t nr, int64_t tb, int64_t nt) {
          gemm(wv.data + static_cast<size_t>(rb) * stride, nr, act + tb * act_per_token, nt, wv.cols,
               y + tb * y_stride + rb, y_stride);
        });
        return;
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* row = wv.data + static_cast<size_t>(r) * stride;
      for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = dot(row, act + t * act_per_token, wv.cols);
    }
  };
}

// The row's activation format decides the preparation; block types against Q8_K / Q8_0 take
// their row's entries.
RowRunner prepare(const KernelTable& k, const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens,
                  MatmulScratch& scratch, ThreadPool* pool) {
  const WeightFormat* f = find_format(w.type);
  if (f == nullptr) no_kernel(w, k);
  switch (f->act) {
    case ActFormat::i8: return prepare_i2s(k, w, x, x_stride, n_tokens, scratch, pool);
    case ActFormat::q8_k: {
      const DotQ8K dot = k.*f->dot_q8_k;
      const GemmQ8K gemm = f->gemm_q8_k != nullptr ? k.*f->gemm_q8_k : nullptr;
      check_entry(k.quantize_q8_k, w, k);
      check_entry(dot, w, k);
      return prepare_blocks<BlockQ8K>(w, w.cols / kQK_K, k.quantize_q8_k, dot, x, x_stride, n_tokens, scratch, pool,
                                      gemm);
    }
    case ActFormat::q8_0: {
      const DotQ8_0 dot = k.*f->dot_q8_0;
      const GemmQ8_0 gemm = f->gemm_q8_0 != nullptr ? k.*f->gemm_q8_0 : nullptr;
      check_entry(k.quantize_q8_0, w, k);
      check_entry(dot, w, k);
      return prepare_blocks<BlockQ8_0>(w, w.cols / kQK8_0, k.quantize_q8_0, dot, x, x_stride, n_tokens, scratch, pool,
                                       gemm);
    }
    case ActFormat::f16: {
      check_entry(k.to_f16, w, k);
      check_entry(k.dot_f16_f16, w, k);
      auto* act = static_cast<uint16_t*>(scratch.get(matmul_scratch_bytes(w, n_tokens)));
      const int64_t cols = w.cols;
      for_tokens(pool, n_tokens, [&](int64_t t) { k.to_f16(x + t * x_stride, cols, act + t * cols); });
      return [&k, act, n_tokens](const WeightView& wv, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
        // 16-bit weights are only 2-aligned in a GGUF file; every element read is a uint16_t.
        const auto* wh = reinterpret_cast<const uint16_t*>(wv.data);
        f16_products(k, wh + r0 * wv.cols, wv.cols, r1 - r0, act, wv.cols, n_tokens, wv.cols, y + r0, y_stride);
      };
    }
    case ActFormat::bf16: {
      check_entry(k.to_bf16, w, k);
      check_entry(k.dot_bf16_bf16, w, k);
      auto dot_row = [dot = k.dot_bf16_bf16](const std::byte* row, const uint16_t* a, int64_t n) {
        return dot(reinterpret_cast<const uint16_t*>(row), a, n);
      };
      return prepare_blocks<uint16_t>(w, w.cols, k.to_bf16, dot_row, x, x_stride, n_tokens, scratch, pool);
    }
    case ActFormat::f32: {
      check_entry(k.dot_f32_f32, w, k);
      return [&k, x, x_stride, n_tokens](const WeightView& wv, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
        const auto* wf = reinterpret_cast<const float*>(wv.data);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = k.dot_f32_f32(wf + r * wv.cols, x + t * x_stride, wv.cols);
      };
    }
  }
  no_kernel(w, k);
}

}  // namespace

void* MatmulScratch::get(size_t bytes) {
  if (buf_.empty() || bytes > buf_.bytes()) {
    buf_.reset();  // the contents need not survive: never hold the old and the new block together
    buf_ = pool_->allocate(tag_, bytes == 0 ? 1 : bytes);
  }
  return buf_.data();
}

void f16_products(const KernelTable& k, const uint16_t* w, int64_t w_stride, int64_t n_rows, const uint16_t* a,
                  int64_t a_stride, int64_t n_tokens, int64_t n, float* y, int64_t y_stride) {
  if (k.gemm_f16 != nullptr) return k.gemm_f16(w, w_stride, n_rows, a, a_stride, n_tokens, n, y, y_stride);
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = k.dot_f16_f16(w + r * w_stride, a + t * a_stride, n);
}

void q8_0_products(const KernelTable& k, const BlockQ8_0* w, int64_t n_rows, const BlockQ8_0* a, int64_t n_tokens,
                   int64_t n, float* y, int64_t y_stride) {
  if (k.gemm_q8_0_q8_0 != nullptr) return k.gemm_q8_0_q8_0(w, n_rows, a, n_tokens, n, y, y_stride);
  const int64_t nb = n / kQK8_0;
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r] = k.dot_q8_0_q8_0(w + r * nb, a + t * nb, n);
}

std::string_view matmul_entry(const KernelTable& k, const WeightView& w) {
  const WeightFormat* f = find_format(w.type);
  if (f == nullptr) return {};
  const FormatEntries e = format_entries(k, *f, w.cols);
  return e.gemm != nullptr ? f->gemm_name : e.dot != nullptr ? f->dot_name : std::string_view();
}

size_t matmul_scratch_bytes(const WeightView& w, int64_t n_tokens) {
  const WeightFormat* f = find_format(w.type);
  if (f == nullptr) return 0;
  const auto n = static_cast<size_t>(n_tokens);
  const size_t per_token = act_bytes(f->act, w.cols);
  // I2_S keeps each token's scale and sum of q after the int8 rows.
  if (f->act == ActFormat::i8) return align_up(n * per_token) + align_up(n * sizeof(float)) + n * sizeof(int32_t);
  return n * per_token;
}

uint64_t weight_bytes(const WeightView& w) {
  const gguf::TypeTraits& t = gguf::traits(w.type);
  return static_cast<uint64_t>(w.rows) * static_cast<uint64_t>(w.cols) / static_cast<uint64_t>(t.block_size) * t.block_bytes;
}

void matmul(const KernelTable& k, const WeightView& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, MatmulScratch& scratch, ThreadPool* pool) {
  BITNET_CHECK(w.cols > 0 && w.rows >= 0 && n_tokens >= 0 && w.data != nullptr);
  if (n_tokens == 0 || w.rows == 0) return;
  static log::Logger& lg = log::get("kernels");
  if (lg.enabled(log::Level::trace))  // a decode step makes hundreds of these calls: nothing more when off
    log::trace(lg, "matmul: {} rows x {} columns of {} by {} tokens, table '{}'", w.rows, w.cols,
               gguf::type_name(w.type), n_tokens, k.name);
  const RowRunner run = prepare(k, w, x, x_stride, n_tokens, scratch, pool);
  for_rows(pool, w.rows, [&](int64_t r0, int64_t r1) { run(w, y, y_stride, r0, r1); });
}

void matmul_rows(const KernelTable& k, const WeightView& w, const float* x, std::span<const int32_t> rows, float* y,
                 MatmulScratch& scratch, ThreadPool* pool) {
  BITNET_CHECK(w.cols > 0 && w.data != nullptr);
  if (rows.empty()) return;
  const RowRunner run = prepare(k, w, x, w.cols, 1, scratch, pool);
  for_rows(pool, static_cast<int64_t>(rows.size()), [&](int64_t b, int64_t e) {
    // Consecutive rows in one call: fewer per-call set-ups.
    for (int64_t i = b; i < e;) {
      int64_t j = i + 1;
      while (j < e && rows[static_cast<size_t>(j)] == rows[static_cast<size_t>(j - 1)] + 1) ++j;
      BITNET_CHECK(rows[static_cast<size_t>(i)] >= 0 && rows[static_cast<size_t>(j - 1)] < w.rows);
      run(w, y, 0, rows[static_cast<size_t>(i)], rows[static_cast<size_t>(j - 1)] + 1);
      i = j;
    }
  });
}

bool matmul_activation(const KernelTable& k, const WeightView& w, const float* x, double* out) {
  const WeightFormat* f = find_format(w.type);
  if (f == nullptr) return false;
  const int64_t n = w.cols;
  switch (f->act) {
    case ActFormat::i8: return false;
    case ActFormat::q8_k: {
      std::vector<BlockQ8K> b(static_cast<size_t>(n / kQK_K));
      k.quantize_q8_k(x, n, b.data());
      for (int64_t i = 0; i < n; ++i)
        out[i] = double{b[static_cast<size_t>(i / kQK_K)].d} * b[static_cast<size_t>(i / kQK_K)].qs[i % kQK_K];
      return true;
    }
    case ActFormat::q8_0: {
      std::vector<BlockQ8_0> b(static_cast<size_t>(n / kQK8_0));
      k.quantize_q8_0(x, n, b.data());
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ8_0& blk = b[static_cast<size_t>(i / kQK8_0)];
        out[i] = double{f16_to_f32(blk.d)} * blk.qs[i % kQK8_0];
      }
      return true;
    }
    case ActFormat::f16: {
      std::vector<uint16_t> h(static_cast<size_t>(n));
      k.to_f16(x, n, h.data());
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[static_cast<size_t>(i)]);
      return true;
    }
    case ActFormat::bf16: {
      std::vector<uint16_t> h(static_cast<size_t>(n));
      k.to_bf16(x, n, h.data());
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(h[static_cast<size_t>(i)]);
      return true;
    }
    case ActFormat::f32:
      for (int64_t i = 0; i < n; ++i) out[i] = x[i];
      return true;
  }
  return false;
}

void matmul_group(const KernelTable& k, std::span<const MatmulTarget> targets, const float* x, int64_t x_stride,
                  int64_t n_tokens, MatmulScratch& scratch, ThreadPool* pool) {
  if (targets.empty() || n_tokens == 0) return;
  const WeightView& first = *targets.front().w;
  bool same = true;
  int64_t total = 0;
  for (const MatmulTarget& t : targets) {
    BITNET_CHECK(t.w->cols > 0 && t.w->rows >= 0 && t.w->data != nullptr);
    same = same && t.w->type == first.type && t.w->cols == first.cols;
    total += t.w->rows;
  }
  if (!same) {
    for (const MatmulTarget& t : targets) matmul(k, *t.w, x, x_stride, n_tokens, t.y, t.y_stride, scratch, pool);
    return;
  }
  const RowRunner run = prepare(k, first, x, x_stride, n_tokens, scratch, pool);
  // Rows are numbered across the targets in order; a thread's range is cut at target borders.
  for_rows(pool, total, [&](int64_t r0, int64_t r1) {
    int64_t base = 0;
    for (const MatmulTarget& t : targets) {
      const int64_t b = std::max(r0, base), e = std::min(r1, base + t.w->rows);
      if (b < e) run(*t.w, t.y, t.y_stride, b - base, e - base);
      base += t.w->rows;
    }
  });
}

}  // namespace bitnet::kernels
