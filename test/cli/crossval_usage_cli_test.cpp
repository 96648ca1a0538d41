// `bitnet crossval` runs that would compare nothing meaningful: flags refused as usage errors
// (exit 2) before any model is loaded, and a golden recorded with another model, named as such.
#include <gtest/gtest.h>

#include <string>

#include "support/fixtures.hpp"
#include "support/run.hpp"

namespace bitnet::test {
namespace {

TEST(CrossvalUsageCli, ZeroStepsIsAUsageErrorNamingTheRange) {
  RunResult r = run_bitnet({"crossval", "-m", "fixture:stories260K", "--reference", "backend:reference", "-n", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--n-predict"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not in range 1 to 100000"), std::string::npos) << r.err;
}

// The shared goldens give prompt ids only; one of bitnet-tiny's run against stories260K (both
// SentencePiece, ids in range) must say that the prompt ids are not this model's.
TEST(CrossvalUsageCli, GoldenFromAnotherModelSaysThePromptIdsDiffer) {
  const std::string other = fixture_file("golden/bitnet-tiny-i2_s.bitnet.cpp.json").string();
  RunResult r = run_bitnet({"crossval", "-m", "fixture:stories260K", "--reference", "golden:" + other, "-n", "4"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.out.find("but its prompt ids DIFFER at index 1 from what our"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recorded with another model (or another --pre)?"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reference [1, 331, 334,"), std::string::npos) << r.out;
  // A golden recorded with this model reads back to its own ids.
  const std::string own = fixture_file("golden/stories260K.llama.cpp.p1.json").string();
  r = run_bitnet({"crossval", "-m", "fixture:stories260K", "--reference", "golden:" + own, "-n", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("5 ids, and our tokenizer reads their text back to them"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bitnet::test
