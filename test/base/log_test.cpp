// Logging facade: level specs, per-component levels, file sink.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base/error.hpp"
#include "core/base/log.hpp"

namespace bitnet::log {
namespace {

TEST(Log, SpecSetsDefaultAndComponentLevels) {
  Config cfg;
  apply_spec(cfg, "info,gguf=debug,crossval=trace");
  EXPECT_EQ(cfg.level, Level::info);
  EXPECT_EQ(cfg.components.at("gguf"), Level::debug);
  EXPECT_EQ(cfg.components.at("crossval"), Level::trace);
  apply_spec(cfg, "error");
  EXPECT_EQ(cfg.level, Level::error);
  EXPECT_EQ(cfg.components.at("gguf"), Level::debug);  // later specs only override what they name
}

TEST(Log, BadSpecIsAUsageErrorNamingTheWord) {
  Config cfg;
  try {
    apply_spec(cfg, "info,gguf=loud");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::usage);
    EXPECT_NE(std::string(e.what()).find("'loud'"), std::string::npos);
  }
  EXPECT_THROW(apply_spec(cfg, "=debug"), Error);
}

TEST(Log, ComponentLevelsFilterAndFileReceivesMessages) {
  auto path = std::filesystem::temp_directory_path() / ("bitnet-log-test-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  Config cfg;
  cfg.level = Level::warn;
  cfg.components["threads"] = Level::debug;
  cfg.file = path.string();
  Logger& quiet = get("perplexity");
  configure(cfg);  // reconfigures loggers created before too
  Logger& loud = get("threads");
  EXPECT_TRUE(loud.enabled(Level::debug));
  EXPECT_FALSE(loud.enabled(Level::trace));
  EXPECT_FALSE(quiet.enabled(Level::info));
  EXPECT_TRUE(quiet.enabled(Level::warn));
  debug(loud, "value is {}", 42);
  info(quiet, "must not appear");
  configure(Config{});  // closes the file sink
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("[threads] value is 42"), std::string::npos) << ss.str();
  EXPECT_EQ(ss.str().find("must not appear"), std::string::npos);
  std::filesystem::remove(path);
}

// A misspelt component would log nothing, silently: it is refused, naming the known ones.
TEST(Log, UnknownComponentIsAUsageErrorListingTheKnownOnes) {
  Config cfg;
  try {
    apply_spec(cfg, "info,gguff=debug");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::usage);
    const std::string w = e.what();
    EXPECT_NE(w.find("'gguff'"), std::string::npos) << w;
    for (const Component& c : components()) EXPECT_NE(w.find(std::string(c.name)), std::string::npos) << c.name;
  }
  EXPECT_NO_THROW(apply_spec(cfg, "pool=trace,threads=trace,infer=trace,kernels=trace"));
}

// A Phase logs its time at debug, or warns past the slow threshold; quiet ones only warn.
TEST(Log, PhasesLogTheirTimeAndWarnWhenSlow) {
  auto path = std::filesystem::temp_directory_path() / ("bitnet-phase-test-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  Config cfg;
  cfg.level = Level::debug;
  cfg.file = path.string();
  configure(cfg);
  { Phase p(get("model"), "quick step", 3 << 20); }
  { Phase p(get("model"), "quiet step", 0, true); }
  cfg.slow_ms = 1e-6;  // everything is slow now
  configure(cfg);
  { Phase p(get("model"), "slow step", 1 << 20); }
  { Phase p(get("model"), "slow quiet step", 0, true); }
  file_only("error: written to the file alone");
  configure(Config{});
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  EXPECT_NE(log.find("[model] quick step: "), std::string::npos) << log;
  EXPECT_NE(log.find(" ms (3.0 MiB)"), std::string::npos) << log;
  EXPECT_EQ(log.find("quiet step:"), std::string::npos) << log;
  EXPECT_NE(log.find("warning [model] slow: slow step took"), std::string::npos) << log;
  EXPECT_NE(log.find("slow: slow quiet step took"), std::string::npos) << log;
  EXPECT_NE(log.find("] error: written to the file alone"), std::string::npos) << log;
  std::filesystem::remove(path);
}

TEST(Log, UnwritableLogFileIsAUsageError) {
  Config cfg;
  cfg.file = "/proc/version/x.log";  // a parent that is a file, so nothing can be created
  EXPECT_THROW(configure(cfg), Error);
  configure(Config{});
}

}  // namespace
}  // namespace bitnet::log
