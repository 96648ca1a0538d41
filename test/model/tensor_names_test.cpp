// The tensor name table spells exactly the names GGUF files use (llama.cpp's spelling), and
// parsing a layer tensor's name gives back the tensor it was built from.
#include <gtest/gtest.h>

#include "core/model/tensor_names.hpp"

namespace bitnet::model {
namespace {

TEST(TensorNames, GlobalNames) {
  EXPECT_EQ(tensor_name(Tensor::token_embd), "token_embd.weight");
  EXPECT_EQ(tensor_name(Tensor::output_norm), "output_norm.weight");
  EXPECT_EQ(tensor_name(Tensor::output), "output.weight");
  EXPECT_EQ(tensor_name(Tensor::rope_freqs), "rope_freqs.weight");
  EXPECT_EQ(tensor_name(Tensor::output, 7), "output.weight");  // the layer is ignored
}

TEST(TensorNames, LayerNames) {
  EXPECT_EQ(tensor_name(Tensor::attn_norm, 0), "blk.0.attn_norm.weight");
  EXPECT_EQ(tensor_name(Tensor::attn_q, 3), "blk.3.attn_q.weight");
  EXPECT_EQ(tensor_name(Tensor::attn_output, 12), "blk.12.attn_output.weight");
  EXPECT_EQ(tensor_name(Tensor::attn_sub_norm, 1), "blk.1.attn_sub_norm.weight");
  EXPECT_EQ(tensor_name(Tensor::ffn_sub_norm, 1), "blk.1.ffn_sub_norm.weight");
  EXPECT_EQ(tensor_name(Tensor::ffn_down, 29, "scale"), "blk.29.ffn_down.scale");
}

TEST(TensorNames, TernaryMatricesInFileOrder) {
  std::string joined;
  for (Tensor t : kTernaryMatrices) joined.append(tensor_base_name(t)).append(" ");
  EXPECT_EQ(joined, "attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down ");
}

TEST(TensorNames, ParseRoundTrip) {
  for (const TensorNameInfo& i : kTensorNames) {
    if (!i.per_layer) continue;
    EXPECT_EQ(parse_layer_tensor_name(tensor_name(i.tensor, 41)), i.tensor) << i.base;
    EXPECT_EQ(parse_layer_tensor_name(tensor_name(i.tensor, 41, "scale"), "scale"), i.tensor) << i.base;
  }
}

TEST(TensorNames, ParseRejectsOtherNames) {
  for (const char* name : {"token_embd.weight", "output.weight", "blk.weight", "blk..weight", "blk.0.weight",
                           "blk..attn_q.weight", "blk.x.attn_q.weight", "blk.1a.attn_q.weight", "blk.1.attn_q.scale",
                           "blk.1.attn_q.weightx", "blk.1.attn_qweight", "blk.1.attn_q.x.weight",
                           "blk.1.token_embd.weight", "xblk.1.attn_q.weight", "blk.1.attn.weight"})
    EXPECT_FALSE(parse_layer_tensor_name(name).has_value()) << name;
}

}  // namespace
}  // namespace bitnet::model
