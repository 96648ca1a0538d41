// Output screening (screen.hpp); the bound is derived in docs/output-screening.md.
#include "core/kernels/screen.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>

#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "core/kernels/formats.hpp"

namespace bitnet::kernels {
namespace {

// Rounded up to the next float: the stored norms may only overstate.
float up(double v) {
  const auto f = static_cast<float>(v);
  return static_cast<double>(f) >= v ? f : std::nextafter(f, std::numeric_limits<float>::infinity());
}

// Every exact product matmul computes is a sum of at most n weight x activation terms, each
// term formed with a few roundings (F16: none; Q6_K/Q8_K: the block scales' products) and
// summed in some order: its float value is within (n + kExtraRoundings) * 2^-24 * sum |terms|
// of the exact sum, and sum |terms| <= ||w|| ||a|| (Cauchy-Schwarz). The stored rows are also
// the dequantized floats, one rounding away from the exact weights: one more.
constexpr double kExtraRoundings = 64;

// F16 rows are converted through a table: the scalar conversion was a fifth of building the
// screen of a 128256-row matrix.
const std::vector<float>& f16_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t h = 0; h < 65536; ++h) v[h] = f16_to_f32(static_cast<uint16_t>(h));
    return v;
  }();
  return t;
}

// Round to nearest even for |x| < 2^22 without a libm call or a branch (the core has no SSE4.1
// rounding): x + 1.5 * 2^23 lies in [2^23, 2^24), where floats are the integers.
inline float round_even(float x) {
  constexpr float kMagic = 12582912.0f;
  return (x + kMagic) - kMagic;
}

// Eight independent float lanes: loops over them vectorize (plain SSE2 in the core), where one
// running sum, or a double one, would not; the stored norms allow for float summation below.
constexpr int kLanes = 8;

}  // namespace

// Rounds one row to int8 and returns its numbers. The norms are summed in float lanes, so each is
// raised by the relative error of those sums (n / kLanes + kLanes additions, 2^-24 each, plus the
// squares' roundings), and ||e|| also by the rounding of e = w - s q itself (at most
// 2^-23 (|w_i| + |e_i|) per element).
OutputScreen::RowNumbers OutputScreen::quantize_row(const float* v, int64_t n, int8_t* q) {
  const int64_t body = n / kLanes * kLanes;
  float m[kLanes] = {}, bad[kLanes] = {};
  for (int64_t i = 0; i < body; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      m[l] = std::max(m[l], std::fabs(v[i + l]));
      bad[l] += v[i + l] * 0.0f;  // NaN once any element is NaN or infinite
    }
  float amax = 0, nonfinite = 0;
  for (int l = 0; l < kLanes; ++l) {
    amax = std::max(amax, m[l]);
    nonfinite += bad[l];
  }
  for (int64_t i = body; i < n; ++i) {
    amax = std::max(amax, std::fabs(v[i]));
    nonfinite += v[i] * 0.0f;
  }
  if (nonfinite != 0.0f || amax == 0) {  // NaN != 0
    // A row with NaN or infinity is never screened out (infinite error); a zero row is exact.
    std::fill_n(q, n, int8_t{0});
    const float e = amax == 0 && nonfinite == 0.0f ? 0.0f : std::numeric_limits<float>::infinity();
    return {0.0f, 0.0f, e, e};
  }
  // Any rounding of w / s works: the bound uses the error of the q actually stored.
  const float s = amax / 127.0f, inv = 127.0f / amax;
  float qq[kLanes] = {}, ee[kLanes] = {}, ww[kLanes] = {};
  auto one = [&](int64_t i, int l) {
    const float x = v[i], qi = std::min(std::max(round_even(x * inv), -127.0f), 127.0f), e = x - s * qi;
    q[i] = static_cast<int8_t>(qi);
    qq[l] += qi * qi;
    ee[l] += e * e;
    ww[l] += x * x;
  };
  for (int64_t i = 0; i < body; i += kLanes)
    for (int l = 0; l < kLanes; ++l) one(i + l, l);
  for (int64_t i = body; i < n; ++i) one(i, 0);
  double sq = 0, se = 0, sw = 0;
  for (int l = 0; l < kLanes; ++l) {
    sq += qq[l];
    se += ee[l];
    sw += ww[l];
  }
  const double rel = 1 + (static_cast<double>(n) / kLanes + kLanes + 4) * 0x1p-24;  // float sums and squares
  const double w_norm = std::sqrt(sw * rel) * (1 + 1e-12);
  // |e_i| <= 0.51 s (q rounds w / s, the clamp only trims the largest), so ||e|| < sqrt(n) s.
  const double e_norm = (std::sqrt(se * rel) + 0x1p-23 * (w_norm + std::sqrt(static_cast<double>(n)) * s)) * (1 + 1e-12);
  return {s, up(std::sqrt(sq * rel) * (1 + 1e-12)), up(e_norm), up(w_norm)};
}

