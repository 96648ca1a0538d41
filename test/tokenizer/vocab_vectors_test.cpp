// llama.cpp's tokenizer test vectors (fixtures/vocab): every input must give exactly the ids of
// the .out file (add_special and parse_special off), and decode back to the input.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tokenizer/load.hpp"

namespace bitnet::tokenizer {
namespace {

struct VectorCase {
  std::string input;
  std::vector<TokenId> expected;
};

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Same parsing as llama.cpp's test-tokenizer-0: inputs separated by the separator line, one
// line of ids per input.
std::vector<VectorCase> read_cases(const std::string& vocab) {
  const std::string inp = read_all(test::fixture_file(vocab + ".inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < inp.size();) {
    size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(inp.substr(pos));
      break;
    }
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::istringstream out(read_all(test::fixture_file(vocab + ".out")));
  std::vector<VectorCase> cases;
  std::string line;
  for (size_t i = 0; std::getline(out, line); ++i) {
    std::istringstream ids(line);
    VectorCase c;
    c.input = i < inputs.size() ? inputs[i] : std::string();
    for (TokenId id; ids >> id;) c.expected.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), inputs.size()) << vocab << ": .inp and .out disagree on the number of tests";
  return cases;
}

class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, EveryLineGivesTheExpectedIds) {
  const std::string vocab = "vocab/" + GetParam();
  const Tokenizer& tok = test::fixture_tokenizer(vocab);
  auto cases = read_cases(vocab);
  ASSERT_GE(cases.size(), 40u);
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto ids = tok.encode_ids(c.input, /*add_special=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, c.expected) << vocab << " line " << i + 1 << " input '" << c.input << "'";
    passed += ids == c.expected;
  }
  std::printf("%s: %zu/%zu vector lines pass\n", GetParam().c_str(), passed, cases.size());
}

TEST_P(VocabVectors, DecodeRestoresTheInput) {
  const std::string vocab = "vocab/" + GetParam();
  const Tokenizer& tok = test::fixture_tokenizer(vocab);
  const bool bpe = tok.vocab().kind == VocabKind::bpe;
  for (const auto& c : read_cases(vocab)) {
    // Decode the expected ids, so this holds even if encoding were wrong.
    std::string raw = tok.decode(c.expected, {.clean_spaces = false});
    EXPECT_EQ(raw, c.input) << vocab << ": ids " << fmt::format("{}", fmt::join(c.expected, " "));
    // llama.cpp's own detokenizer: SPM strips the added leading space; BPE also applies its
    // clean-up of " ," " 's" and the like, so the input comes back only up to that.
    std::string dec = tok.decode(c.expected);
    EXPECT_EQ(dec, bpe ? clean_up_spaces(c.input) : c.input) << vocab << ": '" << c.input << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VocabVectors,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf",
                                           "ggml-vocab-gpt-2.gguf"),
                         [](const auto& param_info) {
                           std::string n = param_info.param.substr(11, param_info.param.size() - 11 - 5);
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace bitnet::tokenizer
