// Global flags, logging set-up from BITNET_LOG/--log-level/-v/-q, the subcommand table, and
// the single catch that turns bitnet::Error into "error: ..." lines and an exit code.
#include "cli.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "app/build_info.hpp"
#include "app/command_names.hpp"
#include "app/crash_handler.hpp"
#include "app/signals.hpp"
#include "app/watchdog.hpp"
#include "core/base/error.hpp"
#include "core/base/log.hpp"
#include "backends/register.hpp"
#include "core/fixtures/resolve.hpp"
#include "core/kernels/dispatch.hpp"

namespace bitnet::app {
namespace {

constexpr CommandSpec kCommands[] = {
    {"bench", "Prompt and generation speed (llama-bench's pp/tg tests)", setup_bench},
    {"debug-report", "One report to paste into an issue: build, machine, kernels, model, fixtures, a failing run",
     setup_debug_report},
    {"convert", "Rewrite a model's ternary weights as I2_S, TQ2_0, TQ1_0, F16 or F32", setup_convert},
    {"generate", "Run a model: stream a continuation of the prompt (or --chat)", setup_generate},
    {"inspect", "GGUF metadata, tensor table and validation verdict", setup_inspect},
    {"memcheck", "Run generate workloads under the memory tracker: plan vs tracked vs RSS, leaks, growth", setup_memcheck},
    {"tokenize", "Text -> token ids, ids -> text (--decode)", setup_tokenize},
    {"fixtures", "The fixture cache: list, fetch, verify, path, clean", setup_fixtures},
    {"crossval", "Compare this engine with a reference (llama.cpp, a program, a golden file, a backend)", setup_crossval},
    {"perplexity", "Perplexity over a text (llama-perplexity's method), KL divergence against a reference",
     setup_perplexity},
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool env_flag(const char* name) {
  std::string v = env(name);
  return !v.empty() && v != "0" && v != "false" && v != "no" && v != "off";
}

// BITNET_CACHE_DIR, else the XDG cache directory, else ~/.cache; "" when none is known.
std::filesystem::path default_cache_dir() {
  if (auto dir = env("BITNET_CACHE_DIR"); !dir.empty()) return dir;
  // The XDG spec says relative values are invalid and must be ignored.
  if (auto xdg = env("XDG_CACHE_HOME"); !xdg.empty() && xdg.front() == '/') return std::filesystem::path(xdg) / "bitnet";
  if (auto home = env("HOME"); !home.empty()) return std::filesystem::path(home) / ".cache" / "bitnet";
  return {};
}

std::vector<std::filesystem::path> split_path_list(const std::string& s) {
  std::vector<std::filesystem::path> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t colon = s.find(':', start);
    std::string item = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!item.empty()) out.emplace_back(item);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

std::string usable_backends() {
  std::string out;
  for (const kernels::Backend& b : kernels::registered_backends())
    if (b.supported()) {
      if (!out.empty()) out += ' ';
      out.append(b.name);
    }
  return out;
}

void print_version() {
  std::printf("bitnet %s\n", build::version);
  std::printf("commit: %s%s\n", build::commit, build::dirty ? " (dirty)" : "");
  std::printf("build type: %s\n", build::build_type);
  std::printf("compiler: %s\n", build::compiler);
  std::printf("compile flags: %s\n", build::compile_flags[0] ? build::compile_flags : "(none)");
  std::printf("backends: reference %s (this CPU runs: %s)\n", backends::compiled(), usable_backends().c_str());
}

// Test-only (docs/debug-report.md, docs/hardening.md): BITNET_TEST_FAULT=KIND:COMMAND makes
// COMMAND fail as it starts, so the tests can show how a crashing or stuck run is reported:
// segv, abort, fpe, bus, ill (that signal, through the crash handler) or hang (forever, ignoring
// cancellation). Any other value does nothing.
void inject_test_fault(const std::string& command) {
  const std::string fault = env("BITNET_TEST_FAULT");
  const size_t colon = fault.find(':');
  if (colon == std::string::npos || fault.substr(colon + 1) != command) return;
  const std::string kind = fault.substr(0, colon);
  constexpr std::pair<const char*, int> kSignals[] = {
      {"segv", SIGSEGV}, {"abort", SIGABRT}, {"fpe", SIGFPE}, {"bus", SIGBUS}, {"ill", SIGILL}};
  for (const auto& [name, sig] : kSignals)
    if (kind == name) {
      rlimit no_core{0, 0};
      ::setrlimit(RLIMIT_CORE, &no_core);  // a deliberate crash leaves no core file behind
      crash_for_test(sig);
    }
  if (kind == "hang")
    for (;;) ::pause();
}

// BITNET_CANCEL_GRACE: seconds a cancelled command may take to stop before the watchdog ends it.
double cancel_grace() {
  const std::string v = env("BITNET_CANCEL_GRACE");
  if (v.empty()) return 3.0;
  char* end = nullptr;
  const double g = std::strtod(v.c_str(), &end);
  if (*end != '\0' || !(g > 0 && g <= 3600))
    throw make_error(ErrorCode::usage, "BITNET_CANCEL_GRACE='{}' is not a number of seconds in (0, 3600]", v);
  return g;
}

struct GlobalFlags {
  std::string log_level;
  double slow_ms = 0;
  std::string log_file;
  int verbose = 0;
  bool quiet = false;
};

log::Config logging_config(const GlobalFlags& g, bool color) {
  log::Config cfg;
  cfg.level = log::Level::warn;
  cfg.color = color;
  if (auto spec = env("BITNET_LOG"); !spec.empty()) {
    try {
      log::apply_spec(cfg, spec);
    } catch (Error& e) {
      throw e.wrap("invalid BITNET_LOG='" + spec + "'");
    }
  }
  if (g.verbose == 1) cfg.level = log::Level::info;
  if (g.verbose == 2) cfg.level = log::Level::debug;
  if (g.verbose >= 3) cfg.level = log::Level::trace;
  if (g.quiet) cfg.level = log::Level::error;
  if (!g.log_level.empty()) log::apply_spec(cfg, g.log_level);
  cfg.file = g.log_file;
  if (auto v = env("BITNET_SLOW_MS"); !v.empty()) {
    char* end = nullptr;
    cfg.slow_ms = std::strtod(v.c_str(), &end);
    if (*end != '\0' || !(cfg.slow_ms > 0))
      throw make_error(ErrorCode::usage, "BITNET_SLOW_MS='{}' is not a positive number of milliseconds", v);
  }
  if (g.slow_ms > 0) cfg.slow_ms = g.slow_ms;
  return cfg;
}

}  // namespace

fixtures::Manifest load_manifests(const std::vector<std::filesystem::path>& files) {
  fixtures::Manifest m = fixtures::Manifest::builtin();
  for (const auto& f : files) m.merge(fixtures::Manifest::load(f));
  return m;
}

// Defaults of 0, -1 and [] are placeholders in this CLI ("all cores", "the model's context",
// "from the clock", "none"), which the options' texts spell out: "=0" in the help would mislead.
void blank_placeholder_defaults(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    const std::string d = o->get_default_str();
    if (d == "0" || d == "-1" || d == "[]") o->default_str("");
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) blank_placeholder_defaults(*sub);
}

// The command line, parsed and run; run() adds the check of standard output.
static int run_command(int argc, char** argv) {
  install_crash_handlers();
  install_cancel_handlers();
  backends::register_all();
  CLI::App app{"bitnet: run and check BitNet b1.58 (ternary) language models on the CPU"};
  app.require_subcommand(0, 1);
  // Every option's help shows its default (subcommands inherit this; placeholders are blanked
  // below, once all are declared).
  app.option_defaults()->always_capture_default();
  app.footer("Examples:\n  bitnet inspect fixture:stories260K\n  bitnet inspect model.gguf --tensors --json\n"
             "  bitnet fixtures list\n"
             "  bitnet inspect synthetic:2b4t    (a seeded 2B-4T-shaped model, generated once into the cache)\n"
             "Exit codes: 0 ok, 1 failure, 2 usage, 3 invalid model or input, 4 fixture, 5 crossval mismatch,\n"
             "            6 memcheck, 7 bench/memcheck regression against a --baseline, 124 timeout,\n"
             "            130 interrupted (Ctrl-C), 143 terminated (SIGTERM).\n"
             "--timeout S limits any command's wall-clock time (exit 124). It may also follow the command,\n"
             "except for crossval and debug-report, whose own --timeout limits each program they run:\n"
             "  bitnet --timeout 600 crossval --timeout 60 ...");
  // Global flags are also accepted after the subcommand (a subcommand's own flag of the same
  // name wins there: crossval's and debug-report's --timeout).
  app.fallthrough();
  GlobalFlags g;
  bool version = false;
  app.add_flag("-V,--version", version, "Print version, commit, build type, compiler, flags and backends");
  app.add_option("--log-level", g.log_level,
                 "Log level or spec: trace|debug|info|warn|error|off, or 'info,gguf=debug'; 'help' lists the components");
  app.add_option("--slow-ms", g.slow_ms,
                 "Warn about any operation (load, weight copy, prefill, a decode step, download, hashing) over this many "
                 "ms (BITNET_SLOW_MS)")
      ->check(CLI::PositiveNumber);
  app.add_option("--log-file", g.log_file, "Also append logs to this file");
  CLI::Option* verbose = app.add_flag("-v,--verbose", g.verbose, "More logging (-v info, -vv debug, -vvv trace)");
  app.add_flag("-q,--quiet", g.quiet, "Only errors on stderr")->excludes(verbose);
  double timeout = 0;
  app.add_option("--timeout", timeout,
                 "Wall-clock limit in seconds for the command: it stops, flushes what it has and exits 124")
      ->check(CLI::Range(0.001, 1e7));

  std::vector<std::pair<CLI::App*, RunFn>> commands;
  std::vector<std::string_view> names;
  for (const CommandSpec& c : kCommands) {
    CLI::App* sub = app.add_subcommand(std::string(c.name), std::string(c.summary));
    commands.emplace_back(sub, c.setup(*sub));
    names.push_back(c.name);
  }
  // `bitnet help [COMMAND]`, as git and cargo users type it: the same text as --help, on stdout.
  CLI::App* help = app.add_subcommand("help", "This help, or a command's: bitnet help COMMAND");
  std::string help_topic;
  help->add_option("COMMAND", help_topic, "The command to explain");
  names.push_back("help");

  blank_placeholder_defaults(app);

  auto usage_error = [](const std::string& message) {
    std::fprintf(stderr, "error: %s\n  (run 'bitnet --help' or 'bitnet COMMAND --help' for usage)\n", message.c_str());
    return static_cast<int>(ErrorCode::usage);
  };
  // llama-bench's -pg: CLI11 would read it as -p g, so bench gets it as --pg (for other commands
  // -pg keeps its meaning, e.g. generate -pg: the prompt "g").
  // llama.cpp's -ctk/-ctv likewise, for the commands with a KV cache type.
  std::vector<const char*> args(argv, argv + argc);
  const std::optional<std::string> word = command_word(argc, argv);
  const bool kv = word && (*word == "generate" || *word == "bench" || *word == "crossval" || *word == "memcheck" ||
                       *word == "perplexity");
  for (const char*& a : args) {
    const std::string_view s(a);
    if (s == "-pg" && word == std::optional<std::string>("bench")) a = "--pg";
    if (kv && s == "-ctk") a = "--cache-type-k";
    if (kv && s == "-ctv") a = "--cache-type-v";
  }
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A first word that names no command is reported as such, with the nearest names, rather than
    // as CLI11's "arguments were not expected".
    if (word && std::find(names.begin(), names.end(), *word) == names.end()) return usage_error(unknown_command(*word, names));
    return usage_error(e.what());
  }