bool OutputScreen::supports(const KernelTable& k, const WeightView& w) {
  const WeightFormat* f = find_format(w.type);
  return k.gemv_i8_i16 != nullptr && f != nullptr && f->act != ActFormat::i8 && w.rows > 0 && w.cols > 0 &&
         w.cols <= (int64_t{1} << 31) / (127 * 127);  // room for 127-step activations in int32
}

bool OutputScreen::saves_bytes(const WeightView& w) {
  const gguf::TypeTraits& t = gguf::traits(w.type);
  return t.block_bytes >= 2 * static_cast<uint64_t>(t.block_size);
}

uint64_t OutputScreen::planned_bytes(const WeightView& w) {
  const auto rows = static_cast<uint64_t>(w.rows), cols = static_cast<uint64_t>(w.cols);
  return pool_block_bytes(rows * cols) + pool_block_bytes(rows * sizeof(RowNumbers));
}

OutputScreen::OutputScreen(const KernelTable& k, const WeightView& w, MemoryPool& memory, ThreadPool* pool)
    : k_(k), w_(w) {
  BITNET_CHECK(supports(k, w));
  const int64_t n = w.cols;
  q_ = PoolArray<int8_t>(memory, kTagOutputScreen, static_cast<size_t>(w.rows * n));
  row_ = PoolArray<RowNumbers>(memory, kTagOutputScreen, static_cast<size_t>(w.rows));
  advise_huge_pages(q_.data(), q_.size());  // read in full every step, as the weights are
  parallel_ranges(pool, w.rows, 64, [&](int64_t r0, int64_t r1) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      if (w.type == gguf::GgmlType::F16) {
        const std::vector<float>& t = f16_table();
        const std::byte* src = w.data + r * n * 2;
        for (int64_t i = 0; i < n; ++i) {
          uint16_t h;
          std::memcpy(&h, src + 2 * i, 2);  // 16-bit weights are only 2-aligned in a file
          v[static_cast<size_t>(i)] = t[h];
        }
      } else {
        dequantize(w.type, w.data, r * n, n, v.data(), w.i2s_scale);
      }
      int8_t* q = q_.data() + r * n;
      row_[static_cast<size_t>(r)] = quantize_row(v.data(), n, q);
    }
  });
}

