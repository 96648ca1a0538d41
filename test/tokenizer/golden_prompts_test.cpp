// The prompts of the recorded reference runs (fixtures/golden/*.json): tokenizing them with the
// model's vocabulary, BOS as the model asks and special tokens parsed (what llama.cpp and
// bitnet.cpp did), must give the recorded prompt_ids.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include <simdjson.h>

#include "tokenizer/load.hpp"

namespace bitnet::tokenizer {
namespace {

struct Golden {
  std::string file;    // golden/<model>.<engine>[.pN].json
  std::string model;   // models/<model>.gguf
  std::string prompt;  // fixtures/README.md
  std::string pre;     // pre-tokenizer the engine used ("" = the file's)
};

void PrintTo(const Golden& g, std::ostream* os) { *os << g.file; }

// bitnet.cpp tokenized the BPE model, which has no 'pre' key, with llama.cpp's 'default' chain.
const std::vector<Golden> kGoldens = {
    {"stories260K.llama.cpp.p1.json", "stories260K", "Once upon a time", ""},
    {"stories260K.llama.cpp.p2.json", "stories260K", "Lily wanted to", ""},
    {"bitnet-tiny-f16.llama.cpp.json", "bitnet-tiny-f16", "once upon a time there was a quick brown fox", ""},
    {"bitnet-tiny-tq2_0.llama.cpp.json", "bitnet-tiny-tq2_0", "once upon a time there was a quick brown fox", ""},
    {"bitnet-tiny-tq2_0-embf16.llama.cpp.json", "bitnet-tiny-tq2_0-embf16", "once upon a time there was a quick brown fox", ""},
    {"bitnet-tiny-tq1_0.llama.cpp.json", "bitnet-tiny-tq1_0", "once upon a time there was a quick brown fox", ""},
    {"bitnet-tiny-f16.bitnet.cpp.json", "bitnet-tiny-f16", "once upon a time there was a quick brown fox", ""},
    {"bitnet-tiny-i2_s.bitnet.cpp.json", "bitnet-tiny-i2_s", "once upon a time there was a quick brown fox", ""},
    {"bitnet-b158-tiny-f16.bitnet.cpp.json", "bitnet-b158-tiny-f16", "once upon a time there was a quick brown fox", ""},
    {"bitnet-b158-tiny-i2_s.bitnet.cpp.json", "bitnet-b158-tiny-i2_s", "once upon a time there was a quick brown fox", ""},
    {"bitnet-b158-tiny-bpe-f16.bitnet.cpp.json", "bitnet-b158-tiny-bpe-f16", "once upon a time there was a quick brown fox",
     "default"},
    {"bitnet-b158-tiny-bpe-i2_s.bitnet.cpp.json", "bitnet-b158-tiny-bpe-i2_s",
     "once upon a time there was a quick brown fox", "default"},
};

std::vector<TokenId> recorded_prompt_ids(const std::string& file) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::fixture_file("golden/" + file).string());
  std::vector<TokenId> ids;
  for (simdjson::dom::element e : doc["prompt_ids"].get_array()) ids.push_back(static_cast<TokenId>(e.get_uint64().value()));
  return ids;
}

class GoldenPrompts : public ::testing::TestWithParam<Golden> {};

TEST_P(GoldenPrompts, MatchRecordedPromptIds) {
  const Golden& g = GetParam();
  const Tokenizer& tok = test::fixture_tokenizer("models/" + g.model + ".gguf", g.pre);
  std::vector<TokenId> expected = recorded_prompt_ids(g.file);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(tok.encode_ids(g.prompt, tok.vocab().add_bos, /*parse_special=*/true), expected) << g.file;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenPrompts, ::testing::ValuesIn(kGoldens), [](const auto& param_info) {
  std::string n = param_info.param.file.substr(0, param_info.param.file.size() - 5);
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

// Every golden file is covered above, so a new recording cannot slip past this test.
TEST(GoldenPrompts, EveryGoldenFileIsListed) {
  std::filesystem::path dir = test::fixture_file("golden");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".json") continue;
    bool listed = false;
    for (const auto& g : kGoldens) listed = listed || g.file == name;
    EXPECT_TRUE(listed) << name << " is not checked";
  }
}

// Without the 'pre' key this engine follows Hugging Face (LLaMA-3 rules, whole-word tokens
// skip merging), which on this synthetic vocabulary keeps " upon" whole where bitnet.cpp's
// 'default' chain merges it as " up" + "on".
TEST(GoldenPrompts, TinyBpeDefaultsToLlama3Rules) {
  const Tokenizer& hf = test::fixture_tokenizer("models/bitnet-b158-tiny-bpe-f16.gguf");
  EXPECT_EQ(hf.vocab().pre, PreTokenizer::llama3);
  EXPECT_EQ(hf.encode_ids("once upon a time there was a quick brown fox", true, true),
            (std::vector<TokenId>{510, 267, 271, 390, 277, 282, 287, 390, 294, 303, 310}));
}

}  // namespace
}  // namespace bitnet::tokenizer
