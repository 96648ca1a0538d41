// spdlog behind the facade: one shared set of sinks (stderr, optional file) for all components.
#include "log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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

constexpr Component kComponents[] = {
    {"bench", "bench: tests, repetitions, the bandwidth probe"},
    {"convert", "convert: tensors rewritten"},
    {"crossval", "crossval and perplexity's references: requests, answers, comparisons"},
    {"engine", "the set-up every command shares: model, kernel table, threads, context"},
    {"fixtures", "the fixture cache: downloads, checksums, locks"},
    {"generate", "generate: sampling, context shifts, timings"},
    {"gguf", "reading and writing GGUF files"},
    {"infer", "the session: weight copies; each layer's time at trace"},
    {"kernels", "kernel-table dispatch: which table and why; each matmul at trace"},
    {"memcheck", "memcheck: rounds, plans, baselines"},
    {"model", "loading a model: mapping, validation, the load line"},
    {"perplexity", "perplexity: chunks"},
    {"pool", "the memory pool: each block taken and given back at trace"},
    {"threads", "the thread pool: each parallel loop at trace"},
    {"tokenizer", "vocabularies and tokenization"},
};

std::atomic<double> g_slow_ms{0};
std::atomic<int> g_file_fd{-1};

bool known_component(std::string_view name) {
  return std::any_of(std::begin(kComponents), std::end(kComponents), [&](const Component& c) { return c.name == name; });
}

std::string component_list() {
  std::string out;
  for (const Component& c : kComponents) out += (out.empty() ? "" : ", ") + std::string(c.name);
  return out;
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
      if (!known_component(name))
        throw make_error(ErrorCode::usage, "unknown log component '{}' (components: {}; --log-level help says what each covers)",
                         name, component_list());
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
  g_slow_ms.store(cfg.slow_ms);
  // A second descriptor of the log file for the crash path, which cannot go through spdlog.
  const int fd = cfg.file.empty() ? -1 : ::open(cfg.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (const int old = g_file_fd.exchange(fd); old >= 0) ::close(old);
  for (auto& [name, lg] : r.loggers) {
    lg->level_ = level_for(r.cfg, name);
    r.backends[name] = make_backend(r, name);
  }
}

std::span<const Component> components() { return kComponents; }

Logger& get(std::string_view component) {
  BITNET_CHECK(known_component(component));  // add it to kComponents, with what it covers
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

void file_only(std::string_view line) {
  const int fd = g_file_fd.load();
  if (fd < 0) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "[%Y-%m-%d %H:%M:%S] ", &tm);
  std::string out = std::string(stamp) + "[" + std::to_string(::getpid()) + "] " + std::string(line);
  if (out.empty() || out.back() != '\n') out += '\n';
  ssize_t ignored = ::write(fd, out.data(), out.size());
  (void)ignored;
}

int file_descriptor() { return g_file_fd.load(); }

namespace {
int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Phase::Phase(Logger& lg, std::string name, uint64_t bytes, bool quiet)
    : lg_(lg), name_(std::move(name)), bytes_(bytes), quiet_(quiet), t0_ns_(steady_ns()) {}

double Phase::finish() {
  if (done_) return seconds_;
  done_ = true;
  seconds_ = static_cast<double>(steady_ns() - t0_ns_) * 1e-9;
  const double ms = seconds_ * 1e3, slow = g_slow_ms.load();
  const std::string size = bytes_ > 0 ? fmt::format(" ({:.1f} MiB)", static_cast<double>(bytes_) / (1 << 20)) : "";
  if (slow > 0 && ms > slow) warn(lg_, "slow: {} took {:.1f} ms{} (over BITNET_SLOW_MS={:g})", name_, ms, size, slow);
  else if (!quiet_) debug(lg_, "{}: {:.1f} ms{}", name_, ms, size);
  return seconds_;
}

}  // namespace bitnet::log
