// Binding GGUF tensors to typed weight views, with load-time checks.
#include "model.hpp"

#include <cmath>
#include <filesystem>
#include <cstring>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/kernels/formats.hpp"
#include "core/model/tensor_names.hpp"

namespace bitnet::model {

bool is_matmul_type(gguf::GgmlType t) { return kernels::find_format(t) != nullptr; }

namespace {

template <typename... Args>
[[noreturn]] void bad(const gguf::GgufFile& f, fmt::format_string<Args...> fm, Args&&... args) {
  throw Error(ErrorCode::invalid_input, f.where() + fmt::format(fm, std::forward<Args>(args)...));
}

kernels::WeightView weight(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  BITNET_CHECK(t != nullptr);  // check_tensors() already required it
  if (!is_matmul_type(t->type))
    bad(f, "tensor '{}' has type {}, which this engine cannot multiply (supported: {})", name,
        gguf::type_name(t->type), kernels::supported_type_names());
  kernels::WeightView w;
  w.type = t->type;
  w.cols = t->ne[0];
  w.rows = t->ne[1] * t->ne[2] * t->ne[3];
  w.data = f.tensor_data(*t).data();
  if (t->type == gguf::GgmlType::I2_S) {
    w.i2s_scale = kernels::i2s_tensor_scale(w.data, t->n_elements());
    if (!std::isfinite(w.i2s_scale))
      bad(f, "I2_S tensor '{}' has a non-finite scale ({})", name, w.i2s_scale);
  }
  return w;
}

std::vector<float> vector_f32(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  BITNET_CHECK(t != nullptr);
  if (t->type != gguf::GgmlType::F32 && t->type != gguf::GgmlType::F16 && t->type != gguf::GgmlType::BF16)
    bad(f, "norm tensor '{}' has type {}; expected F32, F16 or BF16", name, gguf::type_name(t->type));
  std::vector<float> v(static_cast<size_t>(t->n_elements()));
  kernels::dequantize(t->type, f.tensor_data(*t).data(), 0, t->n_elements(), v.data());
  return v;
}

float optional_scale(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) return 1.0f;
  std::vector<float> v = vector_f32(f, name);
  if (v.size() != 1 || !std::isfinite(v[0])) bad(f, "scale tensor '{}' must hold one finite number", name);
  return v[0];
}

// Where each of the seven ternary matrices (kTernaryMatrices) and its optional scale go.
struct MatrixMembers {
  Tensor t;
  kernels::WeightView LayerWeights::*w;
  float LayerWeights::*scale;
};
constexpr MatrixMembers kMatrixMembers[] = {
    {Tensor::attn_q, &LayerWeights::wq, &LayerWeights::wq_scale},
    {Tensor::attn_k, &LayerWeights::wk, &LayerWeights::wk_scale},
    {Tensor::attn_v, &LayerWeights::wv, &LayerWeights::wv_scale},
    {Tensor::attn_output, &LayerWeights::wo, &LayerWeights::wo_scale},
    {Tensor::ffn_gate, &LayerWeights::gate, &LayerWeights::gate_scale},
    {Tensor::ffn_up, &LayerWeights::up, &LayerWeights::up_scale},
    {Tensor::ffn_down, &LayerWeights::down, &LayerWeights::down_scale},
};
}  // namespace

std::unique_ptr<Model> Model::load(const std::filesystem::path& path) {
  static log::Logger& lg = log::get("model");
  uint64_t file_bytes = 0;
  {
    std::error_code ec;
    file_bytes = std::filesystem::file_size(path, ec);
  }
  log::Phase map(lg, "map and parse " + path.filename().string(), file_bytes);
  std::unique_ptr<Model> m(new Model(gguf::GgufFile::open(path)));
  const double map_s = map.finish();
  log::Phase validate(lg, "validate and bind " + path.filename().string());
  const gguf::GgufFile& f = m->file_;
  m->config_ = read_config(f);
  const ModelConfig& c = m->config_;
  TensorCheck tc = check_tensors(f, c);
  m->tied_output_ = tc.tied_output;

  m->token_embd_ = weight(f, tensor_name(Tensor::token_embd));
  m->output_ = tc.tied_output ? m->token_embd_ : weight(f, tensor_name(Tensor::output));
  m->output_norm_ = vector_f32(f, tensor_name(Tensor::output_norm));
  m->layers_.resize(c.n_layer);
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = m->layers_[l];
    auto n = [&](Tensor t) { return tensor_name(t, l); };
    auto s = [&](Tensor t) { return tensor_name(t, l, "scale"); };
    L.attn_norm = vector_f32(f, n(Tensor::attn_norm));
    L.ffn_norm = vector_f32(f, n(Tensor::ffn_norm));
    if (c.sub_norms) {
      L.attn_sub_norm = vector_f32(f, n(Tensor::attn_sub_norm));
      L.ffn_sub_norm = vector_f32(f, n(Tensor::ffn_sub_norm));
    }
    for (const MatrixMembers& mat : kMatrixMembers) {
      L.*mat.w = weight(f, n(mat.t));
      if (c.arch == Arch::bitnet) L.*mat.scale = optional_scale(f, s(mat.t));
    }
  }
  const double validate_s = validate.finish();
  log::info(lg, "{}: {} ({}), {} layers, n_embd {}, vocab {}, weights {}", path.string(), c.arch_name, c.name,
            c.n_layer, c.n_embd, c.n_vocab, gguf::type_name(m->layers_.empty() ? m->token_embd_.type : m->layers_[0].wq.type));
  // llama.cpp's "load time" line, in parts.
  log::info(lg, "load: {:.1f} MiB in {:.1f} ms (map and parse {:.1f} ms, validate and bind {:.1f} ms)",
            static_cast<double>(file_bytes) / (1 << 20), (map_s + validate_s) * 1e3, map_s * 1e3, validate_s * 1e3);
  return m;
}

void Model::embedding(TokenId token, float* out) const {
  BITNET_CHECK(token >= 0 && token < static_cast<int32_t>(config_.n_vocab));
  const int64_t n = config_.n_embd;
  kernels::dequantize(token_embd_.type, token_embd_.data, static_cast<int64_t>(token) * n, n, out, token_embd_.i2s_scale);
}

}  // namespace bitnet::model
