// `bitnet debug-report [-m MODEL] [-o FILE] [--format md|json] [-- ARGS...]`: one report to paste
// into an issue. app/ supplies the build facts and the environment; diag/ gathers and renders.
// Exit 0 whatever the report found (a broken model or a crash is its content); 1 only when the
// report itself cannot be written, 2 for usage.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <zstd.h>

#include "app/build_info.hpp"
#include "app/cli.hpp"
#include "app/engine_options.hpp"
#include "app/output_path.hpp"
#include "backends/register.hpp"
#include "core/base/error.hpp"
#include "core/base/thread_pool.hpp"
#include "diag/debug_report.hpp"

extern char** environ;

namespace bitnet::app {
namespace {

struct DebugReportOptions {
  EngineFlags engine;  // BITNET_THREADS and BITNET_BACKEND, through hidden -t and --backend
  std::string model;
  std::string output;
  std::string format;  // "" = from the -o extension, else md
  double timeout = 120;
  bool no_hash = false;
  std::vector<std::string> args;
};

std::vector<std::pair<std::string, std::string>> environment() {
  std::vector<std::pair<std::string, std::string>> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) out.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

std::string self_exe() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("unknown") : p.string();
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t sp = s.find(' ', i);
    if (sp == std::string_view::npos) sp = s.size();
    if (sp > i) out.emplace_back(s.substr(i, sp - i));
    i = sp + 1;
  }
  return out;
}

// The --log-file of the child's own global flags, when it was given one.
std::filesystem::path child_log_file(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--log-file" && i + 1 < args.size()) return args[i + 1];
    if (args[i].starts_with("--log-file=")) return args[i].substr(11);
  }
  return {};
}

// "report.json.zst" -> ("json", true); the format only when the extension names one.
std::pair<std::string, bool> format_of(std::string_view file) {
  bool zst = file.ends_with(".zst");
  if (zst) file.remove_suffix(4);
  if (file.ends_with(".json")) return {"json", zst};
  if (file.ends_with(".md") || file.ends_with(".markdown")) return {"md", zst};
  return {"", zst};
}

std::string zstd_compress(const std::string& text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 10);
  if (ZSTD_isError(n)) throw make_error(ErrorCode::failure, "zstd compression failed: {}", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

diag::DebugReport gather(const Context& ctx, const DebugReportOptions& o) {
  diag::DebugReport r;
  r.generated_at = utc_now();
  const char* home = std::getenv("HOME");
  r.privacy.home = home ? home : "";
  r.tool = {build::version, build::commit, build::build_type, build::compiler, build::compile_flags, build::dirty,
            words(std::string("reference ") + backends::compiled()), self_exe()};
  r.libraries = diag::linked_library_versions();
  r.machine = diag::gather_machine_info();
  // Described, not selected: an impossible BITNET_BACKEND is part of the report, not its failure.
  r.kernels = diag::gather_kernels(o.engine.backend);

  diag::ConfigInfo& c = r.config;
  c.threads = ThreadPool::default_threads();
  c.threads_source = "all cores";
  // Read here rather than by -t's envname: a bad value is part of the report, not its failure.
  if (o.engine.threads > 0) {
    c.threads = o.engine.threads;
    c.threads_source = "-t";
  } else if (const char* v = std::getenv("BITNET_THREADS"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end == '\0' && n >= 1 && n <= 1024) {
      c.threads = static_cast<int>(n);
      c.threads_source = "BITNET_THREADS";
    } else {
      c.threads_error = fmt::format("BITNET_THREADS='{}' is not a thread count from 1 to 1024", v);
    }
  }
  c.cache_dir = ctx.fixtures.cache_dir.string();
  for (const auto& d : ctx.fixtures.fixture_dirs) c.fixture_dirs.push_back(d.string());
  c.offline = ctx.fixtures.offline;
  c.env = diag::relevant_env(environment(), r.privacy);

  // Offline whatever the settings say: a bug report must not download anything.
  Context offline = ctx;
  offline.fixtures.offline = true;
  if (!o.model.empty())
    r.model = diag::gather_model(o.model, [&](std::string_view spec) { return resolve_model(offline, spec, c.threads); }, !o.no_hash);

  std::optional<diag::Failure> manifest_error;
  fixtures::Manifest manifest = fixtures::Manifest::builtin();
  try {
    manifest = load_manifests(ctx.manifests);
  } catch (const Error& e) {
    manifest_error = diag::Failure{e.exit_code(), e.chain()};
  }
  r.fixtures = diag::gather_fixtures(fixtures::Fixtures(offline.fixtures, manifest), !o.no_hash);
  if (manifest_error) r.fixtures.error = manifest_error;
  // Where downloads and synthetic models land, and where the model sits: a full disk there is a
  // common cause of a truncated file.
  r.disks.push_back(diag::disk_space("cache", ctx.fixtures.cache_dir));
  if (r.model && !r.model->path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(r.model->path).parent_path();
    r.disks.push_back(diag::disk_space("model", dir.empty() ? "." : dir));
  }

  // The run comes before the log, whose tail should include what the run wrote.
  if (!o.args.empty())
    r.child = diag::run_child_command("/proc/self/exe", o.args,
                                      std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000)));
  std::filesystem::path log = ctx.log_file.empty() ? child_log_file(o.args) : ctx.log_file;
  r.log = diag::gather_log(log);
  diag::summarize(r);
  return r;
}

}  // namespace

