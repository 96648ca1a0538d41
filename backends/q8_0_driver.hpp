// The Q8_0 / Q4_0 x Q8_0 dot loop shared by the AVX2 and AVX-512 tables. Each ISA's translation
// unit includes this inside its own namespace, after defining kGroup and, per weight format F
// (Q8Weights, Q4Weights: kBytes, the block size), terms<F>(w, a, t) which writes the kGroup
// blocks' float(isum) * (d_w * d_a), so every copy is compiled with its table's flags. No include
// guard on purpose.

namespace {

// The reference's float steps: each block's term is added to the sum in block order, from +0.
// Groups of kGroup blocks go through terms<F> as they are; the last, short group through
// zero-filled copies, of which only the real blocks' terms are added.
template <typename F>
float dot_blocks(const void* w, const kernels::BlockQ8_0* a, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kernels::kQK8_0;
  alignas(64) float t[kGroup];
  float sum = 0.0f;
  int64_t i = 0;
  for (; i + kGroup <= nb; i += kGroup) {
    terms<F>(b + i * F::kBytes, a + i, t);
    for (float v : t) sum += v;
  }
  if (i < nb) {
    const auto left = static_cast<size_t>(nb - i);
    uint8_t wt[kGroup * F::kBytes] = {};
    kernels::BlockQ8_0 at[kGroup] = {};
    std::memcpy(wt, b + i * F::kBytes, left * F::kBytes);
    std::memcpy(at, a + i, left * sizeof(kernels::BlockQ8_0));
    terms<F>(wt, at, t);
    for (size_t k = 0; k < left; ++k) sum += t[k];
  }
  return sum;
}

}  // namespace

float dot_q8_0_q8_0(const void* w, const kernels::BlockQ8_0* a, int64_t n) { return dot_blocks<Q8Weights>(w, a, n); }

float dot_q4_0_q8_0(const void* w, const kernels::BlockQ8_0* a, int64_t n) { return dot_blocks<Q4Weights>(w, a, n); }
