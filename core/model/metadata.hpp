// GGUF metadata -> typed model facts: architecture and hyper-parameters (one table of keys),
// tokenizer summary, and the tensor set each architecture needs. Every check throws
// bitnet::Error(invalid_input) with one line naming the file, the key or tensor, the value and
// the limit (PEERS.md 4.3 items 9, 18, 19).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/gguf/reader.hpp"

namespace bitnet::model {

enum class Arch { llama, bitnet, bitnet_b158 };
enum class FfnAct { silu, relu2 };
enum class RopeType { norm, neox };

struct ModelConfig {
  std::string arch_name;     // as in the file (bitnet-25 and bitnet-b1.58 both map to bitnet_b158)
  Arch arch = Arch::llama;
  std::string name;          // general.name, may be empty
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_ff = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t n_rot = 0;
  float rms_eps = 0;
  float rope_freq_base = 10000.0f;
  RopeType rope = RopeType::norm;
  FfnAct ffn_act = FfnAct::silu;
  bool sub_norms = false;    // bitnet archs: attn_sub_norm and ffn_sub_norm

  uint32_t head_dim() const { return n_embd / n_head; }
  uint32_t n_embd_kv() const { return head_dim() * n_head_kv; }
};

// Accepted general.architecture values, for messages ("llama, bitnet, bitnet-25, bitnet-b1.58").
std::string supported_architectures();
bool is_supported_architecture(std::string_view name);

// Reads and validates the hyper-parameters. n_vocab comes from the tokenizer's token list
// (and must agree with {arch}.vocab_size when both exist).
ModelConfig read_config(const gguf::GgufFile& f);

struct TokenizerInfo {
  std::string model;         // tokenizer.ggml.model: "llama" (SPM) or "gpt2" (byte-level BPE)
  std::string pre;           // tokenizer.ggml.pre, "" when absent
  uint32_t n_tokens = 0;
  uint64_t n_merges = 0;
  std::optional<uint32_t> bos, eos, unk, eot, pad, sep;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  bool has_chat_template = false;
  uint32_t n_control = 0;    // tokens of type CONTROL
  uint32_t n_byte = 0;       // tokens of type BYTE (<0xXX>)
};

// Validates tokenizer.* keys (types, counts, ids in range). Throws on the first problem.
TokenizerInfo read_tokenizer_info(const gguf::GgufFile& f);

// Which tensors the architecture needs, with their expected shapes.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> ne;
  bool required = true;
};
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c);

struct TensorCheck {
  std::vector<std::string> unused;        // tensors in the file the architecture does not use
  std::vector<std::string> not_runnable;  // "name (TYPE)" for types the engine cannot run
  bool tied_output = false;               // no output.weight: logits use token_embd
};
// Every required tensor present with the expected shape; throws on the first problem.
TensorCheck check_tensors(const gguf::GgufFile& f, const ModelConfig& c);

}  // namespace bitnet::model
