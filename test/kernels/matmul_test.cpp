// matmul for every weight type: bit-equal to a hand loop of quantize + dot + fix-up over tokens
// with strides, and close to the plain float product sum_k w*x within the activation
// quantization error bound derived per scheme below.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/error.hpp"
#include "core/kernels/kernels.hpp"
#include "kernels/pack.hpp"

namespace bitnet::kernels {
namespace {

using gguf::GgmlType;
const KernelTable& K = reference_table();

struct Matrix {
  GgmlType type = GgmlType::F32;
  int64_t cols = 0, rows = 0;
  test::Bytes bytes;
  float i2s_scale = 1.0f;
  WeightView view() const { return {type, cols, rows, bytes.data(), i2s_scale}; }
};

test::Bytes as_bytes(const void* p, size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  return test::Bytes(b, b + n);
}

Matrix make_matrix(GgmlType type, int64_t cols, int64_t rows, std::mt19937& rng) {
  const auto n = static_cast<size_t>(cols * rows);
  Matrix m;
  m.type = type;
  m.cols = cols;
  m.rows = rows;
  const auto ternary = test::random_ints(rng, n, -1, 1);
  switch (type) {
    case GgmlType::I2_S:
      m.i2s_scale = 0.0123f;
      m.bytes = test::pack_i2s(ternary, m.i2s_scale);
      break;
    case GgmlType::TQ1_0: m.bytes = test::pack_tq1_0(ternary, test::random_f16(rng, n / 256, 0.01f, 0.02f)); break;
    case GgmlType::TQ2_0: m.bytes = test::pack_tq2_0(ternary, test::random_f16(rng, n / 256, 0.01f, 0.02f)); break;
    case GgmlType::Q6_K:
      m.bytes = test::pack_q6_k(test::random_ints(rng, n, -32, 31), test::random_ints(rng, n / 16, -128, 127),
                                test::random_f16(rng, n / 256, 1e-4f, 1e-3f));
      break;
    case GgmlType::Q8_0:
      m.bytes = test::pack_q8_0(test::random_ints(rng, n, -127, 127), test::random_f16(rng, n / 32, 1e-3f, 1e-2f));
      break;
    case GgmlType::Q4_0:
      m.bytes = test::pack_q4_0(test::random_ints(rng, n, -8, 7), test::random_f16(rng, n / 32, 1e-2f, 1e-1f));
      break;
    case GgmlType::F32: {
      const auto f = test::random_floats(rng, n, -1.0f, 1.0f);
      m.bytes = as_bytes(f.data(), n * 4);
      break;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      const auto f = test::random_floats(rng, n, -1.0f, 1.0f);
      std::vector<uint16_t> h(n);
      (type == GgmlType::F16 ? K.to_f16 : K.to_bf16)(f.data(), static_cast<int64_t>(n), h.data());
      m.bytes = as_bytes(h.data(), n * 2);
      break;
    }
    default: ADD_FAILURE();
  }
  return m;
}

size_t row_bytes(const Matrix& m) {
  const auto& t = gguf::traits(m.type);
  return static_cast<size_t>(m.cols / t.block_size) * t.block_bytes;
}

// The per-token loop written out by hand from the kernel table.
float hand_loop(const Matrix& m, const float* x, int64_t r) {
  const int64_t c = m.cols;
  const std::byte* row = m.type == GgmlType::I2_S ? nullptr : m.bytes.data() + static_cast<size_t>(r) * row_bytes(m);
  switch (m.type) {
    case GgmlType::I2_S: {
      std::vector<int8_t> q(static_cast<size_t>(c));
      float s;
      int32_t sum;
      K.quantize_i8(x, c, q.data(), &s, &sum);
      const int32_t dot = K.dot_i2s_i8(reinterpret_cast<const uint8_t*>(m.bytes.data()), r * c, q.data(), c);
      return static_cast<float>(dot - sum) / s * m.i2s_scale;
    }
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0:
    case GgmlType::Q6_K: {
      std::vector<BlockQ8K> a(static_cast<size_t>(c / 256));
      K.quantize_q8_k(x, c, a.data());
      auto dot = m.type == GgmlType::TQ1_0 ? K.dot_tq1_0_q8_k
                 : m.type == GgmlType::TQ2_0 ? K.dot_tq2_0_q8_k
                                             : K.dot_q6_k_q8_k;
      return dot(row, a.data(), c);
    }
    case GgmlType::Q8_0:
    case GgmlType::Q4_0: {
      std::vector<BlockQ8_0> a(static_cast<size_t>(c / 32));
      K.quantize_q8_0(x, c, a.data());
      return (m.type == GgmlType::Q8_0 ? K.dot_q8_0_q8_0 : K.dot_q4_0_q8_0)(row, a.data(), c);
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      const bool half = m.type == GgmlType::F16;
      std::vector<uint16_t> a(static_cast<size_t>(c));
      (half ? K.to_f16 : K.to_bf16)(x, c, a.data());
      return (half ? K.dot_f16_f16 : K.dot_bf16_bf16)(reinterpret_cast<const uint16_t*>(row), a.data(), c);
    }
    case GgmlType::F32: return K.dot_f32_f32(reinterpret_cast<const float*>(row), x, c);
    default: ADD_FAILURE(); return 0;
  }
}

// Per-element bound on |reconstructed activation - x|, derived from each scheme's rounding:
// - I2_S: q = round(x*s), half a step 1/s; the weight scale is applied after, so it is folded in.
// - Q8_K: q*d with |d| = amax/127 per 256: half a step |d|.
// - Q8_0: q chosen with the f32 d = amax/127, stored d16 = f16(d) moves q*d by <= 127*|d - d16|.
// - F16 / BF16: one rounding, relative 2^-11 / 2^-8 (+ the smallest subnormal step for f16).
// Each gets a relative 1e-4 of a step for the float rounding of x*s before the integer rounding.
std::vector<double> activation_error(const Matrix& m, const float* x) {
  const auto c = static_cast<size_t>(m.cols);
  std::vector<double> e(c);
  auto block_amax = [&](size_t start, size_t len) {
    double a = 0;
    for (size_t k = start; k < start + len; ++k) a = std::max(a, std::fabs(static_cast<double>(x[k])));
    return a;
  };
  switch (m.type) {
    case GgmlType::I2_S: {
      const double s = static_cast<float>(127.0 / std::max(block_amax(0, c), 1e-5));
      for (auto& v : e) v = (0.5 + 1e-4) / s;
      break;
    }
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0:
    case GgmlType::Q6_K:
      for (size_t k = 0; k < c; ++k) e[k] = block_amax(k / 256 * 256, 256) / 127 * (0.5 + 1e-4);
      break;
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
      for (size_t k = 0; k < c; ++k) {
        const float d = static_cast<float>(block_amax(k / 32 * 32, 32)) / 127.0f;
        const double d16 = f16_to_f32(f32_to_f16(d));
        e[k] = d * (0.5 + 1e-4) + 127 * std::fabs(d - d16);
      }
      break;
    case GgmlType::F16:
      for (size_t k = 0; k < c; ++k) e[k] = std::fabs(x[k]) * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
      break;
    case GgmlType::BF16:
      for (size_t k = 0; k < c; ++k) e[k] = std::fabs(x[k]) * std::ldexp(1.0, -8);
      break;
    default: break;  // F32: activations used as they are
  }
  return e;
}

void check_matmul(GgmlType type, int64_t cols, int64_t rows, uint32_t seed) {
  SCOPED_TRACE(std::string(gguf::type_name(type)) + " cols=" + std::to_string(cols));
  std::mt19937 rng(seed);
  const Matrix m = make_matrix(type, cols, rows, rng);
  const int64_t n_tokens = 3, x_stride = cols + 3, y_stride = rows + 2;
  auto x = test::random_floats(rng, static_cast<size_t>(x_stride * n_tokens), -2.0f, 2.0f);
  for (int64_t k = 0; k < cols; ++k) x[static_cast<size_t>(x_stride + k)] *= 1e-3f;  // token 1: small values
  constexpr float kSentinel = -777.0f;
  std::vector<float> y(static_cast<size_t>(y_stride * n_tokens), kSentinel);
  MatmulScratch scratch;
  matmul(K, m.view(), x.data(), x_stride, n_tokens, y.data(), y_stride, scratch);

  std::vector<float> w(static_cast<size_t>(cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x.data() + t * x_stride;
    const auto err = activation_error(m, xt);
    for (int64_t r = 0; r < rows; ++r) {
      const float got = y[static_cast<size_t>(t * y_stride + r)];
      EXPECT_EQ(got, hand_loop(m, xt, r)) << "t=" << t << " r=" << r;
      // Float reference: dequantized row times the unquantized activations, in double.
      dequantize(type, m.bytes.data(), r * cols, cols, w.data(), m.i2s_scale);
      double exact = 0, bound = 0, abs_sum = 0;
      for (int64_t k = 0; k < cols; ++k) {
        exact += static_cast<double>(w[k]) * xt[k];
        bound += std::fabs(static_cast<double>(w[k])) * err[static_cast<size_t>(k)];
        abs_sum += std::fabs(static_cast<double>(w[k])) * (std::fabs(xt[k]) + err[static_cast<size_t>(k)]);
      }
      bound += test::dot_tolerance(cols / 32 + 2, abs_sum);
      EXPECT_NEAR(static_cast<double>(got), exact, bound) << "t=" << t << " r=" << r;
    }
    for (int64_t r = rows; r < y_stride; ++r) EXPECT_EQ(y[static_cast<size_t>(t * y_stride + r)], kSentinel);
  }
}

TEST(Matmul, I2s) {
  for (int64_t cols : {256, 384, 768, 160}) check_matmul(GgmlType::I2_S, cols, 5, 41);  // 160: rows start mid-group
}
TEST(Matmul, Tq1_0) {
  for (int64_t cols : {256, 768}) check_matmul(GgmlType::TQ1_0, cols, 5, 42);
}
TEST(Matmul, Tq2_0) {
  for (int64_t cols : {256, 768}) check_matmul(GgmlType::TQ2_0, cols, 5, 43);
}
TEST(Matmul, Q6K) { check_matmul(GgmlType::Q6_K, 512, 4, 44); }
TEST(Matmul, Q8_0) { check_matmul(GgmlType::Q8_0, 96, 5, 45); }
TEST(Matmul, Q4_0) { check_matmul(GgmlType::Q4_0, 96, 5, 46); }
TEST(Matmul, F16) { check_matmul(GgmlType::F16, 70, 5, 47); }
TEST(Matmul, Bf16) { check_matmul(GgmlType::BF16, 70, 5, 48); }
TEST(Matmul, F32) { check_matmul(GgmlType::F32, 70, 5, 49); }

TEST(Matmul, TypeWithoutKernelIsAnError) {
  test::Bytes data(20 * 4);
  std::vector<float> x(32), y(4);
  MatmulScratch scratch;
  const WeightView w{GgmlType::Q4_1, 32, 4, data.data(), 1.0f};
  try {
    matmul(K, w, x.data(), 32, 1, y.data(), 4, scratch);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    EXPECT_NE(std::string(e.what()).find("Q4_1"), std::string::npos) << e.what();
  }
  // A table with the entry missing is refused the same way.
  KernelTable partial = K;
  partial.dot_tq2_0_q8_k = nullptr;
  const WeightView tq{GgmlType::TQ2_0, 256, 1, data.data(), 1.0f};
  std::vector<float> x256(256);
  EXPECT_THROW(matmul(partial, tq, x256.data(), 256, 1, y.data(), 1, scratch), Error);
}

TEST(MatmulScratch, AlignedGrowsAndMoves) {
  MatmulScratch s;
  void* a = s.get(10);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  EXPECT_EQ(s.get(5), a);  // big enough already: reused
  void* b = s.get(100000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % 64, 0u);
  static_cast<char*>(b)[99999] = 1;  // the whole range is writable (ASan checks)
  MatmulScratch moved(std::move(s));
  EXPECT_EQ(moved.get(100), b);
}

}  // namespace
}  // namespace bitnet::kernels
