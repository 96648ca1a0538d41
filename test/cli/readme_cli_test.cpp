// README.md against the binary: every subcommand `bitnet --help` lists has its usage line in the
// README's code blocks, and no usage line sits in prose, where an unbalanced fence had put
// memcheck's and turned the rest of the README into code (issue #20, point 21).
#include <gtest/gtest.h>

#include <fstream>
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
  // The "Subcommands:" section: two spaces, the name, spaces, its summary. (No std::regex: GCC 12
  // warns inside it under ASan at -O2, and the build treats warnings as errors.)
  std::set<std::string> commands;
  bool in_subs = false;
  std::istringstream h(help.out);
  for (std::string line; std::getline(h, line);) {
    if (line == "Subcommands:") in_subs = true;
    else if (line.empty()) in_subs = false;
    if (in_subs && line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] >= 'a' && line[2] <= 'z')
      commands.insert(line.substr(2, line.find(' ', 2) - 2));
  }
  ASSERT_GE(commands.size(), 8u) << help.out;

  const std::vector<ReadmeLine> lines = readme_lines();
  for (const std::string& c : commands) {
    bool found = false;
    for (const ReadmeLine& l : lines) found = found || (l.in_code && l.text.rfind("bitnet " + c + " ", 0) == 0);
    EXPECT_TRUE(found) << "README.md has no usage line `bitnet " << c << " ...` in a code block";
  }
  // A usage line: "bitnet", a command word, then its first "[option]".
  auto is_usage = [](const std::string& t) {
    if (t.rfind("bitnet ", 0) != 0) return false;
    const size_t end = t.find(' ', 7);
    return end != std::string::npos && end > 7 && t.compare(end, 2, " [") == 0 &&
           t.find_first_not_of("abcdefghijklmnopqrstuvwxyz-", 7) == end;
  };
  for (const ReadmeLine& l : lines)
    EXPECT_TRUE(l.in_code || !is_usage(l.text)) << "a usage line outside code: " << l.text;
}

}  // namespace
}  // namespace bitnet::test
