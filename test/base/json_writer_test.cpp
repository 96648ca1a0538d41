// JsonWriter output, checked by parsing it back with simdjson.
#include <gtest/gtest.h>

#include <simdjson.h>

#include "core/base/json_writer.hpp"

namespace bitnet {
namespace {

TEST(JsonWriter, CompactOutputIsExact) {
  JsonWriter j(false);
  j.begin_object().key("a").value(1).key("b").begin_array().value("x").value(true).null().end_array();
  j.key("c").begin_object().end_object().key("d").value(2.5).end_object();
  EXPECT_EQ(j.str(), R"({"a":1,"b":["x",true,null],"c":{},"d":2.5})");
}

TEST(JsonWriter, EscapesAndParsesBack) {
  const std::string tricky = std::string("quote\" back\\ nl\n tab\t ctl\x01 utf8 \xc3\xa9 ") + '\0' + "end";
  JsonWriter j(true);
  j.begin_object().key(tricky).value(tricky).key("big").value(UINT64_MAX).key("neg").value(int64_t{-5});
  j.key("nan").value(std::numeric_limits<double>::quiet_NaN()).end_object();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(j.str()).get(doc), simdjson::SUCCESS) << j.str();
  std::string_view back;
  ASSERT_EQ(doc[tricky].get(back), simdjson::SUCCESS);
  EXPECT_EQ(back, tricky);
  uint64_t big = 0;
  ASSERT_EQ(doc["big"].get(big), simdjson::SUCCESS);
  EXPECT_EQ(big, UINT64_MAX);
  int64_t neg = 0;
  ASSERT_EQ(doc["neg"].get(neg), simdjson::SUCCESS);
  EXPECT_EQ(neg, -5);
  EXPECT_TRUE(doc["nan"].is_null());
}

TEST(JsonWriter, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(json_escape("a\xff" "b"), "\"a\xEF\xBF\xBD" "b\"");
  EXPECT_EQ(json_escape("\xE2\x96"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // truncated sequence
  EXPECT_EQ(json_escape("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
  EXPECT_EQ(json_escape("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong
  EXPECT_EQ(json_escape("\xE2\x96\x81\xF0\x9F\x98\x80"), "\"\xE2\x96\x81\xF0\x9F\x98\x80\"");
  EXPECT_TRUE(is_valid_utf8("\xE2\x96\x81"));
  EXPECT_FALSE(is_valid_utf8("\xE2\x96"));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  JsonWriter j(false);
  j.begin_object().key("p").value(std::string_view("\x80\xfe")).end_object();
  EXPECT_EQ(parser.parse(j.str()).get(doc), simdjson::SUCCESS) << j.str();
}

}  // namespace
}  // namespace bitnet