int64_t OutputScreen::logits(const float* x, int32_t top_k, std::span<const int32_t> exact, float* y, Work& work,
                             MatmulScratch& scratch, ThreadPool* pool) const {
  BITNET_CHECK(top_k >= 1);
  const int64_t n = w_.cols, rows = w_.rows;
  auto all_rows = [&] {
    matmul(k_, w_, x, n, 1, y, rows, scratch, pool);
    return rows;
  };
  work.act.resize(static_cast<size_t>(n));
  BITNET_CHECK(matmul_activation(k_, w_, x, work.act.data()));  // supports() left out I2_S
  double amax = 0, hh = 0;
  for (double a : work.act) {
    if (!std::isfinite(a)) return all_rows();
    amax = std::max(amax, std::fabs(a));
    hh += a * a;
  }
  if (amax == 0 || exact.size() + static_cast<size_t>(top_k) >= static_cast<size_t>(rows)) return all_rows();
  const double h_norm = std::sqrt(hh) * (1 + 1e-12);

  // The activation in int16 steps of d, as fine as int32 sums of n products allow.
  const int64_t pmax = std::min<int64_t>(32767, ((int64_t{1} << 31) - 1) / (127 * n));
  const double d = amax / static_cast<double>(pmax);
  work.act16.resize(static_cast<size_t>(n));
  double ff = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = work.act[static_cast<size_t>(i)];
    const double p = std::clamp(std::nearbyint(a / d), -static_cast<double>(pmax), static_cast<double>(pmax));
    work.act16[static_cast<size_t>(i)] = static_cast<int16_t>(p);
    ff += (a - d * p) * (a - d * p);
  }
  // The double arithmetic of this function: a relative 1e-9 of every bound's terms, generously.
  const double f_norm = std::sqrt(ff) * (1 + 1e-12) + 1e-300;
  const double sum_err = (static_cast<double>(n) + kExtraRoundings) * 0x1p-24;

  work.forced.assign(static_cast<size_t>(rows), 0);
  for (int32_t r : exact) {
    BITNET_CHECK(r >= 0 && r < rows);
    work.forced[static_cast<size_t>(r)] = 1;
  }
  // Lower and upper bounds of every row's exact logit; each thread keeps the top_k largest lower
  // bounds of its rows that are not forced, merged after.
  work.isum.resize(static_cast<size_t>(rows));
  work.bounds.resize(2 * static_cast<size_t>(rows));  // [lower, upper] per row
  std::vector<double> best;
  std::mutex mu;
  parallel_ranges(pool, rows, 256, [&](int64_t r0, int64_t r1) {
    k_.gemv_i8_i16(q_.data() + r0 * n, r1 - r0, work.act16.data(), n, work.isum.data() + r0);
    std::priority_queue<double, std::vector<double>, std::greater<>> top;  // min-heap of size <= top_k
    for (int64_t r = r0; r < r1; ++r) {
      const RowNumbers& num = row_[static_cast<size_t>(r)];
      const double est = double{num.scale} * d * work.isum[static_cast<size_t>(r)];
      const double bound = double{num.scale} * num.q_norm * f_norm + double{num.e_norm} * h_norm +
                           sum_err * num.w_norm * h_norm;
      const double slack = bound + 1e-9 * (std::fabs(est) + bound) + 1e-30;
      double lo = est - slack, hi = est + slack;
      if (double{num.w_norm} * h_norm >= 0x1p126) {
        // The float sums may overflow (|partial sums| <= ||w|| ||a|| is no longer below the
        // largest float), which the summation bound does not cover: always computed.
        lo = -std::numeric_limits<double>::infinity();
        hi = std::numeric_limits<double>::infinity();
      }
      work.bounds[2 * static_cast<size_t>(r)] = lo;
      work.bounds[2 * static_cast<size_t>(r) + 1] = hi;
      if (work.forced[static_cast<size_t>(r)] != 0) continue;
      if (static_cast<int32_t>(top.size()) < top_k) top.push(lo);
      else if (lo > top.top()) {
        top.pop();
        top.push(lo);
      }
    }
    std::lock_guard lock(mu);
    for (; !top.empty(); top.pop()) best.push_back(top.top());
  });
  // The k-th largest lower bound among the rows that are not forced: at least k rows lie at or
  // above it, so a row whose upper bound is below it is not among the k largest.
  BITNET_CHECK(best.size() >= static_cast<size_t>(top_k));
  std::nth_element(best.begin(), best.begin() + (top_k - 1), best.end(), std::greater<>());
  const double kth = best[static_cast<size_t>(top_k - 1)];
  work.rows.clear();
  for (int64_t r = 0; r < rows; ++r)
    if (work.forced[static_cast<size_t>(r)] != 0 || !(work.bounds[2 * static_cast<size_t>(r) + 1] < kth))
      work.rows.push_back(static_cast<int32_t>(r));
  std::fill_n(y, rows, -std::numeric_limits<float>::infinity());
  matmul_rows(k_, w_, x, work.rows, y, scratch, pool);
  return static_cast<int64_t>(work.rows.size());
}

}  // namespace bitnet::kernels
