// libFuzzer target: the tokenizers on arbitrary bytes. The first input byte picks a vocabulary
// (LLaMA-2 SPM, LLaMA-3 BPE, GPT-2 BPE, stories260K's SPM: the shared fixtures) and an operation:
// encode the rest as text, decode it as token ids (some past the vocabulary, which must be an
// Error), or check that byte-level BPE round-trips the text exactly (tokenizer.hpp: BPE is lossless).
// BITNET_FUZZ_WRITE_SEEDS=DIR: write seeds from llama.cpp's tokenizer test vectors (.inp/.out) and exit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "core/gguf/reader.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "core/tokenizer/vocab_gguf.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace bitnet;

struct Loaded {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  bool byte_level_bpe = false;
};

std::vector<Loaded>& tokenizers() {
  static std::vector<Loaded> all = [] {
    std::vector<Loaded> v;
    const std::pair<const char*, bool> files[] = {
        {"vocab/ggml-vocab-llama-spm.gguf", false},
        {"vocab/ggml-vocab-llama-bpe.gguf", true},
        {"vocab/ggml-vocab-gpt-2.gguf", true},
        {"models/stories260K.gguf", false},
    };
    for (const auto& [rel, bpe] : files) {
      gguf::GgufFile f = gguf::GgufFile::open(fuzz::fixture_file(rel));
      v.push_back({std::make_unique<tokenizer::Tokenizer>(tokenizer::read_vocab(f)), bpe});
    }
    return v;
  }();
  return all;
}

std::vector<tokenizer::TokenId> ids_from(std::string_view bytes, uint32_t n_tokens) {
  std::vector<tokenizer::TokenId> ids;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    uint32_t raw;
    std::memcpy(&raw, bytes.data() + i, 4);
    // Mostly valid ids, a few just past the end, and the raw value when the top bit is set.
    ids.push_back(raw & 0x80000000u ? raw : raw % (n_tokens + 4));
  }
  return ids;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::filesystem::path& p, uint8_t sel, std::string_view body) {
  std::ofstream out(p, std::ios::binary);
  out.put(static_cast<char>(sel));
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
}

// Every test input as text for each operation, and its expected ids as a decode input.
void write_seeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const char* vocabs[] = {"ggml-vocab-llama-spm", "ggml-vocab-llama-bpe", "ggml-vocab-gpt-2"};
  for (uint8_t k = 0; k < 3; ++k) {
    const std::string inp = read_file(fuzz::fixture_file(std::string("vocab/") + vocabs[k] + ".gguf.inp"));
    std::istringstream out(read_file(fuzz::fixture_file(std::string("vocab/") + vocabs[k] + ".gguf.out")));
    const std::string sep = "\n__ggml_vocab_test__\n";
    size_t n = 0;
    for (size_t pos = 0; pos <= inp.size(); ++n) {
      size_t next = inp.find(sep, pos);
      const std::string text = inp.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
      const std::string base = (dir / (std::string(vocabs[k]) + "-" + std::to_string(n))).string();
      write_file(base + "-encode", k, text);
      write_file(base + "-encode-special", static_cast<uint8_t>(k | 0x30), text);
      write_file(base + "-roundtrip", static_cast<uint8_t>(k | (3 << 2)), text);
      write_file(base + "-stories", 3, text);
      std::string line, ids;
      if (std::getline(out, line)) {
        std::istringstream in(line);
        for (uint32_t id; in >> id;) ids.append(reinterpret_cast<const char*>(&id), 4);
        write_file(base + "-decode", static_cast<uint8_t>(k | (1 << 2)), ids);
      }
      if (next == std::string::npos) break;
      pos = next + sep.size();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bitnet::fuzz::init_target(write_seeds);
  tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t sel = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Loaded& l = tokenizers()[sel % tokenizers().size()];
  const tokenizer::Tokenizer& tok = *l.tok;
  switch ((sel >> 2) & 3) {
    case 0: {
      tokenizer::EncodeOptions eo;
      eo.add_special = sel & 0x10;
      eo.parse_special = sel & 0x20;
      const tokenizer::Encoding e = tok.encode(rest, eo);
      (void)tok.decode(e.ids);
      break;
    }
    case 1: {
      tokenizer::DecodeOptions d;
      d.remove_special = sel & 0x10;
      d.unparse_special = sel & 0x20;
      if (sel & 0x40) d.clean_spaces = (sel & 0x80) != 0;
      try {
        (void)tok.decode(ids_from(rest, tok.n_tokens()), d);
      } catch (const Error&) {  // an id outside the vocabulary
      }
      break;
    }
    case 2:
      for (tokenizer::TokenId id : ids_from(rest, tok.n_tokens()))
        if (id < tok.n_tokens()) (void)tok.token_piece(id, sel & 0x10);
      break;
    case 3: {
      if (!l.byte_level_bpe) break;
      const std::vector<tokenizer::TokenId> ids = tok.encode_ids(rest, false, false);
      tokenizer::DecodeOptions d;
      d.clean_spaces = false;
      if (tok.decode(ids, d) != rest) {
        std::fprintf(stderr, "fuzz_tokenizer: byte-level BPE did not round-trip the input\n");
        std::abort();
      }
      break;
    }
  }
  return 0;
}
