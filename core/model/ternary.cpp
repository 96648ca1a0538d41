// Ternary weight tensors: exact reading from every weight type, exactness checks per target,
// encoding, and the absmean requantizer.
#include "core/model/ternary.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/base/error.hpp"
#include "core/kernels/kernels.hpp"
#include "core/kernels/ternary.hpp"

namespace bitnet::model {
namespace {

using gguf::GgmlType;
constexpr int64_t kBlock = 256;

bool f16_exact(float s) { return kernels::f16_to_f32(kernels::f32_to_f16(s)) == s; }

bool any_nonzero(const TernaryWeights& w, int64_t first, int64_t n) {
  const int8_t* p = w.t.data() + first;
  return std::any_of(p, p + n, [](int8_t v) { return v != 0; });
}

// Ternary values and block scales of a TQ tensor.
std::variant<TernaryWeights, std::string> read_tq(GgmlType type, const uint8_t* data, int64_t n) {
  if (n % kBlock != 0) return fmt::format("{} elements do not fill whole {} blocks", n, gguf::type_name(type));
  TernaryWeights w;
  w.group = kBlock;
  w.t.resize(static_cast<size_t>(n));
  std::vector<uint16_t> d(static_cast<size_t>(n / kBlock));
  if (type == GgmlType::TQ2_0) kernels::unpack_tq2_0(data, n / kBlock, w.t.data(), d.data());
  else kernels::unpack_tq1_0(data, n / kBlock, w.t.data(), d.data());
  if (auto it = std::find(w.t.begin(), w.t.end(), int8_t{2}); it != w.t.end())
    return fmt::format("element {} has TQ2_0 code 3 (value 2d), which no ternary quantizer writes", it - w.t.begin());
  w.scale.resize(d.size());
  for (size_t b = 0; b < d.size(); ++b) {
    w.scale[b] = kernels::f16_to_f32(d[b]);
    if (!std::isfinite(w.scale[b])) return fmt::format("block {} has a non-finite scale ({})", b, w.scale[b]);
  }
  return w;
}

// One scale shared by all blocks that hold a nonzero value, if there is one: the I2_S scale of a
// TQ tensor. Blocks whose d is negative are folded in by flipping their values (see encode).
std::variant<float, std::string> common_scale(const TernaryWeights& w) {
  if (w.group == w.size()) return w.scale.empty() ? 0.0f : w.scale[0];
  float s = 0;
  int64_t first = -1;
  for (size_t b = 0; b < w.scale.size(); ++b) {
    const auto at = static_cast<int64_t>(b) * w.group;
    if (!any_nonzero(w, at, w.group)) continue;
    const float a = std::fabs(w.scale[b]);
    if (first < 0) {
      s = a;
      first = static_cast<int64_t>(b);
    } else if (a != s) {
      return fmt::format("its blocks have different scales (|d| = {} in block {}, {} in block {}), and I2_S holds "
                         "one scale per tensor", s, first, a, b);
    }
  }
  return s;
}

}  // namespace

bool is_ternary_target(GgmlType type) {
  return type == GgmlType::I2_S || type == GgmlType::TQ1_0 || type == GgmlType::TQ2_0 || type == GgmlType::F16 ||
         type == GgmlType::F32;
}

uint32_t file_type_of(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::TQ1_0: return 36;
    case GgmlType::TQ2_0: return 37;
    case GgmlType::I2_S: return 40;  // bitnet.cpp's LLAMA_FTYPE_MOSTLY_I2_S
    default: BITNET_CHECK(false); return 0;
  }
}

std::vector<float> dequantize_tensor(GgmlType type, std::span<const std::byte> data, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  const float s = type == GgmlType::I2_S ? kernels::i2s_tensor_scale(data.data(), n) : 1.0f;
  kernels::dequantize(type, data.data(), 0, n, out.data(), s);
  return out;
}

std::variant<TernaryWeights, std::string> read_ternary(GgmlType type, std::span<const std::byte> data, int64_t n) {
  const auto* u8 = reinterpret_cast<const uint8_t*>(data.data());
  if (type == GgmlType::TQ1_0 || type == GgmlType::TQ2_0) return read_tq(type, u8, n);
  TernaryWeights w;
  w.group = n;
  w.t.resize(static_cast<size_t>(n));
  if (type == GgmlType::I2_S) {
    const float s = kernels::i2s_tensor_scale(data.data(), n);
    if (!std::isfinite(s)) return fmt::format("its I2_S scale is {}", s);
    kernels::unpack_i2s(u8, 0, n, w.t.data());
    w.scale = {s};
    return w;
  }
  const std::vector<float> x = dequantize_tensor(type, data, n);
  float s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return fmt::format("element {} is {}", i, x[i]);
    s = std::max(s, std::fabs(x[i]));
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == 0) w.t[i] = 0;
    else if (x[i] == s) w.t[i] = 1;
    else if (x[i] == -s) w.t[i] = -1;
    else return fmt::format("element {} is {}, not 0 or +-{} (the largest magnitude)", i, x[i], s);
  }
  w.scale = {s};
  return w;
}

