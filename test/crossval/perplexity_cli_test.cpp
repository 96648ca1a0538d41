// `bitnet perplexity` against the built binary: the trained stories260K on a licence text that
// ships with Debian, compared with llama.cpp's logits on the same tokens (the real adapter) and
// with our scalar reference table; and every kind of bad input.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/llama_ref.hpp"
#include "support/run.hpp"

namespace bitnet::test {
namespace {

// base-files puts it on every Debian system; 22155 stories260K tokens.
const std::string kText = "/usr/share/common-licenses/GPL-3";

std::string stories() { return fixture_file("models/stories260K.gguf").string(); }

struct Ppl {
  double ours = 0, ours_error = 0, ref = 0, kld = 0, kld_max = 0, same_top = 0;
  uint64_t chunks = 0, scored = 0, running = 0;
};

Ppl parse(const std::string& out) {
  simdjson::dom::parser parser;
  simdjson::dom::element d = parser.parse(simdjson::padded_string(out));
  Ppl p;
  p.ours = d["ppl"].get_double();
  p.ours_error = d["ppl_error"].get_double();
  p.chunks = d["n_chunks"].get_uint64();
  p.scored = d["scored"].get_uint64();
  p.running = d["running_ppl"].get_array().size();
  simdjson::dom::element r;
  if (!d["reference"].get(r)) {
    p.ref = r["ppl"].get_double();
    p.kld = r["kld"]["mean"].get_double();
    p.kld_max = r["kld_percentiles"]["max"].get_double();
    p.same_top = r["same_top"]["mean"].get_double();
  }
  return p;
}

TEST(PerplexityCli, Stories260KAgreesWithLlamaCppOnTheSameTokens) {
  BITNET_REQUIRE_LLAMA_REF();
  ASSERT_TRUE(std::filesystem::exists(kText));
  // F32 caches on both sides (llama.cpp without flash attention): the same maths, float rounding apart.
  RunResult r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "128", "--chunks", "24", "-t", "2",
                            "--kv-type", "f32", "--reference", "llama.cpp", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl f32 = parse(r.out);
  EXPECT_EQ(f32.chunks, 24u);
  EXPECT_EQ(f32.running, 24u);
  EXPECT_EQ(f32.scored, 24u * 63u);  // positions 64..126 of each chunk predict 65..127
  EXPECT_GT(f32.ours, 1.0);
  EXPECT_LT(f32.ours, 512.0);  // better than uniform over the vocabulary
  EXPECT_GT(f32.ours_error, 0.0);
  EXPECT_NEAR(f32.ours / f32.ref, 1.0, 1e-6);
  EXPECT_LT(f32.kld_max, 1e-8);
  EXPECT_EQ(f32.same_top, 1.0);

  // The default F16 caches round K and V each its own way: issue #23 asks for 1e-4 relative.
  r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "256", "--chunks", "12", "-t", "2", "--reference",
                  "llama.cpp", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl f16 = parse(r.out);
  EXPECT_NEAR(f16.ours / f16.ref, 1.0, 1e-4);
  EXPECT_LT(f16.kld, 1e-5);
}

TEST(PerplexityCli, TheScalarReferenceTableScoresAlike) {
  RunResult r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "64", "--chunks", "6", "--reference",
                            "backend:reference", "--kl-divergence", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl p = parse(r.out);
  EXPECT_NEAR(p.ours / p.ref, 1.0, 1e-5);
  EXPECT_EQ(p.same_top, 1.0);
  EXPECT_EQ(p.scored, 6u * 31u);
}

// The float oracle scores a float model as the engine's F32 path does, to float rounding.
TEST(PerplexityCli, Stories260KAgreesWithTheFloatOracle) {
  RunResult r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "128", "--chunks", "4", "--kv-type", "f32",
                            "--reference", "float", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl p = parse(r.out);
  EXPECT_NEAR(p.ours / p.ref, 1.0, 1e-6);
  EXPECT_LT(p.kld_max, 1e-8);
  EXPECT_EQ(p.same_top, 1.0);
}

// A llama.cpp reference directory whose adapter answers as the body says ($req holds the request).
struct FakeAdapter {
  std::filesystem::path dir = temp_dir("bitnet-fake-adapter");
  explicit FakeAdapter(const std::string& body) {
    const auto exe = dir / "bitnet-llama-ref";
    std::ofstream(exe) << "#!/bin/sh\nreq=$(cat)\n" << body << "\n";
    std::filesystem::permissions(exe, std::filesystem::perms::owner_all);
  }
  ~FakeAdapter() { std::filesystem::remove_all(dir); }
  std::string spec() const { return "llama.cpp:" + dir.string(); }
  static std::filesystem::path temp_dir(const std::string& name) {
    auto d = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }
};

// A reference that answers with the wrong shape, or with a logits file of the wrong size, is a
// failure naming the reference and what was wrong (exit 1); so are --layers' taps answers.
TEST(PerplexityCli, AWrongLogitsAnswerIsAFailureNamingTheReference) {
  FakeAdapter vocab("echo '{\"n_vocab\":7,\"rows\":63}'");
  RunResult r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "128", "--chunks", "1", "--reference",
                            vocab.spec()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("gave no logits answer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a vocabulary of 7 tokens, the model has 512"), std::string::npos) << r.err;
  // The right shape, but the file it names holds nothing.
  FakeAdapter empty("echo '{\"n_vocab\":512,\"rows\":64}'");
  r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "128", "--chunks", "1", "--reference", empty.spec()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("its logits file does not hold 131072 bytes"), std::string::npos) << r.err;
  // crossval --layers: a golden for the greedy run, then a taps list whose file holds no rows.
  FakeAdapter taps(
      "case \"$req\" in *'\"taps\"'*) echo '{\"taps\":[{\"name\":\"attn_norm\",\"layer\":0,\"width\":64}]}';;\n"
      "  *) echo '{\"prompt_ids\":[1,403],\"steps\":[{\"id\":5,\"top\":[[5,1.0]]},{\"id\":6,\"top\":[[6,1.0]]}]}';;\n"
      "esac");
  r = run_bitnet({"crossval", "-m", stories(), "-p", "Once", "-n", "2", "--reference", taps.spec(), "--layers"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("gave no taps answer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("its taps file ends before tap attn_norm of layer 0"), std::string::npos) << r.err;
}

TEST(PerplexityCli, TextReportEndsWithTheEstimate) {
  RunResult r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "64", "--chunks", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[1]", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(",[3]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Final estimate: PPL = "), std::string::npos) << r.out;
  // Without a reference there is no comparison block.
  EXPECT_EQ(r.out.find("KL divergence"), std::string::npos) << r.out;
}

TEST(PerplexityCli, BadInputGetsOneClearLineAndItsExitCode) {
  // No text: usage.
  RunResult r = run_bitnet({"perplexity", "-m", stories()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("needs a text: -f FILE"), std::string::npos) << r.err;
  // A text that is not there: invalid input, naming the path.
  r = run_bitnet({"perplexity", "-m", stories(), "-f", "/nonexistent/wiki.test.raw"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/wiki.test.raw"), std::string::npos) << r.err;
  // A text shorter than one chunk: invalid input, with both lengths.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("bitnet-ppl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string short_text = (dir / "short.txt").string();
  { std::ofstream(short_text) << "Once upon a time there was a little girl."; }
  r = run_bitnet({"perplexity", "-m", stories(), "-f", short_text, "-c", "128"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(short_text), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("shorter than one chunk of 128 tokens"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
  // A chunk too small to score anything.
  r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "-c", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // --kl-divergence needs something to compare with; a golden file has no logits.
  r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "--kl-divergence"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--reference"), std::string::npos) << r.err;
  r = run_bitnet({"perplexity", "-m", stories(), "-f", kText, "--reference", "golden:x.json"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("golden:x.json"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

struct ScratchDir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("bitnet-ppl-base-" + std::to_string(::getpid()));
  ScratchDir() { std::filesystem::create_directories(dir); }
  ~ScratchDir() { std::filesystem::remove_all(dir); }
};

std::string tiny(const std::string& name) { return fixture_file("models/bitnet-tiny-" + name + ".gguf").string(); }

// llama-perplexity's two-step KL divergence: save one model's logits, compare another with them.
TEST(PerplexityCli, KlDivergenceAgainstASavedBase) {
  ScratchDir s;
  const std::string base = (s.dir / "f16.kld").string();
  RunResult r = run_bitnet({"perplexity", "-m", tiny("f16"), "-f", kText, "-c", "128", "--chunks", "5",
                            "--kl-divergence-base", base, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl saved = parse(r.out);
  ASSERT_TRUE(std::filesystem::exists(base));
  // The same model against its own logits: nothing between them, to the bit.
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", base, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl same = parse(r.out);
  EXPECT_EQ(same.ours, saved.ours);
  EXPECT_EQ(same.ref, saved.ours);
  EXPECT_EQ(same.kld, 0.0);
  EXPECT_EQ(same.same_top, 1.0);
  EXPECT_EQ(same.chunks, 5u);
  // The same weights as TQ2_0 (activations rounded to Q8_K): a small, positive divergence.
  r = run_bitnet({"perplexity", "-m", tiny("tq2_0-embf16"), "--kl-divergence", "--kl-divergence-base", base, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Ppl tq2 = parse(r.out);
  EXPECT_EQ(tq2.ref, saved.ours);
  EXPECT_GT(tq2.kld, 0.0);
  EXPECT_LT(tq2.kld, 0.05);
  // --chunks reads only the first ones.
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", base, "--chunks", "2",
                  "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parse(r.out).chunks, 2u);
}

TEST(PerplexityCli, ABaseFileOnlyServesItsOwnVocabulary) {
  ScratchDir s;
  const std::string base = (s.dir / "f16.kld").string();
  ASSERT_EQ(run_bitnet({"perplexity", "-m", tiny("f16"), "-f", kText, "-c", "64", "--chunks", "2",
                        "--kl-divergence-base", base}).exit_code, 0);
  // stories260K has 512 tokens too, but other ones.
  RunResult r = run_bitnet({"perplexity", "-m", stories(), "--kl-divergence", "--kl-divergence-base", base});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("another vocabulary"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(base), std::string::npos) << r.err;
  // Text or a second reference beside a base that is read: usage errors.
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", base, "-f", kText});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", base, "--reference",
                  "backend:reference"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", base, "-c", "128"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // A file that is not a base file, and one that is not there.
  const std::string junk = (s.dir / "junk.kld").string();
  { std::ofstream(junk) << "not a base file"; }
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", junk});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find(junk), std::string::npos) << r.err;
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "--kl-divergence", "--kl-divergence-base", junk + ".missing"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  // Saving into a directory that does not exist fails before any work, and leaves nothing.
  r = run_bitnet({"perplexity", "-m", tiny("f16"), "-f", kText, "--kl-divergence-base", (s.dir / "no/such.kld").string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace bitnet::test
