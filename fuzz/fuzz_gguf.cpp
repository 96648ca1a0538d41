// libFuzzer target: arbitrary bytes as a GGUF file through everything that reads one: the
// container (GgufFile::open and its typed getters), the vocabulary (read_vocab, a Tokenizer built
// from it) and the model (Model::load, an embedding row). bitnet::Error is the only acceptable
// way to refuse a file; any other exception, a sanitizer report or a crash is a finding.
// BITNET_FUZZ_WRITE_SEEDS=DIR: write small complete models there (seeds) and exit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/gguf/reader.hpp"
#include "core/gguf/writer.hpp"
#include "core/model/model.hpp"
#include "core/model/synthetic.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace bitnet;

// Micro versions of the synthetic models: every tensor type and both tokenizer kinds, a few KB
// to a few hundred KB each, so mutations reach the model and vocabulary checks quickly.
void write_seeds(const std::filesystem::path& dir) {
  struct Micro {
    const char* name;
    const char* arch;
    gguf::GgmlType type;
    model::SyntheticTokenizer tok;
    uint32_t n_vocab, n_embd, n_ff;
  };
  const Micro micro[] = {
      {"micro-f16-spm", "bitnet", gguf::GgmlType::F16, model::SyntheticTokenizer::spm, 320, 32, 64},
      {"micro-f32-bpe", "bitnet-b1.58", gguf::GgmlType::F32, model::SyntheticTokenizer::bpe, 320, 32, 64},
      {"micro-i2_s-spm", "bitnet-b1.58", gguf::GgmlType::I2_S, model::SyntheticTokenizer::spm, 320, 128, 128},
      {"micro-tq2_0-bpe", "bitnet", gguf::GgmlType::TQ2_0, model::SyntheticTokenizer::bpe, 320, 256, 256},
      {"micro-tq1_0-spm", "bitnet-25", gguf::GgmlType::TQ1_0, model::SyntheticTokenizer::spm, 320, 256, 256},
  };
  std::filesystem::create_directories(dir);
  for (const Micro& m : micro) {
    model::SyntheticSpec s;
    s.shape = m.name;
    s.arch = m.arch;
    s.type = m.type;
    s.tokenizer = m.tok;
    s.n_vocab = m.n_vocab;
    s.n_ctx = 64;
    s.n_embd = m.n_embd;
    s.n_layer = 1;
    s.n_ff = m.n_ff;
    s.n_head = 2;
    s.n_head_kv = 1;
    const std::filesystem::path p = dir / (std::string(m.name) + ".gguf");
    try {
      gguf::GgufWriter w;
      model::add_synthetic_model(s, w);
      w.write(p);
      model::Model::load(p);  // a seed the loader refuses would only teach the fuzzer the error path
    } catch (const Error& e) {
      std::fprintf(stderr, "fuzz_gguf: cannot make seed %s: %s\n", m.name, e.what());
      std::exit(1);
    }
  }
}

void exercise(const std::filesystem::path& path) {
  gguf::GgufFile f = gguf::GgufFile::open(path);
  // Every value through the typed getters (a wrong type must be an Error, never UB).
  for (const gguf::KeyValue& kv : f.kvs()) {
    try {
      if (const gguf::ArrayView* a = f.get_array(kv.key); a && a->elem_type != gguf::ValueType::string && a->count > 0)
        (void)a->element<uint8_t>(a->count - 1);
      (void)f.get_uint(kv.key);
    } catch (const Error&) {
    }
  }
  for (const gguf::TensorInfo& t : f.tensors()) (void)f.tensor_data(t);
  try {
    tokenizer::Tokenizer tok(tokenizer::read_vocab(f));
    const std::vector<tokenizer::TokenId> ids = tok.encode_ids("Hello world <s> 123", true, true);
    (void)tok.decode(ids);
  } catch (const Error&) {
  }
  std::unique_ptr<model::Model> m = model::Model::load(path);
  std::vector<float> row(m->config().n_embd);
  m->embedding(0, row.data());
  m->embedding(static_cast<int32_t>(m->config().n_vocab - 1), row.data());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bitnet::fuzz::init_target(write_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bitnet::fuzz::MemFile file;
  file.assign(data, size);
  try {
    exercise(file.path());
  } catch (const bitnet::Error&) {
  }
  return 0;
}