RunFn setup_debug_report(CLI::App& sub) {
  auto o = std::make_shared<DebugReportOptions>();
  // What a run would get from the environment; the -- ARGS run inherits that environment.
  add_engine_flags(sub, o->engine, {.model = EngineFlagSet::Model::none, .hidden = true});
  sub.add_option("-m,--model", o->model, "Describe this model too: a .gguf path, fixture:NAME or synthetic:SHAPE (never downloaded)");
  sub.add_option("-o,--output", o->output, "Write the report to FILE (.md or .json, + .zst to compress) instead of stdout");
  CLI::Option* format_opt = sub.add_option("--format", o->format, "md (default) or json; without it, the extension of -o decides")
                            ->check(CLI::IsMember({"md", "json"}));
  sub.add_flag_callback("--json", [o] { o->format = "json"; }, "The same as --format json (every command's spelling)")
      ->excludes(format_opt);
  sub.add_option("--timeout", o->timeout, "Seconds the -- ARGS run may take before it is killed (default 120)")
      ->check(CLI::Range(0.001, 86400.0));
  sub.add_flag("--no-hash", o->no_hash, "Skip SHA-256 of the model and of local fixtures (fixtures then show 'present')");
  sub.add_option("ARGS", o->args, "After --: a bitnet command to run and describe (exit code or signal, stderr, time)");
  sub.footer("Examples:\n  bitnet debug-report -m model.gguf -o report.md\n"
             "  bitnet debug-report -m model.gguf -- generate -m model.gguf -p hi\n"
             "Nothing is uploaded. The home directory is shown as ~; variables whose names contain TOKEN, KEY,\n"
             "SECRET, PASSWORD or AUTH only as \"set\". Exit 0 even when the model or the run failed: the\n"
             "report describes it.");
  return [o](const Context& ctx) {
    auto [ext_format, zst] = format_of(o->output);
    const std::string format = !o->format.empty() ? o->format : !ext_format.empty() ? ext_format : "md";
    if (!o->output.empty()) check_output_path("-o", o->output);
    const diag::DebugReport r = gather(ctx, *o);
    const std::string text = format == "json" ? diag::render_json(r) : diag::render_markdown(r);
    if (o->output.empty()) {
      write_stdout(text);
      return 0;
    }
    write_file_atomically(o->output, zst ? zstd_compress(text) : text);
    std::fprintf(stderr, "debug report written to %s\n", o->output.c_str());
    return 0;
  };
}

}  // namespace bitnet::app
