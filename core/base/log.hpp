// Logging facade. Everything logs through here (never straight to spdlog) so that
// per-component levels, the log file and colour are decided in one place. Logs go to stderr,
// never stdout: stdout belongs to the command's output.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <span>
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
  double slow_ms = 0;                         // warn on a Phase longer than this (0: never)
};

// Every component that logs, with what it covers: `--log-level help` lists them, and a spec that
// names another one is a usage error (a misspelt name would otherwise silently log nothing).
struct Component {
  std::string_view name;
  std::string_view what;
};
std::span<const Component> components();

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

// The logger of a component ("gguf", "model", ...; one of components()); created on first use,
// lives forever.
Logger& get(std::string_view component);

// Appends one line to the log file only, for what the terminal already showed another way (the
// final `error:` lines); nothing without a log file.
void file_only(std::string_view line);
// The log file as a descriptor opened for appending, for async-signal-safe writes of a crash
// report; -1 without a log file.
int file_descriptor();

// Times one operation. When it ends: a debug line "NAME: 12.3 ms (45.6 MiB)", or, past
// Config::slow_ms, a warning "slow: NAME took ..." with the same facts. quiet: only the warning
// (for operations that repeat, such as each decoded token).
class Phase {
 public:
  Phase(Logger& lg, std::string name, uint64_t bytes = 0, bool quiet = false);
  ~Phase() { finish(); }
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;
  void set_bytes(uint64_t bytes) { bytes_ = bytes; }
  double finish();  // logs once; returns the seconds it took

 private:
  Logger& lg_;
  std::string name_;
  uint64_t bytes_;
  bool quiet_;
  bool done_ = false;
  double seconds_ = 0;
  int64_t t0_ns_;
};

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
