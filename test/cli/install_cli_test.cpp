// `cmake --install` (issue #20, point 20): the binary, a man page made from its help texts and
// a bash completion that offers the commands and a command's flags, under any prefix.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "support/run.hpp"

namespace bitnet::test {
namespace {

// 'text', for a shell line. (Built by appending: GCC 12 -O3 warns, falsely, of overlapping
// memcpy in "literal" + std::string&&, and the build treats warnings as errors.)
std::string shell_quoted(const std::string& text) {
  std::string q = "'";
  q += text;
  q += "'";
  return q;
}

// Runs a shell command line, its stdout captured.
std::string shell(const std::string& line, int* status) {
  std::string out;
  FILE* p = popen(line.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *status = pclose(p);
  return out;
}

TEST(InstallCli, BinaryManPageAndCompletionUnderAPrefix) {
  char tmpl[] = "/tmp/bitnet-install-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::filesystem::path prefix = tmpl;
  int status = 0;
  std::string install = "cmake --install ";
  install += shell_quoted(BITNET_TEST_BUILD_DIR) + " --prefix " + shell_quoted(prefix.string()) + " 2>&1";
  const std::string log = shell(install, &status);
  ASSERT_EQ(status, 0) << log;

  const std::filesystem::path bin = prefix / "bin" / "bitnet";
  ASSERT_TRUE(std::filesystem::exists(bin)) << log;
  const std::string version = shell(shell_quoted(bin.string()) + " --version", &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(version.rfind("bitnet ", 0), 0u) << version;

  // Every command of --help has its section, with its own help text.
  const std::string page = read_all(prefix / "share" / "man" / "man1" / "bitnet.1");
  EXPECT_EQ(page.rfind(".TH BITNET 1", 0), 0u);
  for (const char* cmd : {"generate", "tokenize", "inspect", "crossval", "bench", "memcheck", "debug-report", "fixtures",
                          "convert"})
    EXPECT_NE(page.find(std::string(".SS ") + cmd + "\n"), std::string::npos) << cmd;
  EXPECT_NE(page.find("--repeat-penalty"), std::string::npos);
  EXPECT_EQ(page.find(BITNET_TEST_BUILD_DIR), std::string::npos) << "the build path leaked into the page";

  const std::filesystem::path completion = prefix / "share" / "bash-completion" / "completions" / "bitnet";
  ASSERT_TRUE(std::filesystem::exists(completion));
  // In bash: source the completion, then complete "gen" and "generate --repeat-p".
  const std::string b = bin.string();
  std::string script = "source \"";
  script += completion.string();
  script += "\"; COMP_WORDS=(\"";
  script += b;
  script += "\" gen); COMP_CWORD=1; _bitnet; echo \"${COMPREPLY[*]}\"; COMP_WORDS=(\"";
  script += b;
  script += "\" generate --repeat-p); COMP_CWORD=2; _bitnet; echo \"${COMPREPLY[*]}\"";
  std::string line = "bash -c ";
  line += shell_quoted(script);
  const std::string words = shell(line, &status);
  EXPECT_EQ(words, "generate\n--repeat-penalty\n");
  std::filesystem::remove_all(prefix);
}

}  // namespace
}  // namespace bitnet::test
