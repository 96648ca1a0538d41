// A loaded model: the mapped GGUF file, its validated config, and typed views of every weight.
// Immutable after load and safe to share between sessions. Everything that can be wrong with a
// file is found here, at load, never mid-generation.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/base/token_id.hpp"
#include "core/gguf/reader.hpp"
#include "core/kernels/kernels.hpp"
#include "core/model/metadata.hpp"

namespace bitnet::model {

struct LayerWeights {
  std::vector<float> attn_norm;      // [n_embd]
  std::vector<float> attn_sub_norm;  // [n_embd], bitnet archs only
  std::vector<float> ffn_norm;       // [n_embd]
  std::vector<float> ffn_sub_norm;   // [n_ff], bitnet archs only
  kernels::WeightView wq, wk, wv, wo, gate, up, down;
  // Optional per-matrix output multipliers (arch `bitnet`, pre-TQ converters); 1 when absent.
  float wq_scale = 1, wk_scale = 1, wv_scale = 1, wo_scale = 1, gate_scale = 1, up_scale = 1, down_scale = 1;
};

class Model {
 public:
  // Maps, validates (container, metadata, tensor set and shapes, kernel support for every weight
  // type) and binds. Throws bitnet::Error(invalid_input) naming the file and the problem.
  static std::unique_ptr<Model> load(const std::filesystem::path& path);

  const ModelConfig& config() const { return config_; }
  const gguf::GgufFile& file() const { return file_; }
  const LayerWeights& layer(uint32_t i) const { return layers_[i]; }
  const kernels::WeightView& token_embd() const { return token_embd_; }
  const kernels::WeightView& output() const { return output_; }  // token_embd when tied
  const std::vector<float>& output_norm() const { return output_norm_; }
  bool tied_output() const { return tied_output_; }

  // One embedding row as f32 (dequantized from the stored type). out: [n_embd].
  void embedding(TokenId token, float* out) const;

 private:
  explicit Model(gguf::GgufFile f) : file_(std::move(f)) {}
  gguf::GgufFile file_;
  ModelConfig config_;
  std::vector<LayerWeights> layers_;
  kernels::WeightView token_embd_, output_;
  std::vector<float> output_norm_;
  bool tied_output_ = false;
};

// Whether matmul can run weights of this type (a dot product exists for it).
bool is_matmul_type(gguf::GgmlType t);

}  // namespace bitnet::model