  if (g.log_level == "help") {
    std::string out = "Log components (--log-level LEVEL,NAME=LEVEL,..., or BITNET_LOG):\n";
    for (const log::Component& c : log::components()) out += fmt::format("  {:<11} {}\n", c.name, c.what);
    out += "Levels: trace, debug, info, warn (the default; -v info, -vv debug, -vvv trace), error, off.\n";
    std::fputs(out.c_str(), stdout);
    return 0;
  }

  if (help->parsed()) {
    // Not app.help(): with a subcommand parsed it explains that one, here `help` itself.
    if (help_topic.empty()) {
      std::fputs(app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal).c_str(), stdout);
      return 0;
    }
    for (auto& [sub, fn] : commands)
      if (sub->get_name() == help_topic) {
        std::fputs(sub->help(app.get_name()).c_str(), stdout);
        return 0;
      }
    return usage_error(unknown_command(help_topic, names));
  }

  if (version) {
    print_version();
    return 0;
  }

  Context ctx;
  ctx.color = env("NO_COLOR").empty() && ::isatty(STDERR_FILENO);
  ctx.llama_dir = env("BITNET_LLAMA_DIR");
  ctx.log_file = g.log_file;
  ctx.quiet = g.quiet;
  ctx.fixtures.fixture_dirs = split_path_list(env("BITNET_FIXTURE_PATH"));
  ctx.fixtures.cache_dir = default_cache_dir();
  ctx.fixtures.offline = env_flag("BITNET_OFFLINE");
  ctx.fixtures.download.progress = ::isatty(STDERR_FILENO) != 0;
  ctx.fixtures.download.user_agent = std::string("bitnet/") + build::version;
  ctx.manifests = split_path_list(env("BITNET_MANIFEST"));
  try {
    log::configure(logging_config(g, ctx.color));
    for (auto& [sub, fn] : commands)
      if (sub->parsed()) {
        Watchdog watchdog(timeout, cancel_grace());
        inject_test_fault(sub->get_name());
        const int code = fn(ctx);
        // A command that noticed the cancellation by itself (returned 130) still owes the timeout's
        // or SIGTERM's exit code and message.
        if (code == static_cast<int>(ErrorCode::interrupted) && cancel_reason() != CancelReason::none &&
            cancel_reason() != CancelReason::interrupt)
          throw cancel_error();
        return code;
      }
    std::fputs(app.help().c_str(), stderr);
    return static_cast<int>(ErrorCode::usage);
  } catch (const Error& e) {
    std::fflush(stdout);
    // A cancelled command stops by throwing Error(interrupted) from wherever it was; the user
    // gets one line saying why (Ctrl-C or --timeout), not the chain of where it was.
    const Error& shown = e.code() == ErrorCode::interrupted && cancel_flag().load() ? cancel_error() : e;
    std::fputs(shown.format().c_str(), stderr);
    log::file_only(shown.format());  // the log file tells the whole story, its end included
    return shown.exit_code();
  } catch (const std::bad_alloc&) {
    std::fputs("error: out of memory\n", stderr);
    log::file_only("error: out of memory");
    return static_cast<int>(ErrorCode::failure);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    log::file_only(std::string("error: ") + e.what());
    return static_cast<int>(ErrorCode::failure);
  }
}

std::string utc_now() { return utc_text(std::time(nullptr)); }

std::string utc_text(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_stdout(std::string_view s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0 || std::ferror(stdout))
    throw make_error(ErrorCode::failure, "cannot write standard output: {}", std::strerror(errno));
}

// Output that did not reach standard output is a failure whatever the command returned:
// `bitnet inspect m.gguf > /dev/full` must not exit 0. A command that failed keeps its code.
static int check_stdout(int code) {
  errno = 0;
  bool ok = std::fflush(stdout) == 0 && !std::ferror(stdout);
  int err = errno;
  if (ok && std::fclose(stdout) != 0) ok = false, err = errno;  // a close can report a lost write
  if (ok || code != 0) return code;
  std::fprintf(stderr, "error: cannot write standard output: %s\n", err != 0 ? std::strerror(err) : "a write failed");
  return static_cast<int>(ErrorCode::failure);
}

int run(int argc, char** argv) { return check_stdout(run_command(argc, argv)); }

}  // namespace bitnet::app