TernaryWeights requantize_absmean(std::span<const float> x) {
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) throw make_error(ErrorCode::invalid_input, "element {} is {}", i, x[i]);
    sum += std::fabs(static_cast<double>(x[i]));
  }
  const double mean = x.empty() ? 0.0 : sum / static_cast<double>(x.size());
  const float s = kernels::f16_to_f32(kernels::f32_to_f16(static_cast<float>(std::max(mean, 1e-5))));
  TernaryWeights w;
  w.group = static_cast<int64_t>(x.size());
  w.scale = {s};
  w.t.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) w.t[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] / s), -1.0f, 1.0f));
  return w;
}

std::string representable(const TernaryWeights& w, GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return {};
    case GgmlType::I2_S: {
      auto s = common_scale(w);
      return std::holds_alternative<std::string>(s) ? std::get<std::string>(s) : std::string();
    }
    case GgmlType::F16:
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0:
      for (size_t g = 0; g < w.scale.size(); ++g) {
        if (f16_exact(w.scale[g]) || !any_nonzero(w, static_cast<int64_t>(g) * w.group, w.group)) continue;
        return fmt::format("its {}scale {} is not representable in F16, the precision of {} {}",
                           w.group == w.size() ? "" : fmt::format("block {} ", g), w.scale[g], gguf::type_name(type),
                           type == GgmlType::F16 ? "values" : "block scales");
      }
      return {};
    default:
      return fmt::format("{} is not a ternary target type", gguf::type_name(type));
  }
}

void round_scales_to_f16(TernaryWeights& w) {
  for (float& s : w.scale) s = kernels::f16_to_f32(kernels::f32_to_f16(s));
}

std::string ternary_shape_problem(GgmlType type, std::span<const int64_t> ne) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  const std::string shape = fmt::format("[{}]", fmt::join(ne, ", "));
  if (type == GgmlType::I2_S && n % 128 != 0)
    return fmt::format("I2_S packs a tensor in groups of 128 elements; shape {} has {} elements", shape, n);
  if ((type == GgmlType::TQ1_0 || type == GgmlType::TQ2_0) && (ne.empty() || ne[0] % kBlock != 0))
    return fmt::format("{} stores rows in blocks of 256 elements; shape {} has rows of {}", gguf::type_name(type),
                       shape, ne.empty() ? 0 : ne[0]);
  return {};
}

std::vector<std::byte> encode_ternary(const TernaryWeights& w, GgmlType type) {
  BITNET_CHECK(representable(w, type).empty());
  const int64_t n = w.size();
  const auto n_sz = static_cast<size_t>(n);
  std::vector<std::byte> out;
  auto value = [&](int64_t i) { return static_cast<float>(w.t[static_cast<size_t>(i)]) * w.scale[static_cast<size_t>(i / w.group)]; };
  switch (type) {
    case GgmlType::F32: {
      out.resize(n_sz * 4);
      for (int64_t i = 0; i < n; ++i) {
        const float v = value(i);
        std::memcpy(out.data() + i * 4, &v, 4);
      }
      return out;
    }
    case GgmlType::F16: {
      out.resize(n_sz * 2);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = kernels::f32_to_f16(value(i));
        std::memcpy(out.data() + i * 2, &h, 2);
      }
      return out;
    }
    case GgmlType::I2_S: {
      // One positive scale; blocks (or a tensor) with a negative scale carry flipped values.
      const float s = std::get<float>(common_scale(w));
      std::vector<int8_t> t(w.t);
      for (size_t g = 0; g < w.scale.size(); ++g)
        if (w.scale[g] < 0)
          for (size_t i = g * static_cast<size_t>(w.group); i < (g + 1) * static_cast<size_t>(w.group); ++i)
            t[i] = static_cast<int8_t>(-t[i]);
      out.resize(n_sz / 4 + kernels::kI2sTailBytes);
      auto* u8 = reinterpret_cast<uint8_t*>(out.data());
      kernels::pack_i2s(t.data(), n, u8);
      kernels::pack_i2s_tail(std::fabs(s), u8 + n / 4);
      return out;
    }
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0: {
      BITNET_CHECK(n % kBlock == 0);
      const int64_t n_blocks = n / kBlock;
      std::vector<int8_t> t(w.t);
      std::vector<uint16_t> d(static_cast<size_t>(n_blocks));
      for (int64_t b = 0; b < n_blocks; ++b) {
        if (w.group != n) {
          d[static_cast<size_t>(b)] = kernels::f32_to_f16(w.scale[static_cast<size_t>(b)]);
          continue;
        }
        // One tensor scale: what ggml's quantizer makes of the dequantized values, d = amax of
        // the block (0 for an all-zero block) and values relative to a positive d.
        const float s = w.scale[0];
        d[static_cast<size_t>(b)] = any_nonzero(w, b * kBlock, kBlock) ? kernels::f32_to_f16(std::fabs(s)) : 0;
        if (s < 0)
          for (int64_t i = b * kBlock; i < (b + 1) * kBlock; ++i) t[static_cast<size_t>(i)] = static_cast<int8_t>(-t[static_cast<size_t>(i)]);
      }
      const size_t bytes = type == GgmlType::TQ2_0 ? 66 : 54;
      out.resize(static_cast<size_t>(n_blocks) * bytes);
      auto* u8 = reinterpret_cast<uint8_t*>(out.data());
      if (type == GgmlType::TQ2_0) kernels::pack_tq2_0(t.data(), n_blocks, d.data(), u8);
      else kernels::pack_tq1_0(t.data(), n_blocks, d.data(), u8);
      return out;
    }
    default:
      BITNET_CHECK(false);
      return out;
  }
}

}  // namespace bitnet::model
