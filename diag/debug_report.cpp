// Gathering the debug report's sections. Each gatherer catches bitnet::Error (and std::exception,
// since a report is most needed when something unexpected broke) and records it as a Failure.
// Also the linked libraries' versions and free disk space, which bug reports keep asking for.
#include "diag/debug_report.hpp"

#include <gnu/libc-version.h>
#include <string.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <simdjson.h>
#include <spdlog/version.h>
#include <zstd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/base/error.hpp"
#include "core/kernels/dispatch.hpp"
#include "diag/crossval/child_process.hpp"

namespace bitnet::diag {
namespace {

Failure failure_of(const Error& e) { return Failure{e.exit_code(), e.chain()}; }
Failure failure_of(const std::exception& e) { return Failure{1, {e.what()}}; }

// Runs f; a thrown error lands in `slot`.
template <typename F>
void guarded(std::optional<Failure>& slot, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    slot = failure_of(e);
  } catch (const std::exception& e) {
    slot = failure_of(e);
  }
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_path_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }

void replace_all(std::string& s, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size())) s.replace(at, what.size(), with);
}

// The last `n` lines of `text` (a trailing partial line counts as one).
std::vector<std::string> last_lines(std::string_view text, size_t n) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
  return lines;
}

#define BITNET_STRINGIFY_(x) #x
#define BITNET_STRINGIFY(x) BITNET_STRINGIFY_(x)

std::string or_unknown(const char* s) { return s && *s ? std::string(s) : std::string("unknown"); }

std::string pcre2_version() {
  char buf[64] = {};
  // Returns the length with the terminating zero, or a negative error; the text is "10.42 2022-12-11".
  if (pcre2_config(PCRE2_CONFIG_VERSION, buf) <= 0 || std::strlen(buf) >= sizeof(buf)) return "unknown";
  return buf;
}

std::string cxx_library_version() {
#if defined(_GLIBCXX_RELEASE) && defined(__GLIBCXX__)
  // The release number and the date stamp of the headers; libstdc++ has no run-time query.
  return fmt::format("{} ({})", _GLIBCXX_RELEASE, __GLIBCXX__);
#elif defined(_LIBCPP_VERSION)
  return fmt::to_string(_LIBCPP_VERSION);
#else
  return "unknown";
#endif
}

constexpr std::string_view kForeignPrefixes[] = {"OMP_", "GGML_", "LLAMA_", "HF_", "HUGGING_FACE_", "KMP_"};
constexpr std::string_view kForeignNames[] = {"XDG_CACHE_HOME", "NO_COLOR", "ASAN_OPTIONS", "UBSAN_OPTIONS"};

}  // namespace

