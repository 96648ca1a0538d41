// The golden format / reference protocol: what parses, what round-trips, and that malformed
// answers are rejected with a message naming the problem.
#include <gtest/gtest.h>

#include "core/base/error.hpp"
#include "diag/crossval/golden.hpp"
#include "support/fixtures.hpp"

namespace bitnet::diag {
namespace {

TEST(GoldenFormat, ReadsTheSharedFixtures) {
  const Golden g = read_golden_file(test::fixture_file("golden/stories260K.llama.cpp.p1.json"));
  EXPECT_EQ(g.prompt_ids, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  ASSERT_EQ(g.steps.size(), 64u);
  EXPECT_EQ(g.steps[0].id, 432);
  EXPECT_EQ(g.steps[0].piece, ",");
  ASSERT_EQ(g.steps[0].top.size(), 8u);
  EXPECT_EQ(g.steps[0].top[1].id, 383);
  EXPECT_FLOAT_EQ(g.steps[0].top[1].logit, 14.2824f);
  EXPECT_FALSE(g.vocab.has_value());
  EXPECT_FALSE(g.prompt.has_value());
  // bitnet.cpp goldens have no pieces.
  const Golden b = read_golden_file(test::fixture_file("golden/bitnet-tiny-i2_s.bitnet.cpp.json"));
  EXPECT_EQ(b.steps.size(), 32u);
  EXPECT_TRUE(b.steps[0].piece.empty());
}

TEST(GoldenFormat, WriteThenParseIsTheSame) {
  Golden g;
  g.engine = "test engine";
  g.prompt = "a \"quoted\"\nprompt";
  g.vocab = VocabFacts{512, 1, 2, std::nullopt, true};
  g.prompt_ids = {1, 2, 3};
  g.steps.push_back({7, "\xc3\xa9", {{7, 1.25f}, {3, -0.1234567f}}});
  g.steps.push_back({8, "", {{8, 17.7979393f}}});
  const Golden back = parse_golden(write_golden(g), "test");
  EXPECT_EQ(back.engine, g.engine);
  EXPECT_EQ(back.prompt, g.prompt);
  ASSERT_TRUE(back.vocab);
  EXPECT_EQ(back.vocab->n_tokens, 512);
  EXPECT_EQ(back.vocab->eos, 2);
  EXPECT_FALSE(back.vocab->eot.has_value());
  EXPECT_EQ(back.vocab->add_bos, true);
  EXPECT_EQ(back.prompt_ids, g.prompt_ids);
  ASSERT_EQ(back.steps.size(), 2u);
  EXPECT_EQ(back.steps[0].piece, "\xc3\xa9");
  EXPECT_EQ(back.steps[0].top[1].logit, -0.1234567f);  // floats survive exactly
  EXPECT_EQ(back.steps[1].top[0].logit, 17.7979393f);
}

// crossval --record --layers: one step's taps ride along, every float exact.
TEST(GoldenFormat, RecordedTapsSurviveAndBadOnesAreRefused) {
  Golden g;
  g.prompt_ids = {1};
  g.steps.push_back({7, "", {{7, 1.0f}}});
  g.steps.push_back({8, "", {{8, 2.0f}}});
  g.layers = GoldenLayers{1, {{"attn_norm", 0, {1.5f, -0.1234567f, 3e-38f}}, {"result_output", -1, {17.7979393f}}}};
  const Golden back = parse_golden(write_golden(g), "test");
  ASSERT_TRUE(back.layers);
  EXPECT_EQ(back.layers->step, 1u);
  ASSERT_EQ(back.layers->taps.size(), 2u);
  EXPECT_EQ(back.layers->taps[0].name, "attn_norm");
  EXPECT_EQ(back.layers->taps[0].values, g.layers->taps[0].values);
  EXPECT_EQ(back.layers->taps[1].layer, -1);
  EXPECT_FALSE(parse_golden(R"({"prompt_ids":[1],"steps":[]})", "t").layers.has_value());
  const char* bad[] = {
      R"({"prompt_ids":[1],"steps":[{"id":1,"top":[[1,0]]}],"layers":{"step":1,"taps":[]}})",
      R"({"prompt_ids":[1],"steps":[{"id":1,"top":[[1,0]]}],"layers":{"step":0}})",
      R"({"prompt_ids":[1],"steps":[{"id":1,"top":[[1,0]]}],"layers":{"step":0,"taps":[{"name":"x","layer":0}]}})",
      R"({"prompt_ids":[1],"steps":[{"id":1,"top":[[1,0]]}],"layers":{"step":0,"taps":[{"name":"x","layer":0,"values":["a"]}]}})",
  };
  for (const char* j : bad) EXPECT_THROW(parse_golden(j, "t"), Error) << j;
}

TEST(GoldenFormat, VocabNullAndMinusOneMeanNoToken) {
  const Golden g = parse_golden(R"({"vocab":{"n_tokens":5,"bos":-1,"eos":null},"prompt_ids":[1],"steps":[]})", "t");
  ASSERT_TRUE(g.vocab);
  EXPECT_FALSE(g.vocab->bos.has_value());
  EXPECT_FALSE(g.vocab->eos.has_value());
  EXPECT_TRUE(g.steps.empty());
}

void expect_rejected(const std::string& json, const std::string& words) {
  try {
    parse_golden(json, "SOURCE");
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("SOURCE"), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  }
}

TEST(GoldenFormat, RejectsMalformedAnswers) {
  expect_rejected("", "the output is empty");
  expect_rejected("hello world", "it starts with: hello world");
  expect_rejected("[1,2]", "not an object");
  expect_rejected(R"({"steps":[]})", "prompt_ids");
  expect_rejected(R"({"prompt_ids":[],"steps":[]})", "empty");
  expect_rejected(R"({"prompt_ids":[1]})", "steps");
  expect_rejected(R"({"prompt_ids":[1],"steps":[{"id":3}]})", "steps[0] has no \"top\"");
  expect_rejected(R"({"prompt_ids":[1],"steps":[{"top":[[1,2.0]]}]})", "steps[0] has no \"id\"");
  expect_rejected(R"({"prompt_ids":[-4],"steps":[]})", "token id");
  expect_rejected(R"({"prompt_ids":[1],"steps":[{"id":1,"top":[[1]]}]})", "[id, logit]");
  expect_rejected(R"({"prompt_ids":[1],"steps":[{"id":1,"top":[[1,"x"]]}]})", "finite number");
  expect_rejected(R"({"prompt_ids":[1],"steps":[{"id":1,"top":[]}]})", "top is empty");
}

TEST(GoldenFormat, MissingFileIsAFixtureError) {
  try {
    read_golden_file("/nonexistent/golden.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::fixture);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/golden.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace bitnet::diag
