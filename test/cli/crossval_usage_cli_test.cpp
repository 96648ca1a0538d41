// `bitnet crossval` flags that would make the comparison meaningless are usage errors (exit 2),
// refused before any model is loaded or reference run.
#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace bitnet::test
