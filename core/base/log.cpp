// spdlog behind the facade: one shared set of sinks (stderr, optional file) for all components.
#include "log.hpp"

#include <filesystem>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "error.hpp"

namespace bitnet::log {
namespace {

struct Registry {
  std::mutex mu;
  Config cfg;
  std::vector<spdlog::sink_ptr> sinks;
  std::unordered_map<std::string, std::unique_ptr<Logger>> loggers;
  std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> backends;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: loggers may be used during static teardown
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
    sink->set_pattern("%^%l%$ [%n] %v");
    reg->sinks.push_back(sink);
    return reg;
  }();
  return *r;
}

Level level_for(const Config& cfg, const std::string& name) {
  auto it = cfg.components.find(name);
  return it == cfg.components.end() ? cfg.level : it->second;
}

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_backend(Registry& r, const std::string& name) {
  auto lg = std::make_shared<spdlog::logger>(name, r.sinks.begin(), r.sinks.end());
  lg->set_level(spdlog::level::trace);  // filtering happens in Logger::enabled
  lg->flush_on(spdlog::level::warn);
  return lg;
}

}  // namespace

Level parse_level(std::string_view w) {
  if (w == "trace") return Level::trace;
  if (w == "debug") return Level::debug;
  if (w == "info") return Level::info;
  if (w == "warn" || w == "warning") return Level::warn;
  if (w == "error") return Level::error;
  if (w == "off") return Level::off;
  throw make_error(ErrorCode::usage, "unknown log level '{}' (expected trace, debug, info, warn, error or off)", w);
}

std::string_view level_name(Level l) {
  static constexpr std::string_view names[] = {"trace", "debug", "info", "warn", "error", "off"};
  return names[static_cast<int>(l)];
}

void apply_spec(Config& cfg, std::string_view spec) {
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      cfg.level = parse_level(item);
    } else {
      auto name = item.substr(0, eq);
      if (name.empty())
        throw make_error(ErrorCode::usage, "log spec item '{}' has an empty component name", item);
      cfg.components[std::string(name)] = parse_level(item.substr(eq + 1));
    }
  }
}

void configure(const Config& cfg) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<spdlog::sink_ptr> sinks;
  auto err = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
      cfg.color ? spdlog::color_mode::automatic : spdlog::color_mode::never);
  err->set_pattern("%^%l%$ [%n] %v");
  sinks.push_back(err);
  if (!cfg.file.empty()) {
    // spdlog would create missing directories; a typo in --log-file should be an error instead.
    std::filesystem::path parent = std::filesystem::path(cfg.file).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
      throw make_error(ErrorCode::usage, "cannot open log file '{}': directory '{}' does not exist", cfg.file,
                       parent.string());
    try {
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.file, false);
      file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%P] %l [%n] %v");
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      throw make_error(ErrorCode::usage, "cannot open log file '{}': {}", cfg.file, e.what());
    }
  }
  r.cfg = cfg;
  r.sinks = std::move(sinks);
  for (auto& [name, lg] : r.loggers) {
    lg->level_ = level_for(r.cfg, name);
    r.backends[name] = make_backend(r, name);
  }
}

Logger& get(std::string_view component) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::string name(component);
  auto it = r.loggers.find(name);
  if (it != r.loggers.end()) return *it->second;
  auto lg = std::make_unique<Logger>(name);
  lg->level_ = level_for(r.cfg, name);
  r.backends[name] = make_backend(r, name);
  return *r.loggers.emplace(name, std::move(lg)).first->second;
}

void Logger::write(Level level, std::string_view message) const {
  Registry& r = registry();
  std::shared_ptr<spdlog::logger> backend;
  {
    std::lock_guard lock(r.mu);
    backend = r.backends.at(name_);
  }
  backend->log(to_spd(level), "{}", message);
}

}  // namespace bitnet::log
