// The weight-format rows (see formats.hpp). Entries are member pointers into KernelTable, so a
// row names what a table must provide without naming any table.
#include "core/kernels/formats.hpp"

#include <algorithm>

#include "core/kernels/blocks.hpp"
#include "core/kernels/ternary.hpp"

namespace bitnet::kernels {
namespace {

using G = gguf::GgmlType;
using namespace detail;

constexpr WeightFormat kFormats[] = {
    {.type = G::F32, .act = ActFormat::f32, .dot_name = "dot_f32_f32"},
    {.type = G::F16, .act = ActFormat::f16, .dot_name = "dot_f16_f16", .gemm_name = "gemm_f16"},
    {.type = G::BF16, .act = ActFormat::bf16, .dot_name = "dot_bf16_bf16"},
    {.type = G::Q4_0,
     .act = ActFormat::q8_0,
     .dot_name = "dot_q4_0_q8_0",
     .gemm_name = "gemm_q4_0_q8_0",
     .dot_q8_0 = &KernelTable::dot_q4_0_q8_0,
     .gemm_q8_0 = &KernelTable::gemm_q4_0_q8_0,
     .dequant_block = dequant_q4_0},
    {.type = G::Q8_0,
     .act = ActFormat::q8_0,
     .dot_name = "dot_q8_0_q8_0",
     .gemm_name = "gemm_q8_0_q8_0",
     .dot_q8_0 = &KernelTable::dot_q8_0_q8_0,
     .gemm_q8_0 = &KernelTable::gemm_q8_0_q8_0,
     .dequant_block = dequant_q8_0},
    {.type = G::Q6_K,
     .act = ActFormat::q8_k,
     .dot_name = "dot_q6_k_q8_k",
     .gemm_name = "gemm_q6_k_q8_k",
     .dot_q8_k = &KernelTable::dot_q6_k_q8_k,
     .gemm_q8_k = &KernelTable::gemm_q6_k_q8_k,
     .dequant_block = dequant_q6_k},
    {.type = G::TQ1_0,
     .act = ActFormat::q8_k,
     .dot_name = "dot_tq1_0_q8_k",
     .dot_q8_k = &KernelTable::dot_tq1_0_q8_k,
     .dequant_block = dequant_tq1_0,
     .repack_to = G::TQ2_0,
     .repack = tq1_0_to_tq2_0},
    {.type = G::TQ2_0,
     .act = ActFormat::q8_k,
     .dot_name = "dot_tq2_0_q8_k",
     .gemm_name = "gemm_tq2_0_q8_k",
     .dot_q8_k = &KernelTable::dot_tq2_0_q8_k,
     .gemm_q8_k = &KernelTable::gemm_tq2_0_q8_k,
     .dequant_block = dequant_tq2_0},
    {.type = G::I2_S, .act = ActFormat::i8, .dot_name = "dot_i2s_i8", .gemm_name = "gemm_i2s_i8"},
};

template <typename F>
const void* untyped(F f) {
  return reinterpret_cast<const void*>(f);
}

}  // namespace

std::span<const WeightFormat> weight_formats() { return kFormats; }

const WeightFormat* find_format(gguf::GgmlType type) {
  const auto* it = std::find_if(std::begin(kFormats), std::end(kFormats), [&](const WeightFormat& f) { return f.type == type; });
  return it == std::end(kFormats) ? nullptr : it;
}

std::string supported_type_names() {
  std::string s;
  for (const WeightFormat& f : kFormats) {
    if (!s.empty()) s += ", ";
    s += gguf::type_name(f.type);
  }
  return s;
}

FormatEntries format_entries(const KernelTable& k, const WeightFormat& f, int64_t cols) {
  switch (f.act) {
    case ActFormat::i8:
      return {cols % kQK_I2S == 0 ? untyped(k.gemm_i2s_i8) : nullptr, untyped(k.dot_i2s_i8)};
    case ActFormat::q8_k:
      return {f.gemm_q8_k != nullptr ? untyped(k.*f.gemm_q8_k) : nullptr, untyped(k.*f.dot_q8_k)};
    case ActFormat::q8_0:
      return {f.gemm_q8_0 != nullptr ? untyped(k.*f.gemm_q8_0) : nullptr, untyped(k.*f.dot_q8_0)};
    case ActFormat::f16: return {untyped(k.gemm_f16), untyped(k.dot_f16_f16)};
    case ActFormat::bf16: return {nullptr, untyped(k.dot_bf16_bf16)};
    case ActFormat::f32: return {nullptr, untyped(k.dot_f32_f32)};
  }
  return {};
}

size_t act_bytes(ActFormat act, int64_t cols) {
  const auto n = static_cast<size_t>(cols);
  switch (act) {
    case ActFormat::i8: return n;
    case ActFormat::q8_k: return n / kQK_K * sizeof(BlockQ8K);
    case ActFormat::q8_0: return n / kQK8_0 * sizeof(BlockQ8_0);
    case ActFormat::f16:
    case ActFormat::bf16: return n * sizeof(uint16_t);
    case ActFormat::f32: return 0;
  }
  return 0;
}

std::string_view quantizer_name(ActFormat act) {
  switch (act) {
    case ActFormat::i8: return "quantize_i8";
    case ActFormat::q8_k: return "quantize_q8_k";
    case ActFormat::q8_0: return "quantize_q8_0";
    case ActFormat::f16: return "to_f16";
    case ActFormat::bf16: return "to_bf16";
    case ActFormat::f32: return "";
  }
  return "";
}

void quantize_activations(const KernelTable& k, ActFormat act, const float* x, int64_t cols, void* out) {
  switch (act) {
    case ActFormat::i8: {
      float scale = 0;
      int32_t sum = 0;
      return k.quantize_i8(x, cols, static_cast<int8_t*>(out), &scale, &sum);
    }
    case ActFormat::q8_k: return k.quantize_q8_k(x, cols, static_cast<BlockQ8K*>(out));
    case ActFormat::q8_0: return k.quantize_q8_0(x, cols, static_cast<BlockQ8_0*>(out));
    case ActFormat::f16: return k.to_f16(x, cols, static_cast<uint16_t*>(out));
    case ActFormat::bf16: return k.to_bf16(x, cols, static_cast<uint16_t*>(out));
    case ActFormat::f32: return;
  }
}

}  // namespace bitnet::kernels
