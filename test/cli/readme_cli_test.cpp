// README.md against the binary: every subcommand `bitnet --help` lists has its usage line in the
// README's code blocks, and no usage line sits in prose, where an unbalanced fence had put
// memcheck's and turned the rest of the README into code (issue #20, point 21).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/run.hpp"

namespace bitnet::test {
namespace {

struct ReadmeLine {
  std::string text;
  bool in_code;
};

std::vector<ReadmeLine> readme_lines() {
  std::ifstream in(std::string(BITNET_TEST_SOURCE_DIR) + "/../README.md");
  EXPECT_TRUE(in.good()) << "README.md not found";
  std::vector<ReadmeLine> lines;
  bool code = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) {
      code = !code;
      continue;
    }
    lines.push_back({line, code});
  }
  EXPECT_FALSE(code) << "README.md ends inside a code block";
  return lines;
}

TEST(ReadmeCli, EveryCommandHasItsUsageLineInACodeBlock) {
  RunResult help = run_bitnet({"--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  // The "Subcommands:" section: two spaces, the name, spaces, its summary.
  std::set<std::string> commands;
  const std::regex sub(R"(^  ([a-z][a-z-]+)\s{2,}\S)");
  bool in_subs = false;
  std::istringstream h(help.out);
  for (std::string line; std::getline(h, line);) {
    if (line == "Subcommands:") in_subs = true;
    else if (line.empty()) in_subs = false;
    std::smatch m;
    if (in_subs && std::regex_search(line, m, sub)) commands.insert(m[1]);
  }
  ASSERT_GE(commands.size(), 8u) << help.out;

  const std::vector<ReadmeLine> lines = readme_lines();
  for (const std::string& c : commands) {
    bool found = false;
    for (const ReadmeLine& l : lines) found = found || (l.in_code && l.text.rfind("bitnet " + c + " ", 0) == 0);
    EXPECT_TRUE(found) << "README.md has no usage line `bitnet " << c << " ...` in a code block";
  }
  const std::regex usage(R"(^bitnet [a-z-]+ \[)");
  for (const ReadmeLine& l : lines)
    EXPECT_TRUE(l.in_code || !std::regex_search(l.text, usage)) << "a usage line outside code: " << l.text;
}

}  // namespace
}  // namespace bitnet::test