std::string Privacy::clean(std::string_view text) const {
  std::string s(text);
  // Very short values would blank out ordinary text and are no secret worth hiding.
  for (const std::string& secret : secrets)
    if (secret.size() >= 4) replace_all(s, secret, "[redacted]");
  if (home.empty() || home == "/") return s;
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    // Only a whole path component: /home/al must not turn /home/alice into ~ice.
    if (s.compare(i, home.size(), home) == 0 && (i + home.size() == s.size() || !is_path_char(s[i + home.size()]))) {
      out += '~';
      i += home.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

bool is_secret_name(std::string_view name) {
  const std::string n = upper(name);
  for (std::string_view word : {"TOKEN", "KEY", "SECRET", "PASSWORD", "AUTH"})
    if (n.find(word) != std::string::npos) return true;
  return false;
}

std::vector<EnvEntry> relevant_env(const std::vector<std::pair<std::string, std::string>>& environ, Privacy& privacy) {
  std::vector<EnvEntry> out;
  for (const auto& [name, value] : environ) {
    const bool secret = is_secret_name(name);
    if (secret && !value.empty()) privacy.secrets.push_back(value);
    bool relevant = name.starts_with("BITNET_") ||
                    std::find(std::begin(kForeignNames), std::end(kForeignNames), name) != std::end(kForeignNames);
    for (std::string_view p : kForeignPrefixes) relevant = relevant || name.starts_with(p);
    if (relevant) out.push_back(EnvEntry{name, secret ? "set" : value, secret});
  }
  std::sort(out.begin(), out.end(), [](const EnvEntry& a, const EnvEntry& b) { return a.name < b.name; });
  return out;
}

std::vector<LibraryVersion> linked_library_versions() {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  return {
      {"libcurl", or_unknown(curl ? curl->version : nullptr), true},
      {"OpenSSL", or_unknown(OpenSSL_version(OPENSSL_VERSION_STRING)), true},
      {"spdlog", fmt::format("{}.{}.{}", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH), false},
      {"simdjson", BITNET_STRINGIFY(SIMDJSON_VERSION), false},
      {"zstd", or_unknown(ZSTD_versionString()), true},
      {"PCRE2", pcre2_version(), true},
      {"glibc", or_unknown(gnu_get_libc_version()), true},
      {"libstdc++", cxx_library_version(), false},
  };
}

DiskSpace disk_space(std::string role, const std::filesystem::path& dir) {
  DiskSpace d;
  d.role = std::move(role);
  d.path = dir.string();
  if (dir.empty()) {
    d.error = "no directory configured";
    return d;
  }
  std::filesystem::path at = dir;
  std::error_code ec;
  while (!std::filesystem::exists(at, ec) && at.has_relative_path() && at != at.parent_path()) at = at.parent_path();
  if (at.empty()) at = ".";
  struct statvfs st {};
  if (::statvfs(at.c_str(), &st) != 0) {
    d.error = fmt::format("statvfs {}: {}", at.string(), std::strerror(errno));
    return d;
  }
  d.measured = at.string();
  d.free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  d.total_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  return d;
}

KernelInfo gather_kernels(const std::string& requested) {
  KernelInfo k;
  k.requested = requested;
  guarded(k.error, [&] {
    kernels::Selection s = kernels::select_backend(requested);
    k.selected = s.table->name;
    k.why = s.why;
  });
  for (const kernels::Backend& b : kernels::registered_backends())
    k.backends.push_back(BackendRow{std::string(b.name), b.priority, b.supported(), !k.selected.empty() && b.name == k.selected});
  return k;
}

ModelSection gather_model(const std::string& spec, const std::function<std::filesystem::path(std::string_view)>& resolve,
                          bool hash) {
  ModelSection m;
  m.spec = spec;
  guarded(m.error, [&] {
    std::filesystem::path p = resolve(spec);
    m.path = p.string();
    m.report = build_model_report(p, {.hash = hash});
  });
  return m;
}

FixtureSection gather_fixtures(const fixtures::Fixtures& fx, bool hash) {
  FixtureSection s;
  s.cache_dir = fx.config().cache_dir.string();
  s.hashed = hash;
  const fixtures::Cache cache(fx.config().cache_dir);
  for (const fixtures::Entry& e : fx.manifest().entries()) {
    FixtureRow row{e.name, "missing", "", "", e.sha256, ""};
    std::optional<Failure> err;
    guarded(err, [&] {
      if (!hash) {
        std::error_code ec;
        if (!fx.config().cache_dir.empty() && std::filesystem::is_regular_file(cache.file(e.name), ec)) {
          row = {e.name, "present", "cache", cache.file(e.name).string(), e.sha256, ""};
        } else if (auto local = fx.find_local(e)) {
          row = {e.name, "present", "local", local->string(), e.sha256, ""};
        }
        return;
      }
      fixtures::EntryStatus st = fx.status(e);
      row.path = st.path.string();
      row.actual_sha256 = st.check.sha256;
      const bool in_cache = !fx.config().cache_dir.empty() && st.path.parent_path() == fx.config().cache_dir;
      switch (st.state) {
        case fixtures::State::cached: row.status = "verified"; row.source = "cache"; break;
        case fixtures::State::local: row.status = "verified"; row.source = "local"; break;
        case fixtures::State::mismatch: row.status = "mismatch"; row.source = in_cache ? "cache" : "local"; break;
        case fixtures::State::missing: break;
      }
    });
    // An unreadable copy is reported as a mismatch: it cannot be what the manifest promises.
    if (err) {
      row.status = "mismatch";
      row.actual_sha256.clear();
      s.error = Failure{err->code, {fmt::format("fixture '{}': {}", e.name, err->messages.front())}};
    }
    s.entries.push_back(std::move(row));
  }
  return s;
}

LogSection gather_log(const std::filesystem::path& file, size_t max_lines) {
  LogSection l;
  l.file = file.string();
  if (file.empty()) {
    l.note = "no log file configured (pass the global --log-file PATH, to debug-report or in the ARGS of the run)";
    return l;
  }
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) {
    l.note = "cannot be read (does it exist?)";
    return l;
  }
  const std::streamoff size = in.tellg();
  const std::streamoff want = std::min<std::streamoff>(size, 64 * 1024);
  std::string text(static_cast<size_t>(want), '\0');
  in.seekg(size - want);
  in.read(text.data(), want);
  text.resize(static_cast<size_t>(in.gcount()));
  // A window cut out of a longer file starts with a partial line.
  if (want < size) text.erase(0, std::min(text.size(), text.find('\n') + 1));
  l.tail = last_lines(text, max_lines);
  if (l.tail.empty()) l.note = "empty";
  return l;
}

ChildSection run_child_command(const std::string& executable, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout) {
  ChildSection c;
  c.args = args;
  c.timeout_seconds = std::chrono::duration<double>(timeout).count();
  std::vector<std::string> argv{executable};
  argv.insert(argv.end(), args.begin(), args.end());
  guarded(c.error, [&] {
    ChildOptions opt{timeout, size_t{1} << 20, 64 * 1024};
    opt.quit_before_kill = true;  // the child is bitnet: SIGQUIT makes it print every thread's stack
    ChildResult r = run_child(argv, "", opt);
    c.started = true;
    c.timed_out = r.timed_out;
    c.seconds = r.seconds;
    if (r.signal != 0) {
      c.signal = r.signal;
      const char* abbrev = ::sigabbrev_np(r.signal);
      c.signal_name = abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", r.signal);
    } else {
      c.exit_code = r.exit_code;
    }
    // The stack dump is cut out of stderr whole (it would push the rest out of the tail).
    std::string err = r.err;
    if (const size_t a = err.find("\nbitnet: SIGQUIT: stacks of "); r.timed_out && a != std::string::npos) {
      const std::string end = "--- end of thread dump ---";
      const size_t b = err.find(end, a);
      const size_t stop = b == std::string::npos ? err.size() : b + end.size();
      c.stacks = last_lines(err.substr(a + 1, stop - a - 1), 400);
      err.erase(a, stop - a);
    }
    c.threads_at_timeout = last_lines(r.threads_at_timeout, 200);
    c.stderr_tail = last_lines(err, 40);
    c.stdout_tail = last_lines(r.out, 20);
  });
  return c;
}

void summarize(DebugReport& r) {
  auto& s = r.summary;
  if (r.kernels.error) s.push_back(fmt::format("kernel table: {}", r.kernels.error->messages.front()));
  if (r.model) {
    const ModelSection& m = *r.model;
    if (m.error) s.push_back(fmt::format("model '{}' could not be read: {}", m.spec, m.error->messages.back()));
    else if (m.report && m.report->verdict != Verdict::ok && m.report->verdict != Verdict::vocab_only)
      s.push_back(fmt::format("model '{}': verdict {}{}", m.spec, verdict_name(m.report->verdict),
                              m.report->problems.empty() ? "" : fmt::format(": {}", m.report->problems.front())));
  }
  for (const FixtureRow& f : r.fixtures.entries)
    if (f.status == "mismatch") s.push_back(fmt::format("fixture '{}': checksum mismatch ({})", f.name, f.path));
  if (r.fixtures.error) s.push_back(fmt::format("fixtures: {}", r.fixtures.error->messages.front()));
  if (r.child) {
    const ChildSection& c = *r.child;
    std::string cmd = "bitnet";
    for (const std::string& a : c.args) cmd.append(" ").append(a);
    std::string last_error;
    for (const std::string& line : c.stderr_tail)
      if (line.starts_with("error:")) last_error = line;
    if (c.error) s.push_back(fmt::format("`{}` could not be started: {}", cmd, c.error->messages.front()));
    else if (c.timed_out) s.push_back(fmt::format("`{}` timed out after {:.0f} s and was killed", cmd, c.timeout_seconds));
    else if (c.signal) s.push_back(fmt::format("`{}` crashed: killed by {}", cmd, c.signal_name));
    else if (c.exit_code && *c.exit_code != 0)
      s.push_back(fmt::format("`{}` failed with exit code {}{}", cmd, *c.exit_code, last_error.empty() ? "" : fmt::format(": {}", last_error)));
  }
}

}  // namespace bitnet::diag
