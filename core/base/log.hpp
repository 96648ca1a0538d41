// Logging facade. Everything logs through here (never straight to spdlog) so that
// per-component levels, the log file and colour are decided in one place. Logs go to stderr,
// never stdout: stdout belongs to the command's output.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace bitnet::log {

enum class Level { trace, debug, info, warn, error, off };

struct Config {
  Level level = Level::info;                  // for components not named below
  std::map<std::string, Level> components;    // e.g. {"gguf": debug}
  std::string file;                           // also append to this file ("" = no file)
  bool color = true;                          // colour on a terminal (NO_COLOR turns it off)
};

// "debug" -> Level::debug; throws bitnet::Error(usage) naming the bad word.
Level parse_level(std::string_view word);
// Applies a spec like "info,gguf=debug,crossval=trace" on top of cfg.
void apply_spec(Config& cfg, std::string_view spec);
std::string_view level_name(Level level);

// Reconfigures every logger, including those created earlier. Throws if the file cannot be opened.
void configure(const Config& cfg);

class Logger {
 public:
  explicit Logger(std::string name) : name_(std::move(name)) {}
  bool enabled(Level level) const {
    Level current = level_.load(std::memory_order_relaxed);
    return level >= current && current != Level::off;
  }
  void write(Level level, std::string_view message) const;
  const std::string& name() const { return name_; }

 private:
  friend void configure(const Config&);
  friend Logger& get(std::string_view);
  std::string name_;
  std::atomic<Level> level_{Level::info};
};

// The logger of a component ("gguf", "model", ...); created on first use, lives forever.
Logger& get(std::string_view component);

template <typename... Args>
void at(Logger& lg, Level level, fmt::format_string<Args...> f, Args&&... args) {
  if (lg.enabled(level)) lg.write(level, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void trace(Logger& lg, fmt::format_string<Args...> f, Args&&... a) { at(lg, Level::trace, f, std::forward<Args>(a)...); }
template <typename... Args>
void debug(Logger& lg, fmt::format_string<Args...> f, Args&&... a) { at(lg, Level::debug, f, std::forward<Args>(a)...); }
template <typename... Args>
void info(Logger& lg, fmt::format_string<Args...> f, Args&&... a) { at(lg, Level::info, f, std::forward<Args>(a)...); }
template <typename... Args>
void warn(Logger& lg, fmt::format_string<Args...> f, Args&&... a) { at(lg, Level::warn, f, std::forward<Args>(a)...); }
template <typename... Args>
void error(Logger& lg, fmt::format_string<Args...> f, Args&&... a) { at(lg, Level::error, f, std::forward<Args>(a)...); }

}  // namespace bitnet::log
