// Packing of ternary values into I2_S, TQ2_0 and TQ1_0 and back. Plain loops over whole groups
// so the compiler can vectorise them; synthetic models push billions of values through here.
#include "core/kernels/ternary.hpp"

#include <cstring>

#include "core/base/error.hpp"
#include "core/kernels/blocks.hpp"

namespace bitnet::kernels {
namespace {

// Element -> stored code: values -1/0/+1 become 0/1/2; codes pass through.
inline uint8_t code(int8_t v) { return static_cast<uint8_t>(v + 1); }
inline uint8_t code(uint8_t c) { return c; }

// Five (or fewer, padded with zero trits) base-3 digits, most significant first, as a fraction
// of 243 scaled to a byte and rounded up: ggml's quantize_row_tq1_0_ref.
template <typename T>
inline uint8_t tq1_byte(const T* t, int64_t stride, int count) {
  unsigned q = 0;
  for (int n = 0; n < 5; ++n) q = q * 3 + (n < count ? code(t[n * stride]) : 0u);
  return static_cast<uint8_t>((q * 256 + 242) / 243);
}

template <typename T>
void i2s(const T* t, int64_t n, uint8_t* out) {
  BITNET_CHECK(n % 128 == 0);
  for (int64_t g = 0; g < n / 128; ++g, t += 128, out += detail::kI2sBlockBytes) {
    for (int m = 0; m < 32; ++m)
      out[m] = static_cast<uint8_t>(code(t[m]) << 6 | code(t[32 + m]) << 4 | code(t[64 + m]) << 2 | code(t[96 + m]));
  }
}

template <typename T>
void tq2_0(const T* t, int64_t n_blocks, const uint16_t* d, uint8_t* out) {
  using L = detail::TQ2_0Layout;
  for (int64_t b = 0; b < n_blocks; ++b, t += 256, out += L::bytes) {
    for (int h = 0; h < 2; ++h) {
      const T* x = t + 128 * h;
      for (int m = 0; m < 32; ++m)
        out[L::qs + 32 * h + m] =
            static_cast<uint8_t>(code(x[m]) | code(x[32 + m]) << 2 | code(x[64 + m]) << 4 | code(x[96 + m]) << 6);
    }
    std::memcpy(out + L::d, &d[b], 2);
  }
}

template <typename T>
void tq1_0(const T* t, int64_t n_blocks, const uint16_t* d, uint8_t* out) {
  using L = detail::TQ1_0Layout;
  for (int64_t b = 0; b < n_blocks; ++b, t += 256, out += L::bytes) {
    for (int m = 0; m < 32; ++m) out[L::qs + m] = tq1_byte(t + m, 32, 5);             // elements m + 32n
    for (int m = 0; m < 16; ++m) out[L::qs + 32 + m] = tq1_byte(t + 160 + m, 16, 5);  // 160 + m + 16n
    for (int j = 0; j < 4; ++j) out[L::qh + j] = tq1_byte(t + 240 + j, 4, 4);         // 240 + j + 4n
    std::memcpy(out + L::d, &d[b], 2);
  }
}

}  // namespace

void pack_i2s(const int8_t* t, int64_t n, uint8_t* out) { i2s(t, n, out); }
void pack_i2s_codes(const uint8_t* c, int64_t n, uint8_t* out) { i2s(c, n, out); }
void pack_tq2_0(const int8_t* t, int64_t n_blocks, const uint16_t* d, uint8_t* out) { tq2_0(t, n_blocks, d, out); }
void pack_tq2_0_codes(const uint8_t* c, int64_t n_blocks, const uint16_t* d, uint8_t* out) { tq2_0(c, n_blocks, d, out); }
void pack_tq1_0(const int8_t* t, int64_t n_blocks, const uint16_t* d, uint8_t* out) { tq1_0(t, n_blocks, d, out); }
void pack_tq1_0_codes(const uint8_t* c, int64_t n_blocks, const uint16_t* d, uint8_t* out) { tq1_0(c, n_blocks, d, out); }

void pack_i2s_tail(float scale, uint8_t* out) {
  std::memset(out, 0, kI2sTailBytes);
  std::memcpy(out, &scale, sizeof scale);
}

void unpack_i2s(const uint8_t* codes, int64_t first, int64_t n, int8_t* t) {
  for (int64_t i = 0; i < n; ++i)
    t[i] = static_cast<int8_t>(detail::kI2sValue[detail::i2s_code(codes, first + i)]);
}

void unpack_tq2_0(const uint8_t* blocks, int64_t n_blocks, int8_t* t, uint16_t* d) {
  using L = detail::TQ2_0Layout;
  for (int64_t b = 0; b < n_blocks; ++b, blocks += L::bytes, t += 256) {
    detail::unpack_tq2_0(blocks, t);
    d[b] = detail::load_u16(blocks + L::d);
  }
}

void unpack_tq1_0(const uint8_t* blocks, int64_t n_blocks, int8_t* t, uint16_t* d) {
  using L = detail::TQ1_0Layout;
  for (int64_t b = 0; b < n_blocks; ++b, blocks += L::bytes, t += 256) {
    detail::unpack_tq1_0(blocks, t);
    d[b] = detail::load_u16(blocks + L::d);
  }
}

void tq1_0_to_tq2_0(const uint8_t* src, int64_t n_blocks, uint8_t* dst) {
  for (int64_t b = 0; b < n_blocks; ++b, src += detail::TQ1_0Layout::bytes, dst += detail::TQ2_0Layout::bytes) {
    int8_t t[256];  // one block
    detail::unpack_tq1_0(src, t);
    uint16_t d;
    std::memcpy(&d, src + detail::TQ1_0Layout::d, sizeof d);
    pack_tq2_0(t, 1, &d, dst);
  }
}

}  // namespace bitnet::kernels
