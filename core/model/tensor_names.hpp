// GGUF tensor names, spelled in one table. The loader, the shape check, the synthetic model
// writer and the converter all name the same tensors; building every name from this table keeps
// them from drifting apart (a typo becomes a compile error, not a "missing tensor" at load time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bitnet::model {

enum class Tensor {
  // One per file.
  token_embd,
  output_norm,
  output,
  rope_freqs,
  // One per layer, "blk.N.<name>".
  attn_norm,
  attn_q,
  attn_k,
  attn_v,
  attn_output,
  attn_sub_norm,
  ffn_norm,
  ffn_gate,
  ffn_up,
  ffn_down,
  ffn_sub_norm,
};

struct TensorNameInfo {
  Tensor tensor;
  std::string_view base;  // the name without "blk.N." and ".weight"
  bool per_layer;
};

// In enum order, so a Tensor indexes it.
inline constexpr TensorNameInfo kTensorNames[] = {
    {Tensor::token_embd, "token_embd", false},
    {Tensor::output_norm, "output_norm", false},
    {Tensor::output, "output", false},
    {Tensor::rope_freqs, "rope_freqs", false},
    {Tensor::attn_norm, "attn_norm", true},
    {Tensor::attn_q, "attn_q", true},
    {Tensor::attn_k, "attn_k", true},
    {Tensor::attn_v, "attn_v", true},
    {Tensor::attn_output, "attn_output", true},
    {Tensor::attn_sub_norm, "attn_sub_norm", true},
    {Tensor::ffn_norm, "ffn_norm", true},
    {Tensor::ffn_gate, "ffn_gate", true},
    {Tensor::ffn_up, "ffn_up", true},
    {Tensor::ffn_down, "ffn_down", true},
    {Tensor::ffn_sub_norm, "ffn_sub_norm", true},
};

constexpr const TensorNameInfo& tensor_info(Tensor t) { return kTensorNames[static_cast<size_t>(t)]; }
constexpr std::string_view tensor_base_name(Tensor t) { return tensor_info(t).base; }

// The seven matrices of a layer that BitNet stores ternary, in file order (also the order of
// their optional ".scale" multipliers).
inline constexpr Tensor kTernaryMatrices[] = {Tensor::attn_q,   Tensor::attn_k, Tensor::attn_v,  Tensor::attn_output,
                                              Tensor::ffn_gate, Tensor::ffn_up, Tensor::ffn_down};

// "blk.3.attn_q.weight", or with suffix "scale" "blk.3.attn_q.scale". One-per-file tensors
// ignore the layer: "token_embd.weight".
std::string tensor_name(Tensor t, uint32_t layer, std::string_view suffix = "weight");
// A one-per-file tensor's name, "token_embd.weight"; t must not be a per-layer tensor.
std::string tensor_name(Tensor t);

// The per-layer tensor a name like "blk.N.<name>.<suffix>" (N decimal digits) refers to, or
// nullopt for any other name.
std::optional<Tensor> parse_layer_tensor_name(std::string_view name, std::string_view suffix = "weight");

}  // namespace bitnet::model
