// `bitnet bench` output: the JSON rows carry llama-bench's field names, and every number is
// consistent with the raw samples (tokens / time).
#include <gtest/gtest.h>

#include <simdjson.h>

#include <cmath>
#include <sstream>

#include "support/run.hpp"

namespace bitnet::test {
namespace {

TEST(BenchCli, JsonRowsAreConsistentWithTheirSamples) {
  RunResult r = run_bitnet({"bench", "-m", "fixture:stories260K", "-p", "32", "-n", "16", "-r", "3", "-t", "1,2", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  simdjson::dom::array rows = doc.get_array();
  ASSERT_EQ(rows.size(), 4u);  // pp32 and tg16 for 1 and 2 threads
  int i = 0;
  for (simdjson::dom::element row : rows) {
    const bool pp = i % 2 == 0;
    EXPECT_EQ(int64_t(row["n_threads"]), i < 2 ? 1 : 2);
    EXPECT_EQ(std::string_view(row["test"]), pp ? "pp32" : "tg16");
    EXPECT_EQ(int64_t(row["n_prompt"]), pp ? 32 : 0);
    EXPECT_EQ(int64_t(row["n_gen"]), pp ? 0 : 16);
    EXPECT_GT(uint64_t(row["model_size"]), 1000000u);
    EXPECT_GT(uint64_t(row["model_n_params"]), 200000u);
    EXPECT_FALSE(std::string_view(row["kernel_table"]).empty());
    const double tokens = pp ? 32 : 16;
    double mean = 0;
    int n = 0;
    for (int64_t ns : row["samples_ns"].get_array()) {
      EXPECT_GT(ns, 0);
      mean += tokens / (static_cast<double>(ns) * 1e-9);
      ++n;
    }
    ASSERT_EQ(n, 3);
    mean /= n;
    EXPECT_NEAR(double(row["avg_ts"]), mean, 1e-3 * mean);
    EXPECT_GE(double(row["stddev_ts"]), 0.0);
    ++i;
  }
}

TEST(BenchCli, MarkdownAndCsvHaveOneLinePerTest) {
  RunResult md = run_bitnet({"bench", "-p", "16", "-n", "8", "-r", "1", "-t", "1"});
  ASSERT_EQ(md.exit_code, 0) << md.err;
  EXPECT_NE(md.out.find("| model | size | params | backend | threads | test | t/s |"), std::string::npos);
  EXPECT_NE(md.out.find("| pp16 |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("| tg8 |"), std::string::npos) << md.out;
  RunResult csv = run_bitnet({"bench", "-p", "16", "-n", "0", "-r", "1", "-t", "1", "-o", "csv"});
  ASSERT_EQ(csv.exit_code, 0);
  std::istringstream in(csv.out);
  std::string header, row, extra;
  std::getline(in, header);
  std::getline(in, row);
  EXPECT_TRUE(header.starts_with("model_filename,model_type,model_size,model_n_params,")) << header;
  EXPECT_NE(row.find(",pp16,"), std::string::npos) << row;
  EXPECT_FALSE(std::getline(in, extra)) << "only the pp test was asked for";
}

TEST(BenchCli, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(run_bitnet({"bench", "-t", "0"}).exit_code, 2);
  EXPECT_EQ(run_bitnet({"bench", "-t", "1,x"}).exit_code, 2);
  EXPECT_EQ(run_bitnet({"bench", "-p", "100000"}).exit_code, 2);  // beyond the model's context
}

}  // namespace
}  // namespace bitnet::test
