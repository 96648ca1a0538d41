// Taps: named points of the forward pass, with llama.cpp's names for its intermediate tensors
// (its cb(cur, "attn_norm", il)), where an observer may read the activations. `crossval --layers`
// compares them between engines to say in which layer and operation two runs part
// (docs/crossval.md, "Where two engines part"). The float oracle calls the same observer at the
// same names.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace bitnet::infer {

// Rows [n_tokens][width] of f32 (row t at data + t * stride), row 0 being position pos0.
struct Tap {
  std::string_view name;  // one of kLayerTaps or kFinalTaps
  int32_t layer = -1;     // -1 for the taps after the last layer
  uint32_t pos0 = 0;
  int64_t n_tokens = 0;
  int64_t width = 0;
  const float* data = nullptr;
  int64_t stride = 0;
  std::span<const float> row(int64_t t) const { return {data + t * stride, static_cast<size_t>(width)}; }
};

// Called between operations on the thread that runs the forward pass; the rows are valid only
// during the call. Unset: the forward pass does no extra work.
using TapObserver = std::function<void(const Tap&)>;

// Each layer's taps, in the order they come. attn_sub_norm and ffn_sub_norm exist only for the
// bitnet archs. Qcur and Kcur are after RoPE; attn_out, ffn_gate, ffn_up and ffn_out include
// arch bitnet's per-matrix scale; ffn_gate and ffn_up are before the activation; kqv_out is the
// heads' attention output before attn_sub_norm; ffn_inp and l_out are the residual stream after
// the attention and the FFN are added.
inline constexpr std::array<std::string_view, 14> kLayerTaps = {
    "attn_norm", "Qcur",     "Kcur",   "Vcur",         "kqv_out", "attn_sub_norm", "attn_out",
    "ffn_inp",   "ffn_norm", "ffn_gate", "ffn_up", "ffn_sub_norm", "ffn_out", "l_out"};
// After the last layer: the final norm and the logits.
inline constexpr std::array<std::string_view, 2> kFinalTaps = {"result_norm", "result_output"};

// Test-only damage, to prove that crossval --layers finds a fault where it is: right after
// computing tap `name` of `layer`, `delta` is added to the first value of every token's row, and
// the pass goes on from the damaged values. Inactive when name is empty.
struct TapFault {
  std::string name;
  int32_t layer = -1;
  float delta = 0;
  bool active() const { return !name.empty(); }
  bool hits(std::string_view n, int32_t l) const { return active() && n == name && l == layer; }
};

}  // namespace bitnet::infer
