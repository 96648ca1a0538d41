// `bitnet tokenize` end to end: the built binary's stdout for ids, --pieces, --json and --decode
// against known vectors (llama.cpp's vocab .out files and the golden prompts), and exit codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "support/run.hpp"
#include "support/fixtures.hpp"
#include "support/scoped.hpp"

namespace bitnet::test {
namespace {

std::string spm() { return fixture_file("vocab/ggml-vocab-llama-spm.gguf").string(); }
std::string llama3() { return fixture_file("vocab/ggml-vocab-llama-bpe.gguf").string(); }

TEST(TokenizeCli, IdsWithBosByDefault) {
  RunResult r = run_bitnet({"tokenize", "-m", spm(), "Hello world"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 15043, 3186]\n");
  r = run_bitnet({"tokenize", "-m", spm(), "--ids", "--no-bos", "Hello world"});
  EXPECT_EQ(r.out, "[15043, 3186]\n");
}

TEST(TokenizeCli, VectorFileLines) {
  // First lines of the .out files (tokenized without BOS).
  RunResult r = run_bitnet({"tokenize", "-m", spm(), "--no-bos", "ied 4 \xC2\xBD months"});
  EXPECT_EQ(r.out, "[474, 287, 29871, 29946, 29871, 30226, 7378]\n");
  r = run_bitnet({"tokenize", "-m", llama3(), "--no-bos", "-p", "ied 4 \xC2\xBD months"});
  EXPECT_EQ(r.out, "[1142, 220, 19, 220, 27154, 4038]\n");
}

TEST(TokenizeCli, FixtureModelsAndGoldenPrompts) {
  RunResult r = run_bitnet({"tokenize", "-m", "fixture:stories260K", "Once upon a time"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 403, 407, 261, 378]\n");
  // bitnet.cpp's tokenization of the BPE model without a 'pre' key.
  r = run_bitnet({"tokenize", "-m", "fixture:bitnet-b158-tiny-bpe-f16", "--pre", "default",
                  "once upon a time there was a quick brown fox"});
  EXPECT_EQ(r.out, "[510, 267, 269, 265, 390, 277, 282, 287, 390, 294, 303, 310]\n");
}

TEST(TokenizeCli, SpecialTokensParsedUnlessAsked) {
  RunResult r = run_bitnet({"tokenize", "-m", llama3(), "Hello world<|eot_id|>"});
  EXPECT_EQ(r.out, "[128000, 9906, 1917, 128009]\n");
  r = run_bitnet({"tokenize", "-m", llama3(), "--no-parse-special", "<|eot_id|>"});
  EXPECT_EQ(r.out.find("128009"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind("[128000, 27, 91", 0), 0u) << r.out;
}

TEST(TokenizeCli, Pieces) {
  RunResult r = run_bitnet({"tokenize", "-m", spm(), "--pieces", "Hello world\n"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "     1 -> '<s>'\n 15043 -> ' Hello'\n  3186 -> ' world'\n    13 -> '\\n'\n");
}

TEST(TokenizeCli, Json) {
  RunResult r = run_bitnet({"tokenize", "-m", spm(), "--json", "Hello world"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"ids\":[1,15043,3186],\"pieces\":[\"<s>\",\" Hello\",\" world\"],\"offsets\":[[0,0],[0,5],[5,11]]}\n");
  // A byte that is not UTF-8 still gives valid JSON; its offsets say where it was.
  r = run_bitnet({"tokenize", "-m", llama3(), "--json", "--no-bos", "a\xFF"});
  EXPECT_EQ(r.out, "{\"ids\":[64,187],\"pieces\":[\"a\",\"\xEF\xBF\xBD\"],\"offsets\":[[0,1],[1,2]]}\n");
}

TEST(TokenizeCli, StdinAndFile) {
  RunResult r = run_bitnet({"tokenize", "-m", llama3()}, "Hello world");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[128000, 9906, 1917]\n");
  std::string inp = fixture_file("vocab/ggml-vocab-llama-bpe.gguf.inp").string();
  r = run_bitnet({"tokenize", "-m", llama3(), "--no-bos", "-f", inp});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[1142, 220, 19, 220, 27154, 4038, 198, ", 0), 0u) << r.out.substr(0, 80);
}

TEST(TokenizeCli, Decode) {
  RunResult r = run_bitnet({"tokenize", "-m", spm(), "--decode", "15043 3186"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello world\n");
  // Control tokens render as text, and the leading BOS keeps the space (llama_detokenize).
  r = run_bitnet({"tokenize", "-m", spm(), "--decode", "[1, 15043, 3186]"});
  EXPECT_EQ(r.out, "<s> Hello world\n");
  r = run_bitnet({"tokenize", "-m", spm(), "--decode", "1,15043,3186", "--no-parse-special"});
  EXPECT_EQ(r.out, " Hello world\n");
  r = run_bitnet({"tokenize", "-m", llama3(), "--decode", "1142 220 19 220 27154 4038"});
  EXPECT_EQ(r.out, "ied 4 \xC2\xBD months\n");
  r = run_bitnet({"tokenize", "-m", llama3(), "--decode", "9906 11 1917 0", "--json"});
  EXPECT_EQ(r.out, "{\"ids\":[9906,11,1917,0],\"pieces\":[\"Hello\",\",\",\" world\",\"!\"],\"text\":\"Hello, world!\"}\n");
}

TEST(TokenizeCli, ExitCodes) {
  // Not a GGUF file: invalid input (3), nothing on stdout, one error line.
  RunResult r = run_bitnet({"tokenize", "-m", fixture_file("vocab/ggml-vocab-llama-spm.gguf.inp").string(), "x"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("not a GGUF"), std::string::npos) << r.err;
  r = run_bitnet({"tokenize", "-m", spm(), "-f", "/nonexistent/text.txt"});
  EXPECT_EQ(r.exit_code, 3);
  {
    TempDir dir;
    r = run_bitnet({"tokenize", "-m", spm(), "-f", dir.path().string()});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_TRUE(r.out.empty());
    EXPECT_EQ(r.err, "error: " + dir.path().string() + ": cannot read the text file: is a directory\n");
  }
  // Usage errors (2): unknown flag, bad ids, an unknown pre-tokenizer, two text sources.
  r = run_bitnet({"tokenize", "-m", spm(), "--no-such-flag", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty());
  r = run_bitnet({"tokenize", "-m", spm(), "--decode", "1 two"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_bitnet({"tokenize", "-m", spm(), "--decode", "32000"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_bitnet({"tokenize", "-m", llama3(), "--pre", "nope", "x"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_bitnet({"tokenize", "-m", spm(), "-p", "a", "b"});
  EXPECT_EQ(r.exit_code, 2);
}

// Issue #20, point 16: llama-tokenize's --stdin and --show-count.
TEST(TokenizeCli, StdinAndShowCountAsLlamaTokenize) {
  RunResult plain = run_bitnet({"tokenize", "Hello world"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  RunResult piped = run_bitnet({"tokenize", "--stdin", "--show-count"}, "Hello world");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  const size_t n = static_cast<size_t>(std::count(plain.out.begin(), plain.out.end(), ',')) + 1;
  EXPECT_EQ(piped.out, plain.out + "Total number of tokens: " + std::to_string(n) + "\n");
  RunResult pieces = run_bitnet({"tokenize", "--pieces", "--show-count", "Hello world"});
  EXPECT_NE(pieces.out.find("\nTotal number of tokens: " + std::to_string(n) + "\n"), std::string::npos) << pieces.out;
  RunResult twice = run_bitnet({"tokenize", "--stdin", "Hello"}, "world");
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.err.find("give the text only once"), std::string::npos) << twice.err;
  RunResult json = run_bitnet({"tokenize", "--json", "--show-count", "Hello"});
  EXPECT_EQ(json.exit_code, 2);
}

}  // namespace
}  // namespace bitnet::test
