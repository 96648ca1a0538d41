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

// The README's generate usage and `generate --help` list the same flags: every option of the help
// (by one of its names) is in the usage lines, and every --flag of the usage lines is in the help.
TEST(ReadmeCli, GenerateUsageListsTheFlagsOfItsHelp) {
  RunResult help = run_bitnet({"generate", "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  // The usage: "bitnet generate ..." and its indented continuation lines.
  std::string usage;
  bool in_usage = false;
  for (const ReadmeLine& l : readme_lines()) {
    if (l.in_code && l.text.rfind("bitnet generate ", 0) == 0) in_usage = true;
    else if (!l.in_code || l.text.rfind(" ", 0) != 0) in_usage = false;
    if (in_usage) {
      usage += l.text;
      usage += ' ';
    }
  }
  ASSERT_FALSE(usage.empty()) << "no `bitnet generate` usage in README.md";
  auto is_name_char = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; };
  // A flag as a whole word: not inside a longer one ("-n" in "--no-echo").
  auto has_flag = [&](const std::string& text, const std::string& flag) {
    for (size_t at = text.find(flag); at != std::string::npos; at = text.find(flag, at + 1)) {
      const bool starts = at == 0 || !is_name_char(text[at - 1]);
      const bool ends = at + flag.size() == text.size() || !is_name_char(text[at + flag.size()]);
      if (starts && ends) return true;
    }
    return false;
  };
  // Help lines of options: two spaces, then names separated by commas ("-n,--n-predict INT...").
  std::istringstream h(help.out);
  size_t n_options = 0;
  for (std::string line; std::getline(h, line);) {
    if (line.rfind("  -", 0) != 0) continue;
    std::string names = line.substr(2, line.find(' ', 2) - 2);
    std::vector<std::string> flags;
    for (size_t start = 0; start <= names.size();) {
      const size_t comma = names.find(',', start);
      std::string name = names.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      name = name.substr(0, name.find('{'));  // "--no-escape{false}"
      if (!name.empty()) flags.push_back(name);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (flags.empty() || flags.back() == "--help") continue;
    ++n_options;
    bool found = false;
    for (const std::string& f : flags) found = found || has_flag(usage, f);
    EXPECT_TRUE(found) << "README.md's generate usage lacks " << names;
  }
  EXPECT_GE(n_options, 25u) << help.out;
  // And the other way: each --flag of the usage is an option of the help.
  for (size_t at = usage.find("--"); at != std::string::npos; at = usage.find("--", at + 2)) {
    size_t end = at + 2;
    while (end < usage.size() && is_name_char(usage[end])) ++end;
    const std::string flag = usage.substr(at, end - at);
    EXPECT_TRUE(has_flag(help.out, flag)) << "README.md's generate usage has " << flag << ", generate --help does not";
    at = end - 2;
  }
}

}  // namespace
}  // namespace bitnet::test
